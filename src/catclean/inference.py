"""Inference in the precision and form that is fastest on this machine (issue 16).

Every network that scores at pipeline scale goes through one :class:`Predictor`:

- ``float32`` -- the Keras model, every layer in float32, called through one
  :func:`tensorflow.function` traced once for a fixed batch shape (the last batch is
  zero-padded and the padding dropped), instead of eagerly layer by layer;
- ``bfloat16`` -- the same compiled call with the Keras ``mixed_bfloat16`` policy on every
  layer except those producing the model's outputs (softmax stays float32). Offered only
  where the CPU has native bf16 (:func:`cpu_has_bf16`: AVX512-BF16 or AMX-BF16); elsewhere
  TensorFlow would emulate it, slower than float32;
- ``int8`` -- ONNX Runtime on a statically quantized copy (QDQ, per-channel int8 weights,
  uint8 activations, MinMax calibration on the model's own training cutouts; the first
  convolution stage and the output layer stay float32), stored beside the float model by :func:`prepare`.

:func:`prepare` (run once per model, e.g. by rule ``prepare_shred_inference``) measures
every precision against float32 on the same cutouts and writes a card (JSON): per
precision the accuracy guard (max |dp| and the flip rate of ``p >= threshold``, limits in
:data:`GUARDS`), whether it passed, and its throughput here. A precision that fails its
guard is not offered. :func:`choose_precision` turns the config value (``auto`` |
``float32`` | ``bfloat16`` | ``int8``) into the precision a job uses: ``auto`` is the
first offered precision of :data:`AUTO_ORDER` that this machine can run (int8 only for
models of :data:`INT8_AUTO_MIN_PARAMS` parameters or more; bf16 where the
CPU has it natively, else float32). The card's throughputs are for information: a choice
made from timings would differ between two runs of the same config, and the same config
must give the same Parquet.

Determinism: for a given precision the same inputs give identical outputs (fixed batch
shapes, TensorFlow op determinism from :mod:`catclean.runtime`, ONNX Runtime with a fixed
thread count, sequential execution and deterministic compute).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: precisions a model can be run in (the config also accepts ``auto``)
PRECISIONS = ("float32", "bfloat16", "int8")
CHOICES = ("auto",) + PRECISIONS
#: accuracy guards against float32 on the same inputs: max |dp| and the largest fraction of
#: ``p >= threshold`` decisions that may flip (issue 16)
GUARDS = {"bfloat16": {"max_dp": 1e-3, "max_flip_rate": 0.001},
          "int8": {"max_dp": 0.02, "max_flip_rate": 0.005}}
#: with labels of the check inputs: the ROC AUC may move at most this much (issue 16)
MAX_AUC_CHANGE = 0.005
CARD_VERSION = 1
#: what ``auto`` prefers, fastest first, where offered and runnable. Measured on an
#: AVX512-BF16 CPU (docs/shreds.md): bf16 3.2x (small) to 6.4x (paper size) the eager path,
#: compiled float32 1.5-1.8x, ONNX int8 0.9-3.0x: int8 is never faster than bf16, and
#: faster than float32 only on large models (:data:`INT8_AUTO_MIN_PARAMS`). A fixed order,
#: not the card's timings: the same config and machine give the same precision, run
#: after run.
AUTO_ORDER = ("bfloat16", "int8", "float32")
#: ``auto`` takes int8 only for models at least this large (parameters): there the
#: convolutions dominate and int8 ran 2.2-2.6x compiled float32 (paper-size shred CNN,
#: first stage in float32); on the small networks it was 0.9-1.2x (docs/shreds.md). A
#: property of the model, not a timing, so the choice is the same run after run.
INT8_AUTO_MIN_PARAMS = 2_000_000


# -- what this machine can run ---------------------------------------------------------

def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (or of the given text); empty when unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU computes bf16 natively (``avx512_bf16`` or ``amx_bf16`` flag)."""
    return bool(cpu_flags(cpuinfo) & {"avx512_bf16", "amx_bf16"})


