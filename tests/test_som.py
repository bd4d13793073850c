"""Rotation/flip-invariant SOM (paper 004, PINK): fast implementation vs a slow reference.

The reference below re-implements PINK 2.x's CPU path with plain Python loops (resize,
rotate_bilinear, rotate_90_degrees, flip, the quadratic/circular Euclidean distance
functors, the Trainer update and the distribution functors) and is compared with the
vectorised GEMM implementation on small data.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pandas as pd
import pytest

from catclean.som import SOMSettings, Stage, make_plan, map_images, pinkio, train_som
from catclean.som.annotate import annotate_neurons, build_source_table, read_neuron_labels
from catclean.som.core import lattice_distances, lattice_positions, neighbourhood_function
from catclean.som.preprocess import (
    PreprocessSettings,
    channel_weights,
    preprocess_image,
    preprocess_images,
)

# --------------------------------------------------------------------------- reference


def ref_resize(src, d):
    s = len(src)
    out = [[0.0] * d for _ in range(d)]
    sm = (s - d) // 2 if s > d else 0
    dm = (d - s) // 2 if d > s else 0
    for i in range(min(s, d)):
        for j in range(min(s, d)):
            out[i + dm][j + dm] = float(src[i + sm][j + sm])
    return out


def ref_rotate(src, d, alpha):
    s = len(src)
    out = [[0.0] * d for _ in range(d)]
    ca, sa = math.cos(alpha), math.sin(alpha)
    sc, dc = (s - 1) * 0.5, (d - 1) * 0.5
    for x in range(d):
        for y in range(d):
            px, py = x - dc, y - dc
            sx = px * ca - py * sa + sc
            sy = px * sa + py * ca + sc
            if sx < 0 or sx > s - 1 or sy < 0 or sy > s - 1:
                continue
            ix, iy = int(sx), int(sy)
            ix1, iy1 = min(ix + 1, s - 1), min(iy + 1, s - 1)
            rx, ry = sx - ix, sy - iy
            cx, cy = 1 - rx, 1 - ry
            out[x][y] = (
                cx * cy * src[ix][iy]
                + cx * ry * src[ix][iy1]
                + rx * cy * src[ix1][iy]
                + rx * ry * src[ix1][iy1]
            )
    return out


def ref_rot90(src):
    d = len(src)
    return [[src[d - 1 - c][r] for c in range(d)] for r in range(d)]


def ref_flip(src):
    return [list(row) for row in src[::-1]]


def ref_transforms(img, numrot, flip, d):
    """All transforms of a (C, S, S) image in PINK order, each (C, D, D) nested lists."""
    per_channel = []
    for ch in img:
        ch = [list(map(float, row)) for row in ch]
        if numrot == 1:
            rots = [ref_resize(ch, d)]
        else:
            nr = numrot // 4
            base = [ref_resize(ch, d)] + [
                ref_rotate(ch, d, i * 2 * math.pi / numrot) for i in range(1, nr)
            ]
            rots = [None] * numrot
            for i in range(nr):
                cur = base[i]
                rots[i] = cur
                for q in range(1, 4):
                    cur = ref_rot90(cur)
                    rots[q * nr + i] = cur
        if flip:
            rots = rots + [ref_flip(r) for r in rots]
        per_channel.append(rots)
    return [[per_channel[c][k] for c in range(len(img))] for k in range(len(per_channel[0]))]


def ref_mask(d, e, shape):
    m = [[False] * d for _ in range(d)]
    if shape == "quadratic":
        beg = int((d - e) * 0.5)
        for i in range(beg, beg + e):
            for j in range(beg, beg + e):
                m[i][j] = True
    else:
        center, radius = d // 2, e // 2
        for i in range(e):
            arg = 2 * radius * (i + 0.5) - (i + 0.5) ** 2
            if arg < 0:
                continue
            delta = math.sqrt(arg)
            gi = i + (d - e) // 2
            for j in range(math.floor(center - delta + 0.5), math.floor(center + delta + 0.5)):
                m[gi][j] = True
    return m


def ref_distance(a, w, mask):
    tot = 0.0
    for c in range(len(a)):
        for i in range(len(mask)):
            for j in range(len(mask)):
                if mask[i][j]:
                    tot += (a[c][i][j] - float(w[c][i][j])) ** 2
    return tot


def ref_best(transforms, weights, mask):
    """Per neuron (best distance, best transform) with PINK's strict '<' tie rule, and BMU."""
    best = []
    for w in weights:
        bd, bk = None, 0
        for k, t in enumerate(transforms):
            dist = ref_distance(t, w, mask)
            if bd is None or dist < bd:
                bd, bk = dist, k
        best.append((bd, bk))
    bmu = min(range(len(best)), key=lambda n: (best[n][0], n))
    return best, bmu


