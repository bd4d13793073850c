"""Score catalog sources with a shred CNN (paper 001 Sec. 3.2).

Every source of a partition gets a row: ``p_shred`` (float64, softmax class 1) and
``is_shred = p_shred >= threshold`` (boolean, paper: 0.5) when it passes the cuts and its
RGB cutout is ``ok``; otherwise both are null and ``shreds_reason`` says why
(``fails cuts: <cut_reason>``, ``cutout blank: ...``, ``cutout missing: ...``). The model
is loaded once per job (:class:`ShredScorer`) and fed batches of ``ok`` cutouts only.

Models
------
- ``kind: keras`` -- a ``.keras`` file written by catclean (loaded with
  ``safe_mode=True``).
- ``kind: savedmodel`` -- the authors' released TensorFlow SavedModel directory
  (``CNN_shreds.dms``), through :class:`keras.layers.TFSMLayer` (serving signature) or,
  failing that, :func:`tensorflow.saved_model.load`. Their preprocessing: 128 x 128 RGB
  over 60" (0.469"/pix), pixels / 255, output softmax with class 1 = shred
  (papers/README.md). Foreign models are used only when the config names one.

Precision
---------
A ``keras`` model runs through :class:`catclean.inference.Predictor`: a compiled call with
a fixed batch shape in ``float32``, ``bfloat16`` or (ONNX Runtime) ``int8``, chosen by
:func:`catclean.inference.choose_precision` from ``shreds.inference.precision`` and the
model's inference card (rule ``prepare_shred_inference``). A SavedModel runs in float32
through its serving signature. While a batch is scored, the next one is read from the
cutout store in a reader thread.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class ShredScorer:
    """A loaded shred model: ``predict(uint8 (N, 128, 128, 3)) -> p_shred (N,)``.

    Parameters
    ----------
    path : path-like
        ``.keras`` file or SavedModel directory.
    kind : {'keras', 'savedmodel', 'auto'}
    batch_size : int
    endpoint : str
        SavedModel signature used by the TFSMLayer path.
    precision : {'auto', 'float32', 'bfloat16', 'int8'}
        Inference precision (``keras`` models; :func:`catclean.inference.choose_precision`).
        The one used is ``self.precision``.
    inference_dir : path-like, optional
        The model's prepared forms: ``card.json`` (accuracy guards, throughputs) and
        ``model.int8.onnx``. Without it only float32 is offered.
    fold_paths : list of path-like, optional
        The cross-validation folds' ``.keras`` models. With two or more,
        :meth:`predict_std` gives the standard deviation of their p_shred (float32,
        compiled): the fold-to-fold uncertainty of the score.
    """

    def __init__(self, path, kind: str = "auto", batch_size: int = 64,
                 endpoint: str = "serving_default", precision: str = "float32",
                 inference_dir=None, fold_paths=()):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"shred model not found: {self.path}")
        if kind == "auto":
            kind = "savedmodel" if self.path.is_dir() else "keras"
        self.kind = kind
        self.batch_size = int(batch_size)
        self.endpoint = endpoint
        self._fn = None
        self._predictor = None
        self.inference_dir = Path(inference_dir) if inference_dir else None
        self._load(precision)
        self.folds = []
        if len(fold_paths) >= 2:
            from ..inference import Predictor, load_keras

            self.folds = [Predictor(load_keras(f), "float32", self.batch_size)
                          for f in fold_paths]

    def predict_std(self, images: np.ndarray) -> np.ndarray:
        """Standard deviation (ddof 0) of p(shred) over the fold models; NaN without
        two or more folds."""
        images = np.asarray(images)
        if len(self.folds) < 2:
            return np.full(len(images), np.nan)
        x = images.astype(np.float32) / 255.0
        return np.std([f(x)[:, 1] for f in self.folds], axis=0).astype(np.float64)

    def _load(self, requested: str) -> None:
        import keras

        from ..inference import choose_precision, load_predictor

        if self.kind == "keras":
            self.model, self._predictor, self.precision_reason = load_predictor(
                self.path, requested, self.inference_dir, self.batch_size)
            self.precision = self._predictor.precision
            self.input_shape = tuple(self.model.input_shape[1:])
            return
        self.precision, self.precision_reason = choose_precision(requested, None)
        if self.kind != "savedmodel":
            raise ValueError(f"unknown shred model kind {self.kind!r} (keras | savedmodel)")
        try:
            layer = keras.layers.TFSMLayer(str(self.path), call_endpoint=self.endpoint)
            self._fn = layer
            self.model = layer
            self.loader = "TFSMLayer"
        except Exception as exc:  # older SavedModels without that signature name
            import tensorflow as tf

            log.info("TFSMLayer failed (%s); using tf.saved_model.load", exc)
            obj = tf.saved_model.load(str(self.path))
            sig = obj.signatures.get(self.endpoint) if hasattr(obj, "signatures") else None
            self._fn = sig if sig is not None else obj
            self.model = obj
            self.loader = "tf.saved_model.load"
        self.input_shape = (128, 128, 3)

    def _call(self, x: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        if self._predictor is not None:
            return self._predictor(x)[:, 1]
        out = self._fn(tf.constant(x))
        if isinstance(out, dict):  # serving signatures return {name: tensor}
            out = out[sorted(out)[0]] if len(out) > 1 else next(iter(out.values()))
        out = np.asarray(out)
        if out.ndim == 2 and out.shape[1] == 2:
            return out[:, 1]
        return out.reshape(len(x))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """p(shred) for uint8 RGB cutouts (N, H, W, 3); pixels are divided by 255."""
        images = np.asarray(images)
        if len(images) == 0:
            return np.zeros(0, dtype=np.float64)
        if tuple(images.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"cutouts have shape {images.shape[1:]}, the model expects "
                             f"{self.input_shape} (128 px over 60\" RGB)")
        if self._predictor is not None:  # fixed-shape batches inside the predictor
            return self._call(images.astype(np.float32) / 255.0).astype(np.float64)
        out = []
        for s in range(0, len(images), self.batch_size):
            x = images[s:s + self.batch_size].astype(np.float32) / 255.0
            out.append(self._call(x))
        return np.concatenate(out).astype(np.float64)


def score_partition(cuts: pd.DataFrame, store, scorer: ShredScorer | None,
                    threshold: float = 0.5, batch_size: int = 256) -> pd.DataFrame:
    """Shred columns for every row of the partition's cut table.

    Parameters
    ----------
    cuts : pandas.DataFrame
        ``source_id``, ``passes_cuts`` (and ``cut_reason``).
    store : catclean.cutouts.CutoutStore
        The partition's ``rgb`` store.
    scorer : ShredScorer or None
        None only when no source needs scoring.
    threshold : float
        ``is_shred = p_shred >= threshold`` (paper: 0.5).

    Returns
    -------
    pandas.DataFrame
        ``source_id`` (string), ``p_shred`` (Float64), ``p_shred_std`` (Float64: spread of
        the fold models, null with fewer than two), ``is_shred`` (boolean),
        ``shreds_reason`` (string; null when scored).
    """
    n = len(cuts)
    ids = cuts["source_id"].astype(str).to_numpy()
    p = np.full(n, np.nan)
    p_std = np.full(n, np.nan)
    reason = np.full(n, None, dtype=object)
    passes = cuts["passes_cuts"].fillna(False).astype(bool).to_numpy() \
        if "passes_cuts" in cuts else np.ones(n, bool)
    cut_reason = cuts["cut_reason"].astype(str).to_numpy() if "cut_reason" in cuts \
        else np.full(n, "")
    for i in np.flatnonzero(~passes):
        reason[i] = f"fails cuts: {cut_reason[i]}" if cut_reason[i] not in ("", "<NA>",
                                                                             "nan") \
            else "fails cuts"
    idx = store.index.set_index("source_id")
    pos = idx.reindex(ids)
    status = pos["cutout_status"].astype(object).where(pos["cutout_status"].notna(),
                                                       "missing").to_numpy()
    why = pos["reason"].astype(object).where(pos["reason"].notna(),
                                             "not in the cutout store").to_numpy()
    todo = np.flatnonzero(passes & (status == "ok"))
    for i in np.flatnonzero(passes & (status != "ok")):
        reason[i] = f"cutout {status[i]}" + (f": {why[i]}" if why[i] else "")
    if len(todo):
        if scorer is None:
            raise ValueError("sources need scoring but no shred model was given")
        chunks = [todo[s:s + batch_size] for s in range(0, len(todo), batch_size)]
        # the reader thread decodes chunk k + 1 while chunk k is scored (TensorFlow and
        # ONNX Runtime release the GIL)
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(_read, store, ids[chunks[0]])
            for k, part in enumerate(chunks):
                got = pending.result()
                if k + 1 < len(chunks):
                    pending = reader.submit(_read, store, ids[chunks[k + 1]])
                _score_chunk(part, got, scorer, p, p_std, reason)
        nonfinite = np.isin(np.arange(n), todo) & ~np.isfinite(p) & (reason == None)  # noqa: E711
        for i in np.flatnonzero(nonfinite):
            reason[i] = "model returned a non-finite probability"
    p_col = pd.Series(p, dtype="Float64")
    p_col[~np.isfinite(p)] = pd.NA
    is_shred = pd.Series(pd.array(np.where(np.isfinite(p), p >= threshold, False),
                                  dtype="boolean"))
    is_shred[~np.isfinite(p)] = pd.NA
    std_col = pd.Series(p_std, dtype="Float64")
    std_col[~np.isfinite(p_std) | ~np.isfinite(p)] = pd.NA
    return pd.DataFrame({"source_id": pd.Series(ids, dtype="string"),
                         "p_shred": p_col.astype("Float64"),
                         "p_shred_std": std_col,
                         "is_shred": is_shred,
                         "shreds_reason": pd.Series(reason, dtype="string")})


def _read(store, ids):
    """``(images, status)`` of some cutouts, or the exception that reading raised."""
    try:
        return store.get(list(ids))
    except Exception as exc:  # unreadable shard: flagged by the caller
        return exc


def _score_chunk(part, got, scorer, p, p_std, reason) -> None:
    """Fill ``p`` / ``p_std`` / ``reason`` at the rows ``part`` from what :func:`_read`
    returned."""
    if isinstance(got, Exception):
        for i in part:
            reason[i] = f"cutout corrupt: cannot read store ({got})"
        return
    imgs, st = got
    good = st == "ok"
    for i in part[~good]:
        reason[i] = "cutout corrupt: unreadable in store"
    if good.any():
        imgs = imgs[good]
        flat = imgs.reshape(len(imgs), -1)
        bad_pix = flat.max(axis=1) == flat.min(axis=1)
        probs = np.where(bad_pix, np.nan, scorer.predict(imgs))
        p[part[good]] = probs
        if getattr(scorer, "folds", None):
            p_std[part[good]] = np.where(bad_pix, np.nan, scorer.predict_std(imgs))
        for i in part[good][bad_pix]:
            reason[i] = "cutout blank"


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def score_image_dir(model_path, image_dir, threshold: float = 0.5, batch_size: int = 64,
                    kind: str = "auto") -> pd.DataFrame:
    """Score every PNG/JPEG cutout of a directory (Legacy viewer format: 128 px over 60",
    other sizes are area-resampled to 128 px), e.g. real cutouts as an unlabeled check.

    Returns
    -------
    pandas.DataFrame
        One row per image file, sorted by name: ``file``, ``source_id`` (file stem),
        ``p_shred`` (Float64), ``is_shred`` (boolean), ``reason`` (null when scored; e.g.
        ``unreadable image: ...`` or ``blank image``). A bad file never stops the run.
    """
    from .data import read_rgb_image

    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"cutout directory not found: {image_dir}")
    files = sorted(f for f in image_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no .png/.jpg cutouts in {image_dir}")
    images = np.zeros((len(files), 128, 128, 3), np.uint8)
    reason = np.full(len(files), None, dtype=object)
    for i, f in enumerate(files):
        try:
            images[i] = read_rgb_image(f, 128)
        except Exception as exc:  # truncated / not an image: flag the row
            reason[i] = f"unreadable image: {type(exc).__name__}: {exc}"
            continue
        if images[i].min() == images[i].max():
            reason[i] = "blank image"
    ok = np.array([r is None for r in reason])
    p = np.full(len(files), np.nan)
    if ok.any():
        p[ok] = ShredScorer(model_path, kind=kind, batch_size=batch_size).predict(images[ok])
    return pd.DataFrame({
        "file": pd.Series([f.name for f in files], dtype="string"),
        "source_id": pd.Series([f.stem for f in files], dtype="string"),
        "p_shred": pd.Series(p, dtype="Float64").where(np.isfinite(p), pd.NA),
        "is_shred": pd.Series(pd.array(p >= threshold, dtype="boolean")).where(ok, pd.NA),
        "reason": pd.Series(reason, dtype="string"),
    })