def onnxruntime_available() -> bool:
    """True when ONNX Runtime imports (the int8 path needs it)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def runnable_here(precision: str) -> tuple[bool, str]:
    """``(ok, why not)`` for running ``precision`` on this machine."""
    if precision == "bfloat16" and not cpu_has_bf16():
        return False, "the CPU has no native bf16 (no avx512_bf16 / amx_bf16 flag)"
    if precision == "int8" and not onnxruntime_available():
        return False, "onnxruntime is not installed"
    return True, ""


def choose_precision(requested: str, card: dict | None) -> tuple[str, str]:
    """The precision a job runs in, and why.

    Parameters
    ----------
    requested : {'auto', 'float32', 'bfloat16', 'int8'}
        The config value.
    card : dict or None
        The model's inference card (:func:`prepare`); None = only float32 is offered.

    Returns
    -------
    (precision, reason) : (str, str)
        ``auto``: the first offered precision of :data:`AUTO_ORDER` this machine can run
        (never chosen from timings). An explicit precision that this machine cannot run
        (CPU without bf16, no onnxruntime) falls back to float32, with the reason.

    Raises
    ------
    ValueError
        An unknown value, or an explicit precision whose accuracy guard failed (or that
        was never prepared) for this model.
    """
    if requested not in CHOICES:
        raise ValueError(f"inference precision {requested!r}: expected one of "
                         f"{', '.join(CHOICES)}")
    entries = (card or {}).get("precisions", {})
    offered = [p for p in PRECISIONS if p == "float32" or entries.get(p, {}).get("offered")]
    if requested == "auto":
        if (card or {}).get("n_params", 0) < INT8_AUTO_MIN_PARAMS:
            offered = [p for p in offered if p != "int8"]
        best = next(p for p in AUTO_ORDER if p in offered and runnable_here(p)[0])
        return best, (f"auto: first of {', '.join(AUTO_ORDER)} offered and runnable here "
                      f"(offered: {', '.join(offered)})"
                      if card else "auto: no inference card, float32 only")
    if requested not in offered:
        why = entries.get(requested, {}).get("reason", "not prepared for this model")
        raise ValueError(f"inference precision {requested!r} is not offered for this model: "
                         f"{why}")
    ok, why = runnable_here(requested)
    if not ok:
        log.warning("precision %s requested but %s: using float32", requested, why)
        return "float32", f"{requested} requested, {why}: float32"
    return requested, "requested"


# -- predictors ------------------------------------------------------------------------

def with_dtype_policy(model, policy: str):
    """A copy of a functional Keras model (same weights) whose layers compute in ``policy``
    (``'float32'`` or ``'mixed_bfloat16'``); layers producing model outputs stay float32."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    outs = clone.get_config().get("output_layers", [])
    if outs and isinstance(outs[0], str):  # one output: [name, node, tensor]
        outs = [outs]
    out_names = {entry[0] for entry in outs}
    for layer in clone.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        layer.dtype_policy = "float32" if layer.name in out_names else policy
        inner = getattr(layer, "layer", None)  # wrappers (TimeDistributed) and their layer
        if inner is not None and hasattr(inner, "dtype_policy"):
            inner.dtype_policy = layer.dtype_policy
    return clone


def load_keras(path):
    """Load a ``.keras`` model in safe mode, computing in float32.

    A model stored with float16 weights (the shipped shred CNN: half the file size) is
    rebuilt with float32 layers and its weights up-cast, so that every precision starts
    from the same float32 network.
    """
    import keras

    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    if all(w.dtype != "float16" for w in model.weights):
        return model
    return _stored_as(model, "float32")


def _stored_as(model, dtype: str):
    """A copy of a functional Keras model whose layers hold (and compute in) ``dtype``,
    with the weights cast."""
    import keras

    def layer_in_dtype(layer):
        cfg = layer.get_config()
        if "dtype" in cfg:
            cfg["dtype"] = dtype
        return layer.__class__.from_config(cfg)

    clone = keras.models.clone_model(model, clone_function=layer_in_dtype)
    clone.set_weights([np.asarray(w, dtype) for w in model.get_weights()])
    return clone


def save_float16(model, path) -> None:
    """Save a float32 Keras model with float16 weights (half the file; no optimizer
    state). :func:`load_keras` restores a float32 model from it."""
    half = _stored_as(model, "float16")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    half.save(path)  # an uncompiled clone: no optimizer state in the file


def _threads() -> int:
    return max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1))