def ref_train(images, w0, st: SOMSettings, stage: Stage):
    """PINK Trainer, plain loops, fixed input order."""
    w = w0.astype(np.float64).copy()
    d = w.shape[-1]
    e = st.ed_dim or (
        int(images.shape[-1] * math.sqrt(2) / 2)
        if stage.numrot != 1 and st.ed_shape == "quadratic"
        else images.shape[-1]
    )
    mask = ref_mask(d, e, st.ed_shape)
    pos = lattice_positions(st.rows, st.cols, st.layout)
    n = len(w)
    for img in images:
        ts = ref_transforms(img, stage.numrot, st.flip, d)
        best, bmu = ref_best(ts, w, mask)
        for j in range(n):
            if st.layout == "cartesian":
                dr = abs(pos[bmu][0] - pos[j][0])
                dc = abs(pos[bmu][1] - pos[j][1])
                if st.periodic:
                    dr, dc = min(dr, st.rows - dr), min(dc, st.cols - dc)
                dist = math.sqrt(dr * dr + dc * dc)
            else:
                dq = int(pos[bmu][1] - pos[j][1])
                dr = int(pos[bmu][0] - pos[j][0])
                dist = abs(dq + dr) if (dq >= 0) == (dr >= 0) else max(abs(dq), abs(dr))
            if st.neighbourhood == "unitygaussian":
                f = stage.damping * math.exp(-0.5 * (dist / stage.sigma) ** 2)
            elif st.neighbourhood == "gaussian":
                f = (
                    stage.damping
                    / (stage.sigma * math.sqrt(2 * math.pi))
                    * math.exp(-0.5 * (dist / stage.sigma) ** 2)
                )
            else:
                s2 = stage.sigma**2
                f = (
                    2
                    * stage.damping
                    / (math.sqrt(3 * stage.sigma) * math.pi**0.25)
                    * (1 - dist**2 / s2)
                    * math.exp(-(dist**2) / (2 * s2))
                )
            t = ts[best[j][1]]
            for c in range(w.shape[1]):
                for a in range(d):
                    for b in range(d):
                        w[j, c, a, b] -= (w[j, c, a, b] - t[c][a][b]) * f
    return w


# --------------------------------------------------------------------------- helpers


