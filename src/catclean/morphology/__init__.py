"""Morphological segmentation of host galaxies with Mask R-CNN (paper 003, Farias et al.).

The network detects, classifies (spiral / elliptical) and segments the galaxy at the
centre of a gri JPEG field (Sec. 3); the masks give centroids (Sec. 5.4) and tell which
catalog sources lie on the host.

Modules
-------
config
    :class:`MorphConfig` and the ``small`` / ``paper`` presets (Table 1).
anchors
    Anchor generation (Table 1 scales and ratios), box IoU and the Faster R-CNN box
    encoding used by the RPN and the box head.
network
    Keras 3 Mask R-CNN: ResNet backbone + FPN, RPN, proposal NMS, RoIAlign, class / box /
    mask heads, detection (Sec. 3.1, Fig. 3).
targets
    RPN targets (numpy) and second-stage detection targets (TensorFlow graph).
losses
    RPN and head losses, L = L_cls + L_box + L_mask (Eq. 2-3).
simulate
    GalSim training fields: SDSS-like 256 x 256 gri JPEGs with a spiral or elliptical at
    the centre, neighbours, stars, noise; truth masks (Sec. 2).
masks
    Automatic Otsu annotation of the central object (Sec. 2.3).
metrics
    mAP@0.5, Table 3 classification metrics, mask IoU, centroids (Sec. 5.4), chroma-noise
    robustness (Sec. 5.3), and the trivial sep baseline.
train
    Augmentation (Sec. 4.2) and staged training (Fig. 8, Table 2).
infer
    Inference and :func:`segment_hosts` for the pipeline.
positions
    :func:`in_host_mask`: which sources fall on a host mask (numpy only).
plots
    Fig. 17 analogue, precision-recall, centroid offsets, accuracy vs noise.
"""

CLASS_NAMES = ("background", "spiral", "elliptical")
SDSS_PIXSCALE = 0.396127  # arcsec / pixel, Sec. 2.2

__all__ = ["CLASS_NAMES", "SDSS_PIXSCALE"]
