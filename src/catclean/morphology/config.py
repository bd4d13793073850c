"""Hyper-parameters of the morphology Mask R-CNN (paper 003, Table 1).

The values of the named presets (``tiny``, ``small``, ``paper``) and every default live in
the ``morphology`` schema (``workflow/schemas/morphology.schema.yaml``); code receives
complete settings (:func:`from_settings`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

#: depth name -> (block type, blocks per stage C2..C5)
RESNET_DEPTHS = {
    "resnet10": ("basic", (1, 1, 1, 1)),
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}


@dataclass
class MorphConfig:
    """Everything that defines a morphology network and how it is trained.

    Attributes
    ----------
    image_size : int
        Side of the square network input (pixels). Fields (256 px, 0.396"/pix) are
        area-resampled to it; 256 keeps SDSS sampling (Table 1 "Image shape").
    backbone : str
        One of :data:`RESNET_DEPTHS` (paper: ``resnet101``).
    backbone_width : int
        Filters of the first residual stage (64 in the standard ResNet); doubled per stage.
    fpn_channels : int
        Channels of the FPN maps P2..P6 (256 in Mask R-CNN).
    num_classes : int
        Including background: 3 = background, spiral, elliptical (Table 1).
    anchor_scales : tuple of int
        One per level, pixels (Table 1: 8, 16, 32, 64, 128).
    anchor_ratios : tuple of float
        Width / height ratios (three aspect ratios, Sec. 3.1).
    backbone_strides : tuple of int
        Strides of P2..P6 (Table 1 two-class network: 4, 8, 16, 32, 64).
    rpn_anchors_per_image : int
        Anchors sampled per image for the RPN loss (half positive at most).
    pre_nms_top_n, post_nms_rois_train, post_nms_rois_infer : int
        Proposals kept before and after the proposal NMS.
    rpn_nms_threshold : float
        IoU threshold of the proposal NMS (Table 1: 0.8).
    train_rois_per_image : int
        RoIs sampled per image for the heads (Table 1: 128).
    roi_positive_ratio : float
        Fraction of positive RoIs (Table 1: 0.33).
    pool_size, mask_pool_size : int
        RoIAlign output side for the class/box head (Table 1: 7) and the mask head (14).
    head_fc : int
        Units of the two fully connected layers of the box head (1024 in Mask R-CNN).
    mask_channels : int
        Channels of the mask head convolutions (256 in Mask R-CNN).
    max_instances : int
        Detections kept per image (Table 1: 400; a field holds a few galaxies).
    detection_min_confidence : float
        Score below which detections are dropped at inference.
    detection_nms_threshold : float
        Per-class IoU threshold of the final NMS.
    max_gt_instances : int
        Ground-truth instances per image (padding size).
    optimizer : str
        ``"adam"`` (default, from-scratch training) or ``"sgd"`` (paper: momentum 0.9).
    learning_rate : float
        Table 1/2: 1e-3.
    momentum : float
        SGD momentum (Table 1: 0.9).
    batch_size : int
        Images per step.
    stages : tuple of (str, int)
        Staged training (Fig. 8, Table 2): ``(layers, epochs)`` with layers in
        ``heads``, ``5+``, ``4+``, ``3+``, ``all``.
    steps_per_epoch : int
        Optimiser steps per epoch (Table 1: 1000 for the two-class network).
    seed : int
        Seed of every random draw of training.
    """

    image_size: int
    backbone: str
    backbone_width: int
    fpn_channels: int
    num_classes: int
    anchor_scales: tuple
    anchor_ratios: tuple
    backbone_strides: tuple
    rpn_anchors_per_image: int
    pre_nms_top_n: int
    post_nms_rois_train: int
    post_nms_rois_infer: int
    rpn_nms_threshold: float
    train_rois_per_image: int
    roi_positive_ratio: float
    pool_size: int
    mask_pool_size: int
    head_fc: int
    mask_channels: int
    max_instances: int
    detection_min_confidence: float
    detection_nms_threshold: float
    max_gt_instances: int
    optimizer: str
    learning_rate: float
    momentum: float
    batch_size: int
    stages: tuple
    steps_per_epoch: int
    seed: int


    def to_dict(self) -> dict:
        """Plain-dict form (JSON-serialisable)."""
        d = asdict(self)
        d["stages"] = [list(s) for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MorphConfig:
        """Build from a dict, ignoring unknown keys; lists become tuples."""
        names = {f.name for f in fields(cls)}
        kw = {}
        for k, v in d.items():
            if k not in names:
                continue
            if k == "stages":
                v = tuple((str(a), int(b)) for a, b in v)
            elif isinstance(v, list):
                v = tuple(v)
            kw[k] = v
        return cls(**kw)


def from_settings(settings: dict, seed: int) -> MorphConfig:
    """A :class:`MorphConfig` from a complete preset (``preset_settings(config,
    "morphology")``) and the training seed; extra keys (``preset``) are ignored."""
    return MorphConfig.from_dict({**settings, "seed": int(seed)})


def preset(name: str = "small", **overrides) -> MorphConfig:
    """A :class:`MorphConfig` from a preset of the repository config plus keyword overrides.

    The presets live in ``workflow/schemas/morphology.schema.yaml`` (the one place of their
    values); ``seed`` defaults to the config's ``seed``.
    """
    from ..config import default_config

    config = default_config()
    presets = config["morphology"]["presets"]
    if name not in presets:
        raise KeyError(f"unknown morphology preset {name!r}; known: {sorted(presets)}")
    over = {k: ([list(s) for s in v] if k == "stages" else v) for k, v in overrides.items()}
    return MorphConfig.from_dict({"seed": config["seed"], **presets[name], **over})
