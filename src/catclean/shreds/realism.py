"""How real does a synthetic sky look? A classifier two-sample test (issue 11, point 1).

If a classifier cannot tell synthetic cutouts from real ones, the two sets come from the
same distribution as far as that classifier can see (Lopez-Paz & Oquab 2017, "Revisiting
classifier two-sample tests"). The cross-validated ROC AUC of the classifier is the
measure: 0.5 means indistinguishable, 1.0 means trivially different.

Two discriminators:

- ``method="trees"``: gradient boosting (:class:`sklearn.ensemble.HistGradientBoostingClassifier`)
  on simple, interpretable per-image statistics (:func:`image_statistics`): sky level and
  noise from the border pixels, colours of the centre and of the whole stamp, central
  surface brightness, bright-pixel fractions, neighbour counts and the offset of the
  brightest peak, a radial profile, JPEG blockiness. Its permutation importances say
  *what* differs.
- ``method="cnn"``: a tiny Keras CNN on the (2x downsampled) pixels; it sees textures and
  shapes the statistics miss.

Inputs are uint8 RGB cutouts (N, H, W, 3) in the Legacy viewer's format (128 x 128,
0.469"/pix, R = z, G = r, B = g). :func:`load_image_dir` reads a directory of PNG/JPEG
cutouts (e.g. ``../shared/real/legacy_dr9_grz_jpeg``).

Example::

    from catclean.shreds.realism import load_image_dir, two_sample_auc
    real = load_image_dir("../shared/real/legacy_dr9_grz_jpeg")
    res = two_sample_auc(synthetic_images, real, method="trees", folds=5, seed=0)
    res["auc"], res["feature_importance"].head()
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: border width (pixels) used for the sky level and noise
BORDER = 8
#: radial annuli (pixels, inner, outer) of the profile features
ANNULI = ((0, 3), (3, 6), (6, 12), (12, 24), (24, 40), (40, 64))


def image_files(path) -> list[Path]:
    """The PNG/JPEG files of a directory, sorted by name (the order of
    :func:`load_image_dir`)."""
    return sorted(p for p in Path(path).iterdir()
                  if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def load_image_dir(path, n: int | None = None, seed: int = 0, size: int = 128
                   ) -> np.ndarray:
    """Read the PNG/JPEG cutouts of a directory (sorted by name) as uint8 (N, size, size, 3).

    ``n`` draws a random subset of that many files (seeded), in sorted order.
    """
    from .data import read_rgb_image

    files = image_files(path)
    if n is not None and n < len(files):
        idx = np.sort(np.random.default_rng(seed).choice(len(files), n, replace=False))
        files = [files[i] for i in idx]
    if not files:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([read_rgb_image(p, size) for p in files])


def _blockiness(grey: np.ndarray) -> float:
    """JPEG 8x8 blockiness: mean |step| across block boundaries over the mean |step|
    inside blocks (1 for no compression, > 1 with blocking artefacts)."""
    dx = np.abs(np.diff(grey, axis=1))
    dy = np.abs(np.diff(grey, axis=0))
    bx = np.zeros(dx.shape[1], bool)
    bx[7::8] = True
    by = np.zeros(dy.shape[0], bool)
    by[7::8] = True
    across = np.concatenate([dx[:, bx].ravel(), dy[by, :].ravel()]).mean()
    inside = np.concatenate([dx[:, ~bx].ravel(), dy[~by, :].ravel()]).mean()
    return float(across / max(inside, 1e-3))


def _one_image_stats(img: np.ndarray) -> dict:
    from scipy import ndimage
    from skimage.feature import peak_local_max

    a = np.asarray(img, dtype=np.float32)
    h, w, _ = a.shape
    grey = a.mean(axis=2)
    border = np.ones((h, w), bool)
    border[BORDER:-BORDER, BORDER:-BORDER] = False
    out = {}
    sky = np.median(a[border], axis=0)
    noise = 1.4826 * np.median(np.abs(a[border] - sky), axis=0)
    for k, c in enumerate("RGB"):
        out[f"sky_{c}"] = float(sky[k])
        out[f"noise_{c}"] = float(noise[k])
    gsky = float(np.median(grey[border]))
    gnoise = float(max(1.4826 * np.median(np.abs(grey[border] - gsky)), 0.5))
    # noise from pixel-to-pixel differences (insensitive to gradients and sources)
    out["noise_diff"] = float(1.4826 * np.median(np.abs(np.diff(grey[border[:, 0]], axis=1)))
                              / np.sqrt(2))
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rr = np.hypot(yy - cy, xx - cx)
    centre = rr <= 3.0
    sub = a - sky
    c_rgb = np.maximum(sub[centre].mean(axis=0), 0.5)
    t_rgb = np.maximum(sub.reshape(-1, 3).mean(axis=0), 0.5)
    out["centre_R_G"] = float(np.log(c_rgb[0] / c_rgb[1]))
    out["centre_B_G"] = float(np.log(c_rgb[2] / c_rgb[1]))
    out["stamp_R_G"] = float(np.log(t_rgb[0] / t_rgb[1]))
    out["stamp_B_G"] = float(np.log(t_rgb[2] / t_rgb[1]))
    # colour of the raw stamp (sky included)
    mean = a.reshape(-1, 3).mean(axis=0) + 1.0
    out["raw_R_G"] = float(np.log(mean[0] / mean[1]))
    out["raw_B_G"] = float(np.log(mean[2] / mean[1]))
    out["centre_sb"] = float(grey[centre].mean() - gsky)
    out["centre_peak"] = float(grey[rr <= 1.5].max())
    out["sat_frac"] = float((a.max(axis=2) >= 254).mean())
    out["black_frac"] = float((a.max(axis=2) <= 1).mean())
    for t in (20, 60):
        out[f"bright_frac_{t}"] = float((grey - gsky > t).mean())
    out["bright_frac_5sig"] = float((grey - gsky > 5 * gnoise).mean())
    for lo, hi in ANNULI:
        ring = (rr >= lo) & (rr < hi)
        out[f"prof_{lo}_{hi}"] = float(grey[ring].mean() - gsky)
    # concentration of the centre: light within 3 px over light within 12 px
    out["conc_3_12"] = float(out["prof_0_3"] / max(abs(out["prof_6_12"]) + out["prof_0_3"], 1.0))
    sm = ndimage.gaussian_filter(grey, 1.5)
    thr = gsky + max(5 * gnoise / 1.5, 3.0)
    peaks = peak_local_max(sm, min_distance=3, threshold_abs=thr, exclude_border=2)
    out["n_peaks"] = float(len(peaks))
    out["n_peaks_bright"] = float((sm[tuple(peaks.T)] > gsky + 40).sum()) if len(peaks) else 0.0
    big = ndimage.gaussian_filter(grey, 3.0)
    py, px = np.unravel_index(np.argmax(big), big.shape)
    out["peak_offset"] = float(np.hypot(py - cy, px - cx))
    lab, nlab = ndimage.label(sm > thr)
    out["n_segments"] = float(nlab)
    cl = lab[int(cy), int(cx)]
    out["centre_seg_frac"] = float((lab == cl).mean()) if cl > 0 else 0.0
    out["blockiness"] = _blockiness(grey)
    out["grad_energy"] = float(np.mean(np.abs(np.diff(sm, axis=1))))
    return out


def image_statistics(images) -> pd.DataFrame:
    """Per-image statistics of uint8 RGB cutouts (N, H, W, 3), one row per image.

    Columns: ``sky_{R,G,B}``, ``noise_{R,G,B}`` (median and 1.4826 MAD of the ``BORDER``
    -pixel frame), ``noise_diff`` (noise from neighbour differences), colours as log
    channel ratios of the sky-subtracted centre (r <= 3 px) and whole stamp
    (``centre_R_G``, ``centre_B_G``, ``stamp_*``) and of the raw stamp (``raw_*``),
    ``centre_sb`` / ``centre_peak`` (central surface brightness over the sky, peak value),
    ``sat_frac`` / ``black_frac``, bright-pixel fractions (grey - sky > 20, > 60, > 5 sigma),
    the radial profile ``prof_<lo>_<hi>`` (mean grey - sky in annuli, pixels),
    ``conc_3_12``, neighbour counts ``n_peaks`` / ``n_peaks_bright`` (local maxima of the
    smoothed image above 5 sigma / above sky + 40), ``n_segments``, ``centre_seg_frac``
    (area of the connected bright region at the centre), ``peak_offset`` (pixels from the
    centre to the brightest smoothed peak), ``blockiness`` (JPEG 8x8) and ``grad_energy``.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3); got {images.shape}")
    return pd.DataFrame([_one_image_stats(im) for im in images])


