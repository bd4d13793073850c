"""Helpers shared by the rule scripts: logging into the rule's log file, progress bars."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def rule_logging(log_path: str | None, name: str = "catclean") -> logging.Logger:
    """Send catclean's logging (and Python warnings) to the rule's ``log:`` file.

    Returns the ``name`` logger. Also redirects ``sys.stderr`` to the log so tqdm progress
    (rates, ETA) lands there.
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


def progress(iterable, desc: str, total: int | None = None, unit: str = "it"):
    """tqdm over ``iterable`` writing to stderr (the rule log), with rate and ETA."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr,
                mininterval=2.0, dynamic_ncols=False, ascii=True)