def blobs(n, size, rng, kind="ellipse", channels=1):
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = np.zeros((n, channels, size, size), np.float32)
    for i in range(n):
        t = rng.uniform(0, np.pi)
        u = xx * np.cos(t) + yy * np.sin(t)
        v = -xx * np.sin(t) + yy * np.cos(t)
        if kind == "ellipse":
            img = np.exp(-0.5 * ((u / (size / 5)) ** 2 + (v / (size / 14)) ** 2))
        else:  # double-lobed: two compact lobes on opposite sides
            sep = size / 3.2
            img = np.exp(-0.5 * (((u - sep) ** 2 + v**2) / (size / 16) ** 2))
            img += np.exp(-0.5 * (((u + sep) ** 2 + v**2) / (size / 16) ** 2))
        for c in range(channels):
            out[i, c] = img * (1 - 0.3 * c) + rng.normal(0, 0.01, img.shape)
    return np.clip(out, 0, None)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "numrot,flip,shape,channels",
    [(8, True, "quadratic", 1), (1, True, "quadratic", 1), (12, False, "circular", 2)],
)
def test_transforms_and_mask_match_pink_reference(numrot, flip, shape, channels):
    rng = np.random.default_rng(1)
    img = rng.random((channels, 10, 10)).astype(np.float32)
    plan = make_plan(10, channels, numrot, flip, shape=shape)
    ref = ref_transforms(img, numrot, flip, plan.neuron_dim)
    assert len(ref) == plan.n_transforms
    for k, t in enumerate(ref):
        fast = plan.full_transform(img.ravel(), k)
        np.testing.assert_allclose(fast, np.asarray(t), atol=2e-5)
    np.testing.assert_array_equal(
        plan.mask, np.asarray(ref_mask(plan.neuron_dim, plan.ed_dim, shape))
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(layout="cartesian", neighbourhood="unitygaussian", numrot=8, ed_shape="quadratic"),
        dict(layout="hexagonal", neighbourhood="mexicanhat", numrot=4, ed_shape="circular"),
        dict(layout="cartesian", neighbourhood="gaussian", numrot=8, periodic=True, channels=2),
    ],
)
def test_training_matches_slow_reference(kw):
    kw = dict(kw)
    numrot, channels = kw.pop("numrot"), kw.pop("channels", 1)
    rng = np.random.default_rng(7)
    imgs = rng.random((5, channels, 10, 10)).astype(np.float32)
    stage = Stage(sigma=1.0, damping=0.3, numrot=numrot, epochs=1)
    st = SOMSettings.from_preset("small", rows=3, cols=3, schedule=[stage], shuffle=False, **kw)
    n = lattice_positions(3, 3, st.layout).shape[0]
    d = make_plan(10, channels, numrot, True, shape=st.ed_shape).neuron_dim
    w0 = rng.random((n, channels, d, d)).astype(np.float32)
    som = train_som(imgs, st, seed=0, initial=w0)
    ref_w = ref_train(imgs, w0, st, stage)
    np.testing.assert_allclose(som.weights, ref_w, atol=2e-5)
    # mapping: same BMU, same transform, same distance as the reference
    res = map_images(som, imgs)
    mask = ref_mask(d, som.plan().ed_dim, st.ed_shape)
    for i, img in enumerate(imgs):
        best, bmu = ref_best(ref_transforms(img, numrot, True, d), som.weights, mask)
        assert res.bmu_index[i] == bmu
        assert res.transform[i] == best[bmu][1]
        assert res.distance[i] == pytest.approx(math.sqrt(best[bmu][0]), rel=1e-4)
        np.testing.assert_array_equal(res.transforms[i], [b[1] for b in best])


def test_deterministic_for_seed():
    rng = np.random.default_rng(3)
    imgs = blobs(12, 12, rng)
    st = SOMSettings.from_preset("small", rows=3, cols=3, schedule=[Stage(1.0, 0.2, 8, 2)])
    a = train_som(imgs, st, seed=11)
    b = train_som(imgs, st, seed=11)
    c = train_som(imgs, st, seed=12)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)
    ra, rb = map_images(a, imgs), map_images(b, imgs)
    np.testing.assert_array_equal(ra.distances, rb.distances)


def test_two_populations_separate_on_map():
    rng = np.random.default_rng(5)
    ell, dbl = blobs(40, 16, rng, "ellipse"), blobs(40, 16, rng, "double")
    imgs = np.concatenate([ell, dbl])
    st = SOMSettings.from_preset(
        "small",
        rows=4,
        cols=4,
        schedule=[Stage(1.5, 0.3, 8, 3), Stage(0.7, 0.1, 16, 2)],
        init="random",
    )
    som = train_som(imgs, st, seed=2)
    res = map_images(som, imgs)
    truth = np.r_[np.zeros(40), np.ones(40)]
    # every neuron's members are (almost) one population
    purity = 0
    for u in np.unique(res.bmu_index):
        m = truth[res.bmu_index == u]
        purity += max(m.sum(), m.size - m.sum())
    assert purity / truth.size >= 0.95
    tab = annotate_neurons(som, res, truth.astype(bool))
    hit = tab[tab.n_annotated > 0]
    assert (hit.n_annotated == hit.n_mapped).all()
    assert ((hit.p_shred <= 0.1) | (hit.p_shred >= 0.9)).mean() >= 0.9
    # rotated copies land on the same neuron (rotation invariance)
    rot = np.rot90(imgs, 1, axes=(2, 3)).copy()
    r2 = map_images(som, rot)
    assert (r2.bmu_index == res.bmu_index).mean() >= 0.9


