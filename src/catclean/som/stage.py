"""The som stage: the functions the workflow rules (``workflow/rules/som.smk``), the
``catclean som`` commands and the tests call (paper 004 in the pipeline, issue 13).

Flow::

    train_cutout_som       grz cubes of every partition -> preprocessed images -> SOM
                           (PINK v2 SOM file + settings JSON [+ PINK image file])
    map_cutouts            per partition: every source -> BMU, distance, transform, reason
    annotate_som_neurons   all mappings + truth labels (or a user CSV) -> neuron table
    som_columns            per partition: mapping + neuron table -> catalog columns
    plot_som               prototypes (paper Fig. 6), hit map (Fig. 7), annotation map

``settings`` below is the chosen preset of the ``som`` config section, complete
(:func:`catclean.config.preset_settings`): lattice and schedule keys of
:class:`~catclean.som.core.SOMSettings` plus ``image_dim``, ``bands``, ``preprocess``,
``max_train_images`` and ``map_numrot``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .annotate import annotate_neurons, build_source_table, read_neuron_labels
from .core import SOM, MapResult, SOMSettings, map_images, train_som
from .preprocess import PreprocessSettings, preprocess_images

log = logging.getLogger(__name__)

#: cutout-store status -> som_reason of a source that gets no image
STATUS_REASON = {"missing": "no_cutout", "off_footprint": "off_footprint",
                 "corrupt": "corrupt_cutout", "blank": "blank_image"}
#: truth labels that annotate a neuron (the shred CNN's two classes, paper 001)
ANNOTATED_LABELS = ("galaxy", "shred")
MAPPING_COLUMNS = ("som_bmu_row", "som_bmu_col", "som_distance", "som_transform",
                   "som_rotation_deg", "som_flip", "som_reason")
UNITS = {"som_distance": "", "som_rotation_deg": "deg", "p_shred_som": ""}
_BANDS = {"g": 0, "r": 1, "z": 2}


def som_settings(settings: dict) -> SOMSettings:
    """The :class:`SOMSettings` part of a preset."""
    return SOMSettings.from_config(settings)


def resample(cubes: np.ndarray, image_dim: int) -> np.ndarray:
    """(n, C, S, S) -> (n, C, image_dim, image_dim): block mean for an integer factor,
    else linear resampling; unchanged when ``S == image_dim``."""
    n, c, s, _ = cubes.shape
    if s == image_dim:
        return cubes
    if s % image_dim == 0:
        f = s // image_dim
        return cubes.reshape(n, c, image_dim, f, image_dim, f).mean(axis=(3, 5))
    from scipy.ndimage import zoom

    return zoom(cubes, (1, 1, image_dim / s, image_dim / s), order=1)[..., :image_dim, :image_dim]


def partition_images(store_path, source_ids: Sequence[str], settings: dict):
    """Preprocessed SOM images of ``source_ids`` from one grz :class:`CutoutStore`.

    Returns
    -------
    images : ndarray, (n, C, image_dim, image_dim) float32 (zeros where not usable)
    reasons : ndarray of object, (n,): None when usable, else ``no_cutout``,
        ``off_footprint``, ``corrupt_cutout``, ``blank_image`` (store status) or the
        preprocessing's ``nan_pixels`` / ``blank_image`` / ``no_signal``.
    """
    from ..cutouts import CutoutStore

    ids = [str(s) for s in source_ids]
    dim = settings["image_dim"]
    chans = [_BANDS[b] for b in settings["bands"]]
    images = np.zeros((len(ids), len(chans), dim, dim), np.float32)
    reasons = np.full(len(ids), "no_cutout", dtype=object)
    if not ids:
        return images, reasons
    cubes, status = CutoutStore(store_path).get(ids)  # (n, S, S, 3) nanomaggies
    reasons[:] = [STATUS_REASON.get(s, f"cutout_{s}") for s in status]
    ok = np.flatnonzero(status == "ok")
    if ok.size:
        raw = np.asarray(cubes[ok], np.float64)[..., chans].transpose(0, 3, 1, 2)
        prep, why = preprocess_images(resample(raw, dim),
                                      PreprocessSettings(**settings["preprocess"]))
        images[ok] = prep
        reasons[ok] = why
    return images, reasons


def _candidates(cuts_path, train_sources: str) -> list[str]:
    from ..io import read_parquet

    cuts = read_parquet(cuts_path)
    if train_sources == "passes_cuts":
        cuts = cuts[cuts["passes_cuts"].fillna(False).astype(bool)]
    return cuts["source_id"].astype(str).tolist()


def training_images(partitions: Sequence[tuple[str, str]], settings: dict, train_sources: str,
                    seed: int) -> tuple[np.ndarray, list[str]]:
    """Usable preprocessed images of every ``(grz store, cuts table)`` partition, at most
    ``max_train_images`` of them drawn with ``seed``; returns ``(images, source_ids)``."""
    imgs, ids = [], []
    for store, cuts in partitions:
        sid = _candidates(cuts, train_sources)
        im, why = partition_images(store, sid, settings)
        keep = np.array([r is None for r in why], bool)
        imgs.append(im[keep])
        ids += [s for s, k in zip(sid, keep) if k]
    dim, nch = settings["image_dim"], len(settings["bands"])
    images = np.concatenate(imgs) if imgs else np.zeros((0, nch, dim, dim), np.float32)
    cap = settings["max_train_images"]
    if cap is not None and len(ids) > cap:
        pick = np.sort(np.random.default_rng(seed).choice(len(ids), cap, replace=False))
        images, ids = images[pick], [ids[i] for i in pick]
    return images, ids


def train(partitions: Sequence[tuple[str, str]], settings: dict, train_sources: str, seed: int,
          som_path, settings_path, images_path=None) -> SOM:
    """Train the SOM on the cutouts of every partition (rule ``train_cutout_som``).

    Writes the SOM as a PINK v2 SOM file (settings in its comment block), the settings and
    training history as JSON, and, when ``images_path`` is given, the preprocessed training
    images as a PINK v2 image file (same order as the ``source_ids`` in the JSON).
    """
    from .pinkio import save_som, write_images

    images, ids = training_images(partitions, settings, train_sources, seed)
    if not ids:
        raise ValueError("som: no usable cutout to train on")
    log.info("training a %dx%d %s SOM on %d images of %s px, %d band(s)", settings["rows"],
             settings["cols"], settings["layout"], len(ids), settings["image_dim"],
             len(settings["bands"]))
    som = train_som(images, som_settings(settings), seed=seed,
                    progress=lambda rec: log.info("epoch %s", rec))
    Path(som_path).parent.mkdir(parents=True, exist_ok=True)
    save_som(som, som_path, comment=f"catclean som stage, preset {settings.get('preset')}")
    record = {"settings": settings, "train_sources": train_sources, "seed": seed,
              "n_train": len(ids), "neuron_dim": int(som.weights.shape[-1]),
              "history": som.history, "source_ids": ids}
    Path(settings_path).write_text(json.dumps(record, indent=1, default=str))
    if images_path is not None:
        write_images(images_path, images, comment=f"catclean som training images ({len(ids)})")
    return som


def mapping_table(result: MapResult, source_ids: Sequence[str], reasons) -> pd.DataFrame:
    """Per-source mapping columns with nullable dtypes (nulls + ``som_reason`` if unmapped)."""
    t = build_source_table(result, None, reasons=reasons)
    mapped = t["som_reason"].isna().to_numpy()
    out = pd.DataFrame({"source_id": pd.Series(list(source_ids), dtype="string")})
    for col in ("som_bmu_row", "som_bmu_col", "som_transform"):
        out[col] = pd.array(t[col].to_numpy(), dtype="Int64")
        out.loc[~mapped, col] = pd.NA
    for col in ("som_distance", "som_rotation_deg"):
        out[col] = t[col].to_numpy(np.float64)
    out["som_flip"] = pd.array(t["som_flip"].to_numpy(), dtype="boolean")
    out.loc[~mapped, "som_flip"] = pd.NA
    out["som_reason"] = t["som_reason"].to_numpy()
    out["som_reason"] = out["som_reason"].astype("string")
    return out


#: pandas dtypes of the mapping columns (Parquet: int64 / double / bool / string, nullable)
MAPPING_DTYPES = {"source_id": "string", "som_bmu_row": "Int64", "som_bmu_col": "Int64",
                  "som_distance": "float64", "som_transform": "Int64",
                  "som_rotation_deg": "float64", "som_flip": "boolean", "som_reason": "string"}


def read_mapping(path) -> pd.DataFrame:
    """A ``map_cutouts`` output with its nullable dtypes (Parquet loses pandas' dtypes)."""
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas(types_mapper=pd.ArrowDtype).astype(MAPPING_DTYPES)


def map_partition(cuts_path, store_path, som_path, settings: dict, batch_size: int,
                  out_path=None) -> pd.DataFrame:
    """Map every source of one partition onto the SOM (rule ``map_cutouts``).

    One row per ``source_id`` of the cut table: ``som_bmu_row``, ``som_bmu_col``,
    ``som_transform`` (Int64), ``som_distance`` (float64, preprocessed pixel units),
    ``som_rotation_deg`` (float64, deg), ``som_flip`` (boolean) and ``som_reason``
    (string, null when mapped).
    """
    from ..io import read_parquet, write_parquet
    from .pinkio import load_som

    ids = read_parquet(cuts_path)["source_id"].astype(str).tolist()
    som = load_som(som_path)
    images, reasons = partition_images(store_path, ids, settings)
    result = map_images(som, images, numrot=settings["map_numrot"], batch_size=batch_size)
    out = mapping_table(result, ids, reasons)
    log.info("%s: %d sources, %d mapped, reasons %s", cuts_path, len(out),
             int(out.som_reason.isna().sum()), out.som_reason.value_counts().to_dict())
    if out_path is not None:
        write_parquet(out, out_path, units=UNITS, prov={"stage": "som", "som": str(som_path)})
    return out


def _truth(cuts_path) -> pd.Series:
    from ..io import read_parquet

    cuts = read_parquet(cuts_path)
    lab = cuts["truth_label"] if "truth_label" in cuts else pd.Series(pd.NA, index=cuts.index)
    lab = lab.astype("string")
    return pd.Series(lab.where(lab.isin(ANNOTATED_LABELS)).to_numpy(dtype=object),
                     index=cuts["source_id"].astype(str))


def _bmu_result(bmu: np.ndarray, numrot: int) -> MapResult:
    """A :class:`MapResult` carrying only best-matching neurons (for annotation)."""
    n = bmu.size
    nan = np.full(n, np.nan)
    return MapResult(bmu_index=bmu, bmu_row=bmu, bmu_col=bmu, distance=nan, transform=bmu,
                     rotation_deg=nan, flip=np.zeros(n, bool),
                     reason=np.where(bmu >= 0, None, "not_mapped"),
                     distances=np.zeros((n, 0), np.float32),
                     transforms=np.zeros((n, 0), np.int32), numrot=numrot)


def annotate(mapping_paths: Sequence[str], cuts_paths: Sequence[str], som_path,
             annotation: dict, out_path=None, labels_csv=None) -> pd.DataFrame:
    """Neuron table from every partition's mapping (rule ``annotate_som_neurons``).

    ``annotation['source']`` ``truth``: ``p_shred = n_shred / n_annotated`` over the mapped
    sources whose ``truth_label`` is galaxy or shred (paper 004 Sec. 8.2 option 2; null
    below ``min_annotated``). ``csv``: ``p_shred`` from the user's neuron labels
    (``labels_csv``). ``mapping_paths[i]`` and ``cuts_paths[i]`` are the same partition.

    Returns one row per neuron: ``neuron``, ``som_bmu_row``, ``som_bmu_col``,
    ``n_mapped``, ``n_annotated``, ``n_shred`` and ``p_shred``; written as CSV (readable
    back as a ``labels_csv``).
    """
    from .pinkio import load_som

    som = load_som(som_path)
    if len(mapping_paths) != len(cuts_paths):
        raise ValueError("one cuts table per mapping partition is needed")
    maps = []
    for mpath, cpath in zip(mapping_paths, cuts_paths):
        m = read_mapping(mpath)
        m["label"] = _truth(cpath).reindex(m["source_id"].astype(str)).to_numpy()
        maps.append(m)
    allm = pd.concat(maps, ignore_index=True) if maps else pd.DataFrame(
        columns=["som_bmu_row", "som_bmu_col", "label"])
    mapped = allm["som_bmu_row"].notna().to_numpy()
    lut = {tuple(rc): i for i, rc in enumerate(som.positions.tolist())}
    bmu = np.full(len(allm), -1, np.int64)
    bmu[mapped] = [lut[(int(r), int(c))] for r, c in
                   zip(allm["som_bmu_row"][mapped], allm["som_bmu_col"][mapped])]
    result = _bmu_result(bmu, som.numrot)
    labels = allm["label"].to_numpy(dtype=object) if annotation["source"] == "truth" else \
        np.full(len(allm), None, dtype=object)
    table = annotate_neurons(som, result, labels, annotation["positive_label"],
                             annotation["min_annotated"])
    if annotation["source"] == "csv":
        user = read_neuron_labels(labels_csv, annotation["positive_label"])
        table = table.drop(columns="p_shred").merge(
            user[["som_bmu_row", "som_bmu_col", "p_shred"]], how="left",
            on=["som_bmu_row", "som_bmu_col"])
    log.info("annotated %d of %d neurons (%s); %d mapped sources, %d annotated",
             int(table.p_shred.notna().sum()), len(table), annotation["source"],
             int(mapped.sum()), int(table.n_annotated.sum()))
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out_path, index=False)
    return table


