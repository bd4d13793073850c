"""Shred CNN (paper 001, Di Teodoro, Peek & Wu): model, training data, training, scoring.

TensorFlow / Keras are imported lazily inside the functions that need them.
"""

from .model import ShredArch, build_shred_cnn

__all__ = ["ShredArch", "build_shred_cnn"]
