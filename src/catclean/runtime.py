"""Process set-up shared by every rule script and command: logging, threads, seeds.

Every rule script opens with :func:`rule_setup`, every ``catclean`` subcommand with
:func:`setup`, so a job's log, thread count and random state are set in one place and
the same way everywhere:

- logging (and Python warnings, and tqdm progress through ``sys.stderr``) goes to the
  rule's ``log:`` file;
- numpy/BLAS threads follow the rule's ``threads:`` (threadpoolctl), and so do
  TensorFlow's intra-op threads when the job uses TensorFlow;
- the configured seed seeds Python's and numpy's global generators and Keras, and
  TensorFlow runs with op determinism on, so the same config gives the same model
  columns (ops without a deterministic kernel raise instead of varying silently).
"""

from __future__ import annotations

import logging
import os
import random
import sys
from pathlib import Path

LOGGER_NAME = "catclean"


def rule_logging(log_path: str | None, name: str = LOGGER_NAME) -> logging.Logger:
    """Send catclean's logging (and Python warnings) to ``log_path``.

    Also redirects ``sys.stderr`` to the log so tqdm progress (rates, ETA) lands there.
    Returns the ``name`` logger.
    """
    handlers: list[logging.Handler] = []
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        fh = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives for the whole job
        sys.stderr = fh
        handlers.append(logging.StreamHandler(fh))
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    return logging.getLogger(name)


def set_threads(threads: int) -> None:
    """Cap numpy/BLAS (and OpenMP) threads of this process at ``threads``."""
    threads = max(1, int(threads))
    # for libraries that read it when they start (numexpr, GalSim's OpenMP)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


def setup_tensorflow(threads: int, seed: int | None) -> None:
    """TensorFlow threads, Keras seed and op determinism, before any model is built.

    Intra-op threads follow ``threads`` and inter-op threads ``min(2, threads)``; op
    determinism makes every kernel's result independent of thread scheduling, so the
    same seed gives the same weights and scores.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, int(threads)))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, int(threads))))
    except RuntimeError:  # already initialised in this process (tests): keep its setting
        pass
    tf.config.experimental.enable_op_determinism()
    if seed is not None:
        import keras

        keras.utils.set_random_seed(int(seed) % 2**32)


def seed_everything(seed: int | None) -> None:
    """Seed Python's and numpy's global generators (code itself uses explicit Generators)."""
    if seed is None:
        return
    import numpy as np

    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 - for third-party code that uses it


def setup(log_path: str | None = None, threads: int = 1, seed: int | None = None,
          tensorflow: bool = False) -> logging.Logger:
    """Logging, threads and seeds for one job; returns the ``catclean`` logger."""
    log = rule_logging(log_path)
    set_threads(threads)
    seed_everything(seed)
    if tensorflow:
        setup_tensorflow(threads, seed)
    return log


def rule_setup(smk, tensorflow: bool = False) -> logging.Logger:
    """:func:`setup` from a rule's ``snakemake`` object: its log, threads and ``params.seed``.

    Parameters
    ----------
    smk : snakemake.script.Snakemake
        The ``snakemake`` object of a rule script.
    tensorflow : bool
        The job builds or runs Keras models: also set TensorFlow threads, the Keras seed
        and op determinism.
    """
    log_path = smk.log[0] if len(smk.log) else None
    seed = getattr(smk.params, "seed", None)
    return setup(log_path, threads=smk.threads, seed=seed, tensorflow=tensorflow)


def progress(iterable, desc: str, total: int | None = None, unit: str = "it"):
    """tqdm over ``iterable`` writing to stderr (the rule log), with rate and ETA."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr,
                mininterval=2.0, dynamic_ncols=False, ascii=True)


def configure_sep(pixels: int = 0) -> None:
    """sep's global limits, one setting for every caller (sky detection, MegaCam QA).

    Parameters
    ----------
    pixels : int
        Size of the largest image about to be extracted (pixels); the pixel stack grows
        with it so very large objects are never dropped for lack of stack.
    """
    import sep

    sep.set_extract_pixstack(int(max(5_000_000, pixels // 4)))
    sep.set_sub_object_limit(8192)