def _tiny_cnn(shape, seed: int):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape)
    x = layers.Rescaling(1.0 / 255)(inp)
    x = layers.AveragePooling2D(2)(x)
    for f in (8, 16, 32):
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(16, activation="relu")(x)
    out = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    return model


def _split(cv, X, y, groups):
    """``cv.split`` with the groups only where they are used (StratifiedKFold warns)."""
    return cv.split(X, y) if groups is None else cv.split(X, y, groups)


def two_sample_auc(images_a, images_b, method: str = "trees", folds: int = 5, seed: int = 0,
                   epochs: int = 4, importance_repeats: int = 3, stats_a=None,
                   stats_b=None, threads: int = 1, groups_a=None, groups_b=None) -> dict:
    """Cross-validated AUC of a classifier telling set ``a`` (label 1) from set ``b`` (0).

    Parameters
    ----------
    images_a, images_b : uint8 (N, H, W, 3)
        E.g. synthetic candidate cutouts and real cutouts.
    method : {"trees", "cnn"}
        Gradient boosting on :func:`image_statistics`, or a tiny CNN on the pixels.
    folds : int
        Stratified K-fold splits (shuffled with ``seed``).
    seed : int
    epochs : int
        CNN epochs per fold.
    importance_repeats : int
        Permutation repeats for the trees' feature importance (0 skips it).
    stats_a, stats_b : DataFrame, optional
        Precomputed :func:`image_statistics` (trees only).
    threads : int
        OpenMP threads for the boosting (trees only).
    groups_a, groups_b : array-like, optional
        Group of each image (e.g. the host field of a synthetic cutout). Given, the folds
        keep every group whole (``StratifiedGroupKFold``): cutouts of one field share its
        sky level, noise and host, and a classifier that has seen a field's siblings in
        training recognises its fingerprint rather than the look of the synthetic sky. An
        absent side puts each of its images in a group of its own (the real cutouts are
        one per field). The number of folds is capped at the number of groups of either
        set.

    Returns
    -------
    dict
        ``auc`` (mean over folds), ``auc_std``, ``fold_aucs``, ``n_a``, ``n_b``,
        ``method``, ``p_a`` and ``p_b`` (each image's out-of-fold probability of being in
        set ``a``: the synthetic cutouts with the highest and the real ones with the lowest
        show how the sky gives itself away and what it lacks, :func:`plot_extremes`) and,
        for trees, ``feature_importance`` (DataFrame: permutation drop in AUC, mean over
        folds, and the single-feature AUC ``auc_1d``, sorted) else None.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if method not in ("trees", "cnn"):
        raise ValueError(f"method must be 'trees' or 'cnn', not {method!r}")
    n_a = len(stats_a) if stats_a is not None else len(images_a)
    n_b = len(stats_b) if stats_b is not None else len(images_b)
    y = np.concatenate([np.ones(n_a, np.int8), np.zeros(n_b, np.int8)])
    groups = None
    if groups_a is not None or groups_b is not None:
        ga = (pd.factorize(np.asarray(groups_a))[0] if groups_a is not None
              else np.arange(n_a))
        gb = (pd.factorize(np.asarray(groups_b))[0] if groups_b is not None
              else np.arange(n_b))
        groups = np.concatenate([ga, ga.max(initial=-1) + 1 + gb])
        # every test fold needs both sets: no more folds than either set has groups
        n_ga, n_gb = len(np.unique(ga)), len(np.unique(gb))
        folds = min(folds, n_ga, n_gb)
        if folds < 2:
            raise ValueError("a grouped two-sample test needs at least 2 groups in each "
                             f"set (got {n_ga} and {n_gb})")
        skf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    aucs, importance = [], None
    p_oof = np.full(len(y), np.nan)
    if method == "trees":
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.inspection import permutation_importance
        from threadpoolctl import threadpool_limits

        sa = image_statistics(images_a) if stats_a is None else stats_a
        sb = image_statistics(images_b) if stats_b is None else stats_b
        X = pd.concat([sa, sb], ignore_index=True)
        imp = np.zeros(X.shape[1])
        # one thread: OpenMP spin-waiting makes boosting crawl on a shared, loaded machine
        limiter = threadpool_limits(limits=threads)
        for k, (tr, te) in enumerate(_split(skf, X, y, groups)):
            clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1,
                                                 random_state=seed + k)
            clf.fit(X.iloc[tr], y[tr])
            p_oof[te] = clf.predict_proba(X.iloc[te])[:, 1]
            aucs.append(roc_auc_score(y[te], p_oof[te]))
            if importance_repeats:
                pi = permutation_importance(clf, X.iloc[te], y[te], scoring="roc_auc",
                                            n_repeats=importance_repeats,
                                            random_state=seed + k)
                imp += pi.importances_mean / folds
        limiter.restore_original_limits()
        auc1 = [max(a, 1 - a) for a in (roc_auc_score(y, X[c].fillna(0)) for c in X.columns)]
        importance = pd.DataFrame({"feature": X.columns, "importance": imp, "auc_1d": auc1}
                                  ).sort_values(["importance", "auc_1d"], ascending=False
                                                ).reset_index(drop=True)
    else:
        X = np.concatenate([np.asarray(images_a), np.asarray(images_b)]).astype(np.uint8)
        for k, (tr, te) in enumerate(_split(skf, np.zeros(len(y)), y, groups)):
            model = _tiny_cnn(X.shape[1:], seed + k)
            w1 = 0.5 * len(tr) / max(int(y[tr].sum()), 1)
            w0 = 0.5 * len(tr) / max(int((1 - y[tr]).sum()), 1)
            model.fit(X[tr], y[tr].astype(np.float32), epochs=epochs, batch_size=16,
                      verbose=0, class_weight={0: w0, 1: w1})
            p_oof[te] = model.predict(X[te], batch_size=128, verbose=0).ravel()
            aucs.append(roc_auc_score(y[te], p_oof[te]))
    return {"auc": float(np.mean(aucs)), "auc_std": float(np.std(aucs)),
            "fold_aucs": [float(a) for a in aucs], "n_a": int(n_a), "n_b": int(n_b),
            "method": method, "grouped": groups is not None,
            "p_a": p_oof[:n_a], "p_b": p_oof[n_a:], "feature_importance": importance}


def trees_by_class(stats_a: pd.DataFrame, labels_a, stats_b: pd.DataFrame, classes_b,
                   groups_a=None, folds: int = 5, seed: int = 0) -> dict:
    """The trees two-sample AUC within each class: synthetic galaxies (label 0) against
    the real cutouts that are not shreds by eye, synthetic shreds (1) against the real
    shreds.

    The overall AUC mixes two questions: whether each class looks real, and whether the
    classes come in the real proportions. Within a class only the first is left, so the
    class whose look gives the synthetic sky away shows.

    Parameters
    ----------
    stats_a, stats_b : DataFrame
        :func:`image_statistics` of the synthetic and the real cutouts.
    labels_a : array-like of int
        Truth label of each synthetic cutout (1 = shred).
    classes_b : array-like of int
        Eye class of each real cutout: 1 shred, 0 not a shred, -1 unsure or unlabelled
        (left out); :func:`catclean.shreds.real.eye_classes_of` reads them.
    groups_a : array-like, optional
        Host field of each synthetic cutout (see :func:`two_sample_auc`).

    Returns
    -------
    dict
        ``{"galaxy": {...}, "shred": {...}}``, each with ``auc``, ``auc_std``, ``n_a``,
        ``n_b``; a class with fewer than 2 cutouts (or host fields) on a side is absent.
    """
    labels_a, classes_b = np.asarray(labels_a), np.asarray(classes_b)
    out = {}
    for name, value in (("galaxy", 0), ("shred", 1)):
        a_mask, b_mask = labels_a == value, classes_b == value
        ga = None if groups_a is None else np.asarray(groups_a)[a_mask]
        n_ga = int(a_mask.sum()) if ga is None else len(np.unique(ga))
        if min(n_ga, int(b_mask.sum())) < 2:
            continue
        res = two_sample_auc(None, None, method="trees", folds=folds, seed=seed,
                             importance_repeats=0,
                             stats_a=stats_a[a_mask].reset_index(drop=True),
                             stats_b=stats_b[b_mask].reset_index(drop=True), groups_a=ga)
        out[name] = {k: res[k] for k in ("auc", "auc_std", "n_a", "n_b")}
    return out


def plot_statistics(stats_a: pd.DataFrame, stats_b: pd.DataFrame, path, labels=("synthetic",
                    "real"), columns=None, ncols: int = 6):
    """Side-by-side (overlaid, density-normalised) histograms of the statistics; PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(columns or stats_a.columns)
    nrows = int(np.ceil(len(cols) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.1 * nrows))
    for ax, c in zip(np.ravel(axes), cols):
        va, vb = stats_a[c].to_numpy(float), stats_b[c].to_numpy(float)
        both = np.concatenate([va, vb])
        both = both[np.isfinite(both)]
        lo, hi = np.percentile(both, [1, 99]) if len(both) else (0, 1)
        if hi <= lo:
            hi = lo + 1
        bins = np.linspace(lo, hi, 30)
        ax.hist(np.clip(va, lo, hi), bins, density=True, histtype="step", color="C1",
                label=labels[0])
        ax.hist(np.clip(vb, lo, hi), bins, density=True, histtype="step", color="C0",
                label=labels[1])
        ax.set_title(c, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in np.ravel(axes)[len(cols):]:
        ax.axis("off")
    np.ravel(axes)[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_gallery(images_a, images_b, path, n: int = 24, seed: int = 0,
                 labels=("synthetic", "real"), ncols: int = 8, titles_a=None):
    """Gallery: ``n`` random cutouts of set ``a`` (top block) above ``n`` of set ``b``; PNG.

    ``titles_a`` (optional list, one per image of ``a``) labels the synthetic stamps
    (e.g. their truth labels).
    """
    rng = np.random.default_rng(seed)
    ia = rng.choice(len(images_a), min(n, len(images_a)), replace=False)
    ib = rng.choice(len(images_b), min(n, len(images_b)), replace=False)
    ta = [labels[0] if titles_a is None else f"{labels[0]}:{titles_a[i]}" for i in ia]
    return _stamp_grid(images_a, ia, ta, images_b, ib, [labels[1]] * len(ib), path, ncols)


def _stamp_grid(images_a, ia, titles_a, images_b, ib, titles_b, path, ncols: int,
                suptitle: str | None = None):
    """Stamps ``images_a[ia]`` (top block, orange titles) above ``images_b[ib]`` (blue
    titles), ``ncols`` a row; PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows_a, rows_b = int(np.ceil(len(ia) / ncols)), int(np.ceil(len(ib) / ncols))
    fig, axes = plt.subplots(rows_a + rows_b, ncols,
                             figsize=(1.4 * ncols, 1.65 * (rows_a + rows_b)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (i, t) in enumerate(zip(ia, titles_a)):
        ax = axes[k // ncols, k % ncols]
        ax.imshow(images_a[i])
        ax.set_title(t, fontsize=6, color="C1")
    for k, (i, t) in enumerate(zip(ib, titles_b)):
        ax = axes[rows_a + k // ncols, k % ncols]
        ax.imshow(images_b[i])
        ax.set_title(t, fontsize=6, color="C0")
    if suptitle:
        fig.suptitle(suptitle, fontsize=7)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 0.96) if suptitle else (0, 0, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def extreme_indices(p_a, p_b, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``n`` images of set ``a`` with the highest probability of being
    ``a`` (most surely ``a`` first) and of the ``n`` of set ``b`` with the lowest (most
    surely ``b`` first); images without a probability (NaN) come last."""
    p_a, p_b = np.asarray(p_a, float), np.asarray(p_b, float)
    ia = np.argsort(-np.nan_to_num(p_a, nan=-np.inf), kind="stable")[:n]
    ib = np.argsort(np.nan_to_num(p_b, nan=np.inf), kind="stable")[:n]
    return ia, ib


def plot_extremes(images_a, p_a, images_b, p_b, path, n: int = 16, ncols: int = 8,
                  labels=("synthetic", "real"), titles_a=None):
    """Gallery of the two-sample test's verdicts: the ``n`` cutouts of set ``a`` it finds
    most surely ``a`` (top block: how a synthetic sky gives itself away) above the ``n``
    of set ``b`` it finds most surely ``b`` (what the synthetic sky lacks); PNG.

    ``p_a``, ``p_b`` are the out-of-fold probabilities of being in ``a``
    (:func:`two_sample_auc`'s ``p_a`` and ``p_b``); each stamp is titled with its
    probability (and ``titles_a``, e.g. the truth label, for ``a``).
    """
    p_a, p_b = np.asarray(p_a, float), np.asarray(p_b, float)
    ia, ib = extreme_indices(p_a, p_b, n)
    ta = [f"{labels[0] if titles_a is None else f'{labels[0]}:{titles_a[i]}'} p={p_a[i]:.3f}"
          for i in ia]
    tb = [f"{labels[1]} p={p_b[i]:.3f}" for i in ib]
    return _stamp_grid(images_a, ia, ta, images_b, ib, tb, path, ncols,
                       suptitle=f"most surely {labels[0]} (top) and most surely {labels[1]} "
                       f"(bottom); p = out-of-fold probability of being {labels[0]}")


def load_run_cutouts(rgb_stores, cuts_tables, n: int | None = None, seed: int = 0
                     ) -> np.ndarray:
    """A run's own candidate cutouts: the ``ok`` RGB cutouts of the rows that pass the cuts.

    Parameters
    ----------
    rgb_stores : sequence of path-like
        The run's RGB :class:`~catclean.cutouts.store.CutoutStore` directories.
    cuts_tables : sequence of path-like
        The matching cut partitions (``source_id``, ``passes_cuts``): only the candidates
        the shred CNN scores are drawn.
    n : int, optional
        Draw at most this many (seeded); None keeps all.

    Returns
    -------
    uint8 (N, H, W, 3), in store order.
    """
    from ..cutouts.store import CutoutStore
    from ..io import read_parquet

    passing = set()
    for path in cuts_tables:
        cuts = read_parquet(path)
        passing.update(cuts.loc[cuts["passes_cuts"].fillna(False).astype(bool),
                                "source_id"].astype(str))
    stores, picks = [], []  # picks: (store number, source_id), in store order
    for path in rgb_stores:
        store = CutoutStore(path)
        idx = store.index
        ok = idx.loc[(idx["cutout_status"] == "ok")
                     & idx["source_id"].astype(str).isin(passing), "source_id"]
        picks += [(len(stores), str(sid)) for sid in ok]
        stores.append(store)
    if n is not None and n < len(picks):
        keep = np.sort(np.random.default_rng(seed).choice(len(picks), n, replace=False))
        picks = [picks[i] for i in keep]
    shape = stores[0].shape if stores else (128, 128, 3)
    parts = [np.zeros((0, *shape), np.uint8)]
    for k, store in enumerate(stores):  # one read per store
        ids = [sid for j, sid in picks if j == k]
        if ids:
            parts.append(store.get(ids)[0])
    return np.concatenate(parts)


def measure(set_path, real, out, n: int = 400, seed: int = 0, folds: int = 5,
            methods=("trees", "cnn"), epochs: int = 4, real_stats=None,
            real_classes=None, draws: int = 1) -> dict:
    """Two-sample AUCs of ``n`` random images of a training set against real cutouts.

    ``set_path`` is a set ``.npz`` or a glob of ``make-set`` parts.
    ``real`` is a directory of PNG/JPEG cutouts or a uint8 (N, H, W, 3) array (e.g. a
    live run's own cutouts, :func:`load_run_cutouts`).
    ``draws`` > 1 repeats the trees test on that many seeded draws of ``n`` (seeds
    ``seed``, ``seed + 1``, ...): one draw of 400 moves the AUC by about +-0.01, and a
    sky of few hosts by more (docs/realism.md), so a change to the sky is judged on the
    mean over draws from many hosts. ``trees`` then holds the first draw's full result
    plus ``auc_draws``, ``auc_draws_mean`` and ``auc_draws_std``.
    Writes the statistic histograms, the gallery, ``feature_importance.csv``,
    ``realism.json`` (the returned summary) and ``extremes.png`` (:func:`plot_extremes`
    of the first draw, by the trees if they ran, else the CNN) into ``out``.
    ``real_stats`` is an optional Parquet cache of the real cutouts' statistics (read if
    present, else written). A set with ``groups`` (the host field of each cutout, as
    ``make-set`` and the workflow's training set write) is split by field (see
    :func:`two_sample_auc`); each real cutout is its own field. ``real_classes`` (the eye
    class of each real cutout, as :func:`trees_by_class` takes them) adds
    ``trees_by_class`` for a set with labels.
    The command line is ``catclean shreds realism``.
    """
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if draws < 1:
        raise ValueError(f"draws must be >= 1, not {draws}")
    from .stage import join_parts

    data, _ = join_parts(set_path)
    images, lab, groups_all = data["images"], data["labels"], data["groups"]
    if len(images) < n:
        # a classifier trained on fewer synthetic cutouts separates less well
        print(f"note: {set_path} holds {len(images)} cutouts, fewer than n = {n}: its AUC "
              f"is lower than that of a draw of {n} from the same sky", flush=True)
    draw_idx = [np.sort(np.random.default_rng(seed + k).choice(
        len(images), min(n, len(images)), replace=False)) for k in range(draws)]
    idx = draw_idx[0]
    syn = images[idx]
    groups = None if groups_all is None else groups_all[idx]
    if isinstance(real, np.ndarray):
        real_name = f"{len(real)} cutouts of the run"
    else:
        real_name, real = str(real), load_image_dir(real)
    if len(real) < 2:
        raise ValueError(f"the realism test needs real cutouts; {real_name} has {len(real)}")
    if real_stats and Path(real_stats).exists():
        sb = pd.read_parquet(real_stats)
    else:
        sb = image_statistics(real)
        if real_stats:
            sb.to_parquet(real_stats)
    # the statistics of every drawn cutout once (draws overlap), one row per cutout
    drawn = np.unique(np.concatenate(draw_idx))
    drawn_stats = image_statistics(images[drawn])

    def stats_of(di):
        return drawn_stats.iloc[np.searchsorted(drawn, di)].reset_index(drop=True)

    sa = stats_of(idx)
    summary = {"set": str(set_path), "real": real_name, "n_set": int(len(images)),
               "n_groups": None if groups_all is None else int(len(np.unique(groups_all))),
               "draws": int(draws)}
    titles = None if lab is None else np.where(lab[idx] == 1, "shred", "galaxy")
    extremes_by = "trees" if "trees" in methods else methods[0]
    for m in methods:
        res = two_sample_auc(syn, real, method=m, folds=folds, seed=seed, epochs=epochs,
                             stats_a=sa if m == "trees" else None,
                             stats_b=sb if m == "trees" else None, groups_a=groups)
        p_a, p_b = res.pop("p_a"), res.pop("p_b")
        if m == extremes_by:
            plot_extremes(syn, p_a, real, p_b, out / "extremes.png", titles_a=titles)
        fi = res.pop("feature_importance")
        if fi is not None:
            fi.to_csv(out / "feature_importance.csv", index=False)
            res["top_features"] = fi.head(8).round(4).to_dict("records")
        summary[m] = res
        print(m, round(res["auc"], 4), "+-", round(res["auc_std"], 4), flush=True)
        if m == "trees" and draws > 1:
            aucs = [res["auc"]]
            for k, di in enumerate(draw_idx[1:], start=1):
                aucs.append(two_sample_auc(
                    None, None, folds=folds, seed=seed + k, importance_repeats=0,
                    stats_a=stats_of(di), stats_b=sb,
                    groups_a=None if groups_all is None else groups_all[di])["auc"])
            res.update(auc_draws=aucs, auc_draws_mean=float(np.mean(aucs)),
                       auc_draws_std=float(np.std(aucs)))
            print(f"trees over {draws} draws of {len(idx)}: {np.mean(aucs):.4f} +- "
                  f"{np.std(aucs):.4f}", flush=True)
    if real_classes is not None and lab is not None and "trees" in methods:
        if len(real_classes) != len(sb):
            raise ValueError(f"{len(real_classes)} eye classes for {len(sb)} real cutouts "
                             f"({real_name})")
        summary["trees_by_class"] = trees_by_class(sa, lab[idx], sb, real_classes, groups,
                                                   folds=folds, seed=seed)
        for name, res in summary["trees_by_class"].items():
            print(f"trees, {name} class only", round(res["auc"], 4), "+-", round(res["auc_std"], 4),
                  flush=True)
    plot_statistics(sa, sb, out / "statistics_hist.png")
    plot_gallery(syn, real, out / "gallery.png", n=24, seed=seed, titles_a=titles)
    (out / "realism.json").write_text(json.dumps(summary, indent=1))
    return summary