def _roundtrip(tmp_path, name, write, read, *args, comment="made by catclean\nline two"):
    p = tmp_path / name
    write(p, *args, comment=comment)
    got = read(p)
    assert got.comment == "made by catclean\nline two"
    return p, got


def test_pink_formats_roundtrip_and_layout(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.random((3, 2, 5, 5)).astype(np.float32)
    p, got = _roundtrip(tmp_path, "img.bin", pinkio.write_images, pinkio.read_images, imgs)
    np.testing.assert_array_equal(got.data, imgs)
    assert got.dims == (2, 5, 5) and got.layout == 0
    # byte layout of PINK FILE_FORMATS.md: header ints right after the comment block
    raw = p.read_bytes()
    start = raw.index(b"# END OF HEADER\n") + len(b"# END OF HEADER\n")
    assert raw[:start] == b"# made by catclean\n# line two\n# END OF HEADER\n"
    assert struct.unpack("<9i", raw[start : start + 36]) == (2, 0, 0, 3, 0, 3, 2, 5, 5)
    assert len(raw) == start + 36 + imgs.nbytes

    w = rng.random((9, 7, 7)).astype(np.float32)
    p, got = _roundtrip(tmp_path, "som.bin", pinkio.write_som, pinkio.read_som, w, (3, 3))
    np.testing.assert_array_equal(got.data, w)
    assert got.dims == (3, 3) and got.neuron_dims == (7, 7)
    raw = p.read_bytes()
    start = raw.index(b"# END OF HEADER\n") + 16
    assert struct.unpack("<11i", raw[start : start + 44]) == (2, 1, 0, 0, 2, 3, 3, 0, 2, 7, 7)

    dist = rng.random((4, 9)).astype(np.float32)
    _, got = _roundtrip(
        tmp_path, "map.bin", pinkio.write_mapping, pinkio.read_mapping, dist, (3, 3)
    )
    np.testing.assert_array_equal(got.data, dist)

    flips = rng.integers(0, 2, (4, 9))
    ang = rng.random((4, 9)).astype(np.float32)
    p, got = _roundtrip(
        tmp_path, "rot.bin", pinkio.write_transforms, pinkio.read_transforms, flips, ang, (3, 3)
    )
    np.testing.assert_array_equal(got.data["flip"], flips)
    np.testing.assert_array_equal(got.data["angle"], ang)
    raw = p.read_bytes()
    start = raw.index(b"# END OF HEADER\n") + 16
    assert struct.unpack("<7i", raw[start : start + 28]) == (2, 3, 4, 0, 2, 3, 3)
    assert len(raw) - start - 28 == 4 * 9 * 5  # packed int8 flip + float32 angle

    # hexagonal SOM written by PINK 2.x with layout code 0 is recognised by its size
    wh = rng.random((pinkio.hex_size(5), 4, 4)).astype(np.float32)
    pinkio.write_som(tmp_path / "hex.bin", wh, (5, 5), layout=1)
    raw = bytearray((tmp_path / "hex.bin").read_bytes())
    raw[12:16] = struct.pack("<i", 0)
    (tmp_path / "hex0.bin").write_bytes(bytes(raw))
    got = pinkio.read_som(tmp_path / "hex0.bin")
    assert got.layout == 1 and got.data.shape == (19, 4, 4)


def test_header_parsing_like_pink(tmp_path):
    body = struct.pack("<8i", 2, 0, 0, 1, 0, 2, 2, 2) + np.arange(4, dtype="<f4").tobytes()
    # comment lines without an END marker: PINK stops at the first non-'#' line
    (tmp_path / "a.bin").write_bytes(b"# one\n#two\n" + body)
    got = pinkio.read_images(tmp_path / "a.bin")
    assert got.comment == "one\ntwo"
    np.testing.assert_array_equal(got.data[0], [[0, 1], [2, 3]])
    # END marker stops comment parsing even if the binary starts with '#'-like bytes later
    (tmp_path / "b.bin").write_bytes(b"# x\n# END OF HEADER\n" + body)
    assert pinkio.read_images(tmp_path / "b.bin").comment == "x"
    # no comment at all
    (tmp_path / "c.bin").write_bytes(body)
    assert pinkio.read_images(tmp_path / "c.bin").comment == ""
    # Windows line ends in the comment block
    (tmp_path / "d.bin").write_bytes(b"# y\r\n# END OF HEADER\r\n" + body)
    assert pinkio.read_images(tmp_path / "d.bin").data.shape == (1, 2, 2)


def test_save_som_and_mapping_files(tmp_path):
    rng = np.random.default_rng(4)
    imgs = blobs(6, 10, rng)
    som = train_som(
        imgs,
        SOMSettings.from_preset("small", rows=2, cols=3, schedule=[Stage(1.0, 0.2, 8, 1)]),
        seed=1,
    )
    res = map_images(som, imgs)
    pinkio.save_som(som, tmp_path / "s.bin", comment="catclean")
    pinkio.save_mapping(som, res, tmp_path / "m.bin", tmp_path / "t.bin")
    w, pf = pinkio.load_som_weights(tmp_path / "s.bin")
    np.testing.assert_array_equal(w, som.weights)
    assert pf.dims == (2, 3) and pf.comment.endswith("\ncatclean")
    back = pinkio.load_som(tmp_path / "s.bin")
    assert back.settings == som.settings and back.image_dim == som.image_dim
    np.testing.assert_array_equal(map_images(back, imgs).distances, res.distances)
    m = pinkio.read_mapping(tmp_path / "m.bin").data
    np.testing.assert_array_equal(m, res.distances)
    t = pinkio.read_transforms(tmp_path / "t.bin").data
    k = res.transforms
    np.testing.assert_array_equal(t["flip"], k // 8)
    np.testing.assert_allclose(t["angle"], (k % 8) * (2 * np.pi / 8), rtol=1e-6)


def test_neighbourhoods_and_lattices_follow_pink():
    d = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(
        neighbourhood_function("gaussian", 1.5, 0.1)(d),
        0.1 / (1.5 * math.sqrt(2 * math.pi)) * np.exp(-0.5 * (d / 1.5) ** 2),
    )
    mh = neighbourhood_function("mexicanhat", 1.0, 1.0)(d)
    assert mh[0] > 0 and mh[1] == pytest.approx(0.0) and mh[2] < 0
    pos = lattice_positions(5, 5, "hexagonal")
    assert len(pos) == pinkio.hex_size(5) == 19
    dist = lattice_distances(5, 5, "hexagonal")
    centre = int(np.flatnonzero((pos[:, 0] == 2) & (pos[:, 1] == 2))[0])
    assert np.sort(dist[centre])[:7].tolist() == [0, 1, 1, 1, 1, 1, 1]
    assert lattice_distances(4, 4, periodic=True)[0, 3] == 1.0


def _scene(rng, size=32):
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    img = 10 * np.exp(-0.5 * ((xx - c) ** 2 + (yy - c) ** 2) / 2.0**2)
    img += 8 * np.exp(-0.5 * ((xx - 4) ** 2 + (yy - 5) ** 2) / 1.5**2)  # unrelated blob
    return img + rng.normal(0, 0.2, img.shape)


def test_preprocessing_keeps_central_island_and_scales():
    rng = np.random.default_rng(0)
    img = _scene(rng)
    out, reason = preprocess_image(
        img, PreprocessSettings.from_preset("small", min_snr=3, stretch="log")
    )
    assert reason is None and out.shape == (1, 32, 32)
    assert out.min() >= 0 and out.max() == pytest.approx(1.0)
    assert out[0, 15:17, 15:17].min() > 0.5  # central source kept
    assert out[0, 2:8, 1:8].max() == 0  # off-centre blob removed
    out_all, _ = preprocess_image(
        img, PreprocessSettings.from_preset("small", min_snr=3, islands="all")
    )
    assert out_all[0, 2:8, 1:8].max() > 0
    out_a, _ = preprocess_image(
        img, PreprocessSettings.from_preset("small", min_snr=3, stretch="asinh")
    )
    assert 0 <= out_a.min() and out_a.max() == pytest.approx(1.0)
    two = np.stack([img, 0.1 * img])
    stack, reasons = preprocess_images(
        two[None], PreprocessSettings.from_preset("small", min_snr=3, channel_weights=[1, 0.5])
    )
    assert reasons[0] is None and stack[0, 1].max() == pytest.approx(0.5)
    w = channel_weights(np.stack([np.ones((2, 4, 4)), 0.5 * np.ones((2, 4, 4))], axis=1))
    np.testing.assert_allclose(w, [1.0, 2.0])


def test_bad_inputs_are_flagged_not_fatal():
    rng = np.random.default_rng(1)
    good = blobs(6, 10, rng)
    som = train_som(
        good,
        SOMSettings.from_preset("small", rows=2, cols=2, schedule=[Stage(1.0, 0.2, 4, 1)]),
        seed=0,
    )
    nan_img = good[0].copy()
    nan_img[0, 3, 3] = np.nan
    blank = np.zeros_like(good[0])
    batch = np.stack([good[1], nan_img, blank, good[2]])
    som2 = train_som(
        batch,
        SOMSettings.from_preset("small", rows=2, cols=2, schedule=[Stage(1.0, 0.2, 4, 1)]),
        seed=0,
    )
    assert som2.history[0]["skipped"] == 2 and np.isfinite(som2.weights).all()
    _, prep_reasons = preprocess_images(batch, PreprocessSettings.from_preset("small"))
    assert list(prep_reasons[1:3]) == ["nan_pixels", "blank_image"]
    res = map_images(som, batch)
    nt = pd.DataFrame(
        {"som_bmu_row": [0, 0, 1, 1], "som_bmu_col": [0, 1, 0, 1], "p_shred": [0.1, 0.2, 0.3, 0.4]}
    )
    tab = build_source_table(res, nt, index=[10, 11, 12, 13])
    assert list(tab.columns) == [
        "som_bmu_row",
        "som_bmu_col",
        "som_distance",
        "som_transform",
        "som_rotation_deg",
        "som_flip",
        "p_shred_som",
        "som_reason",
    ]
    assert tab.som_reason.tolist()[1:3] == ["nan_pixels", "blank_image"]
    assert tab.som_reason.isna().tolist() == [True, False, False, True]
    assert tab.som_distance.dtype == np.float64 and tab.p_shred_som.dtype == np.float64
    assert tab.som_transform.dtype == np.int64 and tab.som_flip.dtype == bool
    assert str(tab.som_reason.dtype) == "string"
    assert tab.loc[11, "som_bmu_row"] == -1 and np.isnan(tab.loc[12, "p_shred_som"])
    r0 = tab.loc[10]
    assert r0.p_shred_som == nt.p_shred[r0.som_bmu_row * 2 + r0.som_bmu_col]
    assert r0.som_rotation_deg == (r0.som_transform % 4) * 90.0
    # an upstream (preprocessing) reason wins over a successful mapping
    tab2 = build_source_table(res, nt, reasons=["no_signal", None, None, None])
    assert tab2.som_reason.iloc[0] == "no_signal" and tab2.som_bmu_row.iloc[0] == -1


def test_neuron_label_csv(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("bmu_y,bmu_x,P_sidelobe\n0,0,80\n1,1,5\n")
    t = read_neuron_labels(p)
    assert t.p_shred.tolist() == [0.8, 0.05]
    q = tmp_path / "labels2.csv"
    q.write_text("row,col,label\n0,0,shred\n0,1,galaxy\n")
    assert read_neuron_labels(q).p_shred.tolist() == [1.0, 0.0]


def test_plots_write_files(tmp_path):
    from catclean.som.plots import plot_annotation_map, plot_hit_map, plot_prototypes

    rng = np.random.default_rng(2)
    imgs = blobs(8, 10, rng)
    for layout, rows in (("cartesian", 2), ("hexagonal", 3)):
        st = SOMSettings.from_preset(
            "small", rows=rows, cols=rows, layout=layout, schedule=[Stage(1.0, 0.2, 4, 1)]
        )
        som = train_som(imgs, st, seed=0)
        res = map_images(som, imgs)
        tab = annotate_neurons(som, res, rng.random(8) > 0.5)
        for fn, args in (
            (plot_prototypes, ()),
            (plot_hit_map, (res.bmu_index,)),
            (plot_annotation_map, (tab,)),
        ):
            out = tmp_path / f"{layout}_{fn.__name__}.png"
            fn(som, *args, path=out)
            assert out.stat().st_size > 1000


@pytest.mark.skipif(not __import__("os").environ.get("PINK_BIN"), reason="PINK_BIN not set")
@pytest.mark.parametrize(
    "numrot,shape,layout,dist",
    [
        (8, "quadratic", "cartesian", "unitygaussian"),
        (12, "circular", "cartesian", "gaussian"),
        (4, "quadratic", "hexagonal", "mexicanhat"),
    ],
)
def test_matches_pink_binary(tmp_path, numrot, shape, layout, dist):
    """Same init file, no shuffle: PINK's SOM, mapping and transforms equal ours."""
    import os
    import subprocess

    pink = os.environ["PINK_BIN"]
    rng = np.random.default_rng(0)
    imgs = rng.random((20, 20, 20)).astype(np.float32)
    st = SOMSettings.from_preset("small",
        rows=3, cols=3, layout=layout, schedule=[Stage(1.2, 0.3, numrot, 1)],
        shuffle=False, ed_shape=shape, neighbourhood=dist,
    )  # fmt: skip
    n = lattice_positions(3, 3, layout).shape[0]
    d = make_plan(20, 1, numrot, True, shape=shape).neuron_dim
    w0 = rng.random((n, 1, d, d)).astype(np.float32)
    f = {k: str(tmp_path / f"{k}.bin") for k in ("img", "init", "som", "map", "rot")}
    pinkio.write_images(f["img"], imgs)
    pinkio.write_som(f["init"], w0, (3, 3), layout=int(layout == "hexagonal"), comment="x")
    common = [
        "--numrot", str(numrot), "--som-width", "3", "--som-height", "3", "--numthreads", "1",
        "--cuda-off", "--euclidean-distance-shape", shape, "--layout", layout,
    ]  # fmt: skip
    subprocess.run(
        [pink, "--train", f["img"], f["som"], "--init", f["init"], "--input-shuffle-off",
         "--num-iter", "1", "--dist-func", dist, "1.2", "0.3", *common],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [pink, "--map", f["img"], f["map"], f["som"], "--store-rot-flip", f["rot"], *common],
        check=True, capture_output=True,
    )  # fmt: skip
    som = train_som(imgs, st, seed=0, initial=w0)
    wp, pf = pinkio.load_som_weights(f["som"])
    assert pf.comment == "x"  # PINK copies the init file's comment block
    np.testing.assert_allclose(som.weights, wp, atol=2e-5)
    som.weights = wp
    res = map_images(som, imgs)
    np.testing.assert_allclose(pinkio.read_mapping(f["map"]).data, res.distances, atol=1e-4)
    t = pinkio.read_transforms(f["rot"]).data
    k = t["flip"].astype(int) * numrot + np.rint(t["angle"] / (2 * np.pi / numrot)).astype(int)
    np.testing.assert_array_equal(k, res.transforms)