def catalog_columns(mapping_path, neuron_table_path, out_path=None) -> pd.DataFrame:
    """Catalog columns of one partition (rule ``som_columns``): the mapping plus
    ``p_shred_som`` (float64), the annotated shred fraction of the source's BMU (null when
    unmapped or the neuron is not annotated)."""
    from ..io import read_metadata, write_parquet

    m = read_mapping(mapping_path)
    nt = pd.read_csv(neuron_table_path)
    key = ["som_bmu_row", "som_bmu_col"]
    lut = nt.set_index(key)["p_shred"]
    rc = pd.MultiIndex.from_arrays([m[k].fillna(-1).astype(np.int64) for k in key])
    p = lut.reindex(rc).to_numpy(np.float64, copy=True)
    p[m["som_bmu_row"].isna().to_numpy()] = np.nan
    out = m[["source_id", *MAPPING_COLUMNS[:-1]]].copy()
    out["p_shred_som"] = p
    out["som_reason"] = m["som_reason"].astype("string")
    if out_path is not None:
        prov = read_metadata(mapping_path)["provenance"]
        write_parquet(out, out_path, units=UNITS, prov={**prov, "neurons": str(neuron_table_path)})
    return out


def plots(som_path, neuron_table_path, prototypes_path, hits_path, annotation_path) -> None:
    """The report's SOM figures (rule ``plot_som``): prototype grid (paper 004 Fig. 6), hit
    map (Fig. 7) and per-neuron p_shred."""
    import matplotlib.pyplot as plt

    from .pinkio import load_som
    from .plots import plot_annotation_map, plot_hit_map, plot_prototypes

    som = load_som(som_path)
    table = pd.read_csv(neuron_table_path).sort_values("neuron")
    channel = len(som.weights[0]) // 2  # the middle band: r of grz
    for fig in (plot_prototypes(som, prototypes_path, channel=channel),
                plot_hit_map(som, np.repeat(table["neuron"].to_numpy(),
                                            table["n_mapped"].to_numpy()), hits_path),
                plot_annotation_map(som, table, annotation_path)):
        plt.close(fig)
