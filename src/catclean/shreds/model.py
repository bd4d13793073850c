"""The shred CNN of Di Teodoro, Peek & Wu (paper 001, Sec. 2.2, Fig. 2), in Keras 3.

Architecture (paper Sec. 2.2): input 128 x 128 x 3 (g, r, z colour image scaled to
[0, 1]); four convolution stages with kernel sizes 3, 3, 3, 5 and 32, 64, 128, 512
filters, two convolutions per stage (ReLU), max-pooling 2, 2, 2, 4 and dropout 0.2 after
each stage; then two fully connected layers of 2048 and 1024 units (ReLU) and a softmax
over the two classes (0 = galaxy, 1 = shred). The paper quotes ~10.6M trainable
parameters.

Reading the padding. The text does not give the padding. A 'same' + 'valid' pair in
every stage leaves a 2 x 2 x 512 map before the dense layers (14.8M parameters with
5 x 5 kernels in stage 4, 13.7M with (3, 5)); all-'valid' with 5 x 5 gives 11.6M. The
released count, 10.58M, is reached when the map is 1 x 1 x 512 at the flatten, which
needs stage 4 kernels (3, 5) and 'valid' padding in stages 3 and 4. The default
(:data:`PAPER_ARCH`) therefore uses ('same', 'valid') in stages 1 and 2 and
('valid', 'valid') in stages 3 and 4 with stage-4 kernels (3, 5): 10,582,306
parameters (docs/shreds.md has the layer table and the alternatives). Kernels, padding,
filters (``width`` multiplier), dense sizes and the input size are configurable.

For input sizes other than the stored 128 px cutouts the network starts with an
area-averaging :class:`keras.layers.Resizing` layer, so every model -- small or paper
size, ours or the published one -- takes the same input: the 128 x 128 RGB cutout / 255.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

#: the paper-size shred CNN shipped with catclean (``shreds.model.kind: shipped``):
#: pre-trained on the realistic synthetic sky, fine-tuned on the real eye labels; float16
#: weights. Its model card (data, seeds, protocol, metrics, failure modes) is beside it.
SHIPPED_SHRED_MODEL = Path(__file__).resolve().parent / "shipped" / "shred_cnn_paper.keras"


@dataclass
class ShredArch:
    """Hyper-parameters of the shred CNN.

    Attributes
    ----------
    input_size : int
        Side (pixels) the network works at; cutouts (``cutout_size``) are area-resized
        to it inside the model.
    cutout_size : int
        Side of the stored RGB cutouts the model receives (128 = 60" at 0.469"/pix).
    width : float
        Multiplier on the number of filters of every conv stage.
    dense : tuple of int
        Units of the two fully connected layers (paper: 2048, 1024).
    stages : tuple
        ``(filters, (kernel 1, kernel 2), (padding 1, padding 2), pool)`` per stage; the
        paper's four stages are the ``paper`` preset's (``shreds.presets.paper.stages``).
    dropout : float
        Dropout rate after every stage (paper: 0.2).
    """

    input_size: int
    cutout_size: int
    width: float
    dense: tuple
    stages: tuple
    dropout: float

    @classmethod
    def from_config(cls, cfg: dict) -> ShredArch:
        """From a complete preset of ``shreds.presets`` (every key filled by the schema)."""
        stages = tuple((int(s[0]), tuple(int(k) for k in s[1]), tuple(s[2]), int(s[3]))
                       for s in cfg["stages"])
        return cls(input_size=int(cfg["input_size"]), cutout_size=int(cfg["cutout_size"]),
                   width=float(cfg["width"]), dense=tuple(int(d) for d in cfg["dense"]),
                   stages=stages, dropout=float(cfg["dropout"]))

    @classmethod
    def from_preset(cls, name: str | None = None, **overrides) -> ShredArch:
        """A schema preset of ``shreds.presets`` (``paper``: the published network) with
        ``overrides`` (:func:`catclean.config.schema_preset`)."""
        from ..config import schema_preset

        return cls.from_config({**schema_preset("shreds", name), **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved_stages(self) -> list[tuple[int, tuple, tuple, int]]:
        """Stages with widths applied; 'valid' convs that would shrink the map below the
        pool size at small input sizes are switched to 'same' (and pools clipped)."""
        s = self.input_size
        out = []
        for filters, kernels, pads, pool in self.stages:
            f = max(4, int(round(filters * self.width)))
            new_pads = []
            for j, (k, p) in enumerate(zip(kernels, pads)):
                rest = sum(kk - 1 for kk, pp in zip(kernels[j + 1:], pads[j + 1:])
                           if pp == "valid")
                if p == "valid" and s - (k - 1) - rest < pool:
                    p = "same"
                if p == "valid":
                    s -= k - 1
                new_pads.append(p)
            pool = max(1, min(pool, s))
            s //= pool
            out.append((f, tuple(kernels), tuple(new_pads), pool))
        return out


def build_shred_cnn(arch: ShredArch, name: str = "shred_cnn"):
    """Build (uncompiled) the shred CNN.

    Input: float32 (cutout_size, cutout_size, 3) in [0, 1]; output: softmax (2,), class 1
    = shred (the published model's convention).
    """
    import keras
    from keras import layers

    inp = keras.Input((arch.cutout_size, arch.cutout_size, 3), name="rgb")
    x = inp
    if arch.input_size != arch.cutout_size:
        x = layers.Resizing(arch.input_size, arch.input_size, interpolation="area",
                            name="resize")(x)
    for i, (f, kernels, pads, pool) in enumerate(arch.resolved_stages(), start=1):
        for j, (k, p) in enumerate(zip(kernels, pads), start=1):
            x = layers.Conv2D(f, k, padding=p, activation="relu", name=f"conv{i}_{j}")(x)
        x = layers.MaxPooling2D(pool, name=f"pool{i}")(x)
        x = layers.Dropout(arch.dropout, name=f"drop{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(arch.dense[0], activation="relu", name="dense1")(x)
    x = layers.Dense(arch.dense[1], activation="relu", name="dense2")(x)
    # float32 softmax whatever the dtype policy (mixed-precision training keeps the
    # probabilities and the loss in full precision)
    out = layers.Dense(2, activation="softmax", dtype="float32", name="softmax")(x)
    return keras.Model(inp, out, name=name)


def layer_table(model) -> list[dict]:
    """Rows ``name, type, output shape, params`` of a built model (for docs)."""
    rows = []
    for lay in model.layers:
        shape = getattr(lay, "output", None)
        shape = tuple(shape.shape) if shape is not None else ()
        cfg = lay.get_config()
        desc = type(lay).__name__
        if "kernel_size" in cfg:
            desc += f" {cfg['filters']}x{tuple(cfg['kernel_size'])} {cfg['padding']}"
        elif "pool_size" in cfg:
            desc += f" {tuple(cfg['pool_size'])}"
        elif "units" in cfg:
            desc += f" {cfg['units']} {cfg.get('activation')}"
        elif "rate" in cfg:
            desc += f" {cfg['rate']}"
        rows.append({"name": lay.name, "layer": desc, "output": str(shape[1:]),
                     "params": int(lay.count_params())})
    return rows