class Predictor:
    """Batched inference of one model in one precision: ``predictor(x) -> outputs``.

    Parameters
    ----------
    model : keras.Model or None
        The float model (``float32`` / ``bfloat16``); None for ``int8``.
    precision : {'float32', 'bfloat16', 'int8'}
    batch_size : int
        The one batch shape the compiled function / ONNX session sees; the last batch is
        zero-padded to it.
    onnx_path : path-like, optional
        The quantized model (``int8``).
    threads : int, optional
        ONNX Runtime intra-op threads (default: ``OMP_NUM_THREADS``, set by
        :func:`catclean.runtime.setup`).

    Notes
    -----
    A model with several inputs takes a list of arrays (in the model's input order), as
    Keras does; the output is the model's single output tensor.
    """

    def __init__(self, model=None, precision: str = "float32", batch_size: int = 64,
                 onnx_path=None, threads: int | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self.batch_size = int(batch_size)
        if precision == "int8":
            if onnx_path is None or not Path(onnx_path).exists():
                raise FileNotFoundError(f"int8 model not found: {onnx_path}")
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = int(threads or _threads())
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.use_deterministic_compute = True
            so.log_severity_level = 3
            self._sess = ort.InferenceSession(str(onnx_path), so,
                                              providers=["CPUExecutionProvider"])
            self._names = [i.name for i in self._sess.get_inputs()]
            self.input_shapes = [tuple(i.shape[1:]) for i in self._sess.get_inputs()]
            return
        import tensorflow as tf

        policy = "mixed_bfloat16" if precision == "bfloat16" else "float32"
        self.net = with_dtype_policy(model, policy)
        self.input_shapes = _input_shapes(model)
        specs = [tf.TensorSpec((self.batch_size,) + sh, tf.float32) for sh in self.input_shapes]
        net = self.net
        if len(specs) == 1:
            self._fn = tf.function(lambda x: tf.cast(net(x, training=False), tf.float32),
                                   input_signature=specs)
        else:
            self._fn = tf.function(
                lambda *xs: tf.cast(net(list(xs), training=False), tf.float32),
                input_signature=specs)

    @property
    def input_shape(self) -> tuple:
        """Shape of one sample of the (first) input."""
        return self.input_shapes[0]

    def _run(self, xs: list[np.ndarray]) -> np.ndarray:
        if self.precision == "int8":
            return self._sess.run(None, dict(zip(self._names, xs)))[0]
        return self._fn(*xs).numpy()

    def __call__(self, x) -> np.ndarray:
        """Model outputs (float32) for float32 inputs ``(N, *input_shape)`` (a list of
        arrays for a model with several inputs)."""
        xs = [np.asarray(a, dtype=np.float32) for a in (x if isinstance(x, list | tuple)
                                                        else [x])]
        n_all = len(xs[0])
        out = []
        for s in range(0, n_all, self.batch_size):
            bs = [a[s:s + self.batch_size] for a in xs]
            n = len(bs[0])
            if n < self.batch_size:
                bs = [np.concatenate([b, np.zeros((self.batch_size - n,) + b.shape[1:],
                                                  np.float32)]) for b in bs]
            out.append(self._run([np.ascontiguousarray(b) for b in bs])[:n])
        if not out:
            return np.zeros((0,), np.float32)
        return np.concatenate(out)


def _input_shapes(model) -> list[tuple]:
    shapes = model.input_shape
    shapes = shapes if isinstance(shapes, list) else [shapes]
    return [tuple(sh[1:]) for sh in shapes]


def load_predictor(model_path, requested: str, inference_dir=None,
                   batch_size: int = 64):
    """Load a ``.keras`` model and its predictor in the precision :func:`choose_precision`
    picks from ``requested`` and the card in ``inference_dir``.

    Returns
    -------
    (keras.Model, Predictor, str)
        The float model, the predictor (``.precision`` is the one used), and why.
    """
    card = load_card(inference_dir) if inference_dir else None
    precision, why = choose_precision(requested, card)
    log.info("%s: precision %s (%s)", Path(model_path).name, precision, why)
    model = load_keras(model_path)
    onnx = Path(inference_dir) / card["precisions"]["int8"]["onnx"] \
        if precision == "int8" else None
    pred = Predictor(model if precision != "int8" else None, precision, batch_size,
                     onnx_path=onnx)
    return model, pred, why


# -- ONNX export and static int8 quantization ------------------------------------------

def _onnx_friendly(layer):
    """Clone function for the ONNX export: an area ``Resizing`` by an integer factor is
    the same average over factor x factor pixels as ``AveragePooling2D`` -- which ONNX
    has, while tf2onnx turns ``ResizeArea`` into an interpolating ``Resize`` (|dp| up to
    0.08 on a trained small shred CNN)."""
    from keras import layers

    cfg = layer.get_config()
    if isinstance(layer, layers.Resizing) and cfg.get("interpolation") == "area":
        h, w = layer.input.shape[1:3]
        fh, fw = (h // cfg["height"], w // cfg["width"]) if h and w else (0, 0)
        if fh and fw and fh * cfg["height"] == h and fw * cfg["width"] == w:
            return layers.AveragePooling2D((fh, fw), name=layer.name)
    return layer.__class__.from_config(cfg)


def export_onnx(model, path, opset: int = 17) -> Path:
    """The float32 Keras model as ONNX (tf2onnx, dynamic batch), inputs named ``input``
    (``input1``, ``input2``, ... for several);
    integer area resizes become average pooling (:func:`_onnx_friendly`)."""
    import keras
    import tensorflow as tf
    import tf2onnx

    net = keras.models.clone_model(with_dtype_policy(model, "float32"),
                                   clone_function=_onnx_friendly)
    net.set_weights(model.get_weights())
    shapes = _input_shapes(model)
    names = ["input"] if len(shapes) == 1 else [f"input{i + 1}" for i in range(len(shapes))]
    spec = tuple(tf.TensorSpec((None,) + sh, tf.float32, name=nm)
                 for sh, nm in zip(shapes, names))
    if len(spec) == 1:
        fn = tf.function(lambda x: net(x, training=False))
    else:
        fn = tf.function(lambda *xs: net(list(xs), training=False))
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset)
    path = Path(path)
    path.write_bytes(proto.SerializeToString())
    return path


def _head_nodes(onnx_model) -> list[str]:
    """Nodes from the graph output back to (and including) the last MatMul / Gemm / Conv:
    the output layer, kept in float32."""
    producer = {o: n for n in onnx_model.graph.node for o in n.output}
    names, todo = [], [o.name for o in onnx_model.graph.output]
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in names:
            continue
        names.append(node.name)
        if node.op_type not in ("MatMul", "Gemm", "Conv"):
            todo.extend(i for i in node.input if i in producer)
    return names


def _first_stage_convs(onnx_model) -> list[str]:
    """The convolutions before the first max-pooling: the full-resolution stage that reads
    the image. Quantizing the input pixels and the first feature maps to 8 bits costs most
    of int8's error on trained shred CNNs (paper size: max |dp| 2.2e-2 with them, 4.4e-3
    without), so they stay float32."""
    names = []
    for node in onnx_model.graph.node:
        if node.op_type == "MaxPool":
            break
        if node.op_type == "Conv":
            names.append(node.name)
    return names


def quantize_int8(float_onnx, out_path, calibration: np.ndarray, batch_size: int = 16) -> Path:
    """Static int8 quantization (QDQ, per-channel int8 weights, uint8 activations, MinMax
    calibration on ``calibration`` -- an array, or a list of arrays for several inputs --
    float32 inputs) of an ONNX model; the first convolution stage (before the first
    max-pooling) and the output layer stay float32."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(float_onnx))
    names = [i.name for i in model.graph.input]
    calib = [np.asarray(c, np.float32) for c in _as_list(calibration)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{nm: c[s:s + batch_size] for nm, c in zip(names, calib)}
                             for s in range(0, len(calib[0]), batch_size)])

        def get_next(self):
            return next(self._it, None)

    quantize_static(str(float_onnx), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_exclude=_first_stage_convs(model) + _head_nodes(model))
    return Path(out_path)


def _as_list(x) -> list:
    return list(x) if isinstance(x, list | tuple) else [x]


# -- guards and the card ---------------------------------------------------------------

def guard(p_ref: np.ndarray, p: np.ndarray, precision: str, threshold: float = 0.5) -> dict:
    """Accuracy of ``p`` against float32 ``p_ref`` (same inputs): ``max_dp`` (over every
    entry), ``flip_rate`` (fraction of samples whose decision differs: ``p >= threshold``
    for one probability per sample, the arg-max class for (N, K) class probabilities),
    ``passed``."""
    p_ref, p = np.asarray(p_ref, np.float64), np.asarray(p, np.float64)
    max_dp = float(np.max(np.abs(p - p_ref))) if p.size else 0.0
    if p.ndim == 2:
        flips = int(np.sum(np.argmax(p, axis=1) != np.argmax(p_ref, axis=1)))
    else:
        flips = int(np.sum((p >= threshold) != (p_ref >= threshold)))
    rate = flips / max(len(p), 1)
    lim = GUARDS[precision]
    ok = bool(np.isfinite(p).all() and max_dp <= lim["max_dp"] and rate <= lim["max_flip_rate"])
    return {"max_dp": max_dp, "flips": flips, "flip_rate": rate, "n": int(len(p)),
            "limits": lim, "passed": ok}


def _auc(labels, p) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(labels), np.asarray(p, np.float64)))


def _timed(pred: Predictor, x: list, score) -> tuple[np.ndarray, float]:
    pred([a[:pred.batch_size] for a in x])  # trace / warm up
    t0 = time.perf_counter()
    p = score(pred(x))
    return p, len(x[0]) / max(time.perf_counter() - t0, 1e-9)


def prepare(model, calibration: np.ndarray, check: np.ndarray, out_dir, score=None,
            threshold: float = 0.5, batch_size: int = 64, precisions=PRECISIONS,
            labels: np.ndarray | None = None) -> dict:
    """Prepare a model's fast forms and write its inference card.

    Parameters
    ----------
    model : keras.Model
        The float model.
    calibration : numpy.ndarray or list of numpy.ndarray
        Model inputs (float32, from its own training set) for the int8 calibration (a
        list for a model with several inputs).
    check : numpy.ndarray or list of numpy.ndarray
        Other model inputs on which every precision is compared with float32.
    out_dir : path-like
        Gets ``card.json`` and, when int8 is tried, ``model.int8.onnx`` (and the float
        ``model.onnx`` it came from).
    score : callable, optional
        Model outputs -> the guarded score: ``lambda o: o[:, 1]`` for p_shred (flips of
        ``p >= threshold``); default the outputs as they are ((N, K) class
        probabilities: flips of the arg-max class).
    threshold : float
        Decision threshold of the flip rate.
    batch_size : int
        Batch of the throughput measurement (the scoring batch).
    labels : numpy.ndarray, optional
        0/1 labels of the check inputs (one score per input): the card records each
        precision's ROC AUC, and a change of more than :data:`MAX_AUC_CHANGE` from
        float32's fails the guard.

    Returns
    -------
    dict
        The card: ``precisions.<p>`` with ``offered``, ``cutouts_per_s``, the guard
        (``max_dp``, ``flip_rate``, ``passed``) or ``reason``; ``cpu_bf16``; ``auto``.
    """
    score = score or (lambda o: np.asarray(o))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check = [np.asarray(c, np.float32) for c in _as_list(check)]
    card = {"card_version": CARD_VERSION, "n_params": int(model.count_params()),
            "n_check": int(len(check[0])),
            "n_calibration": int(len(_as_list(calibration)[0])), "batch_size": int(batch_size),
            "threshold": float(threshold), "cpu_bf16": cpu_has_bf16(), "precisions": {}}
    p32, rate = _timed(Predictor(model, "float32", batch_size), check, score)
    card["precisions"]["float32"] = {"offered": True, "cutouts_per_s": round(rate, 1)}
    auc32 = None
    if labels is not None and len(np.unique(labels)) == 2 and np.ndim(p32) == 1:
        auc32 = card["precisions"]["float32"]["auc"] = _auc(labels, p32)
    log.info("float32: %.1f inputs/s", rate)
    for prec in precisions:
        if prec == "float32":
            continue
        entry = card["precisions"][prec] = {"offered": False}
        if prec == "bfloat16" and not card["cpu_bf16"]:
            entry["reason"] = "the CPU has no native bf16 (no avx512_bf16 / amx_bf16 flag)"
            continue
        try:
            if prec == "int8":
                float_onnx = export_onnx(model, out_dir / "model.onnx")
                quantize_int8(float_onnx, out_dir / "model.int8.onnx", calibration)
                entry["onnx"] = "model.int8.onnx"
                pred = Predictor(None, "int8", batch_size, onnx_path=out_dir / "model.int8.onnx")
            else:
                pred = Predictor(model, prec, batch_size)
            p, rate = _timed(pred, check, score)
        except Exception as exc:  # a conversion that fails: not offered, with the reason
            log.warning("%s not offered: %s: %s", prec, type(exc).__name__, exc)
            entry["reason"] = f"{type(exc).__name__}: {exc}"
            continue
        g = guard(p32, p, prec, threshold)
        if auc32 is not None:
            g["auc"] = _auc(labels, p)
            g["auc_change"] = abs(g["auc"] - auc32)
            g["passed"] = bool(g["passed"] and g["auc_change"] <= MAX_AUC_CHANGE)
        entry.update(g, cutouts_per_s=round(rate, 1), offered=g["passed"])
        if not g["passed"]:
            entry["reason"] = (f"accuracy guard failed: max |dp| {g['max_dp']:.2e}, flip rate "
                               f"{g['flip_rate']:.4f}"
                               + (f", AUC change {g['auc_change']:.4f}" if "auc" in g else "")
                               + f" (limits {g['limits']})")
        log.info("%s: %.1f inputs/s, max |dp| %.2e, flips %d/%d -> %s", prec, rate,
                 g["max_dp"], g["flips"], g["n"], "offered" if g["passed"] else "not offered")
    card["auto"] = choose_precision("auto", card)[0]
    (out_dir / "card.json").write_text(json.dumps(card, indent=1))
    return card


def load_card(path) -> dict | None:
    """The inference card ``card.json`` of a directory (or file); None when absent."""
    path = Path(path)
    if path.is_dir():
        path = path / "card.json"
    return json.loads(path.read_text()) if path.exists() else None
