"""Crash safety: every job that Snakemake left marked incomplete is rerun.

Why this exists (Snakemake 9.27, issue 15 item 2)
-------------------------------------------------
Snakemake marks each output of a job incomplete (``.snakemake/incomplete/<key>``) when the
job starts and unmarks it when the job finishes. After a crash (``kill -9``, power loss)
the markers stay. On the next run ``DAG.init()`` calls ``DAG.check_incomplete()`` **once**,
over the jobs in the DAG at that moment, and stops (or, with ``--rerun-incomplete``,
forces) every job whose marked output exists.

catclean's partition plan comes from the ``hosts`` checkpoint. While the DAG is first
built, ``checkpoints.hosts.get()`` raises ``IncompleteCheckpointException`` (its
``created_output`` set is empty at that point even when ``plan.json`` exists), so every
job whose inputs come from the plan (``render_field``, ``query_catalog``, ``cutouts``,
``assemble`` and the rest, one per partition or host) is not in the DAG yet. They are
added afterwards by ``DAG.update_checkpoint_dependencies()`` (``Workflow._build_dag``),
which re-evaluates the input functions and never runs ``check_incomplete`` again; the
needrun decision for those jobs (``DAG.update_needrun``) looks at existence, mtimes and
metadata, never at the incomplete markers. A killed job whose output exists under its
final name (a completed atomic rename, a partly written directory output, any
non-atomic writer) is therefore judged up to date and skipped; ``--rerun-incomplete``
does not help either, because it only acts inside that single ``check_incomplete``.

The fix, before the DAG is built
--------------------------------
:func:`drop_incomplete_outputs` reads the markers, and removes every marked output
that still exists under this run's results directory (plus the temporary files our
atomic writers leave next to it when killed). The killed job's output is then simply
missing, which every code path of Snakemake reruns, checkpoint or not, and its
consumers rerun because their input is regenerated. This is what ``--rerun-incomplete``
does itself (a rerun job's old outputs are removed before it starts), applied to every
job. Nothing is touched while any Snakemake instance holds a lock on the working
directory: its running jobs are marked incomplete too. ``workflow/rules/common.smk``
calls it once per main Snakemake process.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

__all__ = ["drop_incomplete_outputs", "incomplete_outputs"]


def _decode(marker: Path, root: Path) -> str | None:
    """The output path of one marker file (Snakemake's ``_record_path`` reversed).

    Snakemake stores ``urlsafe_b64encode(path)``, split into chunks of at most
    ``NAME_MAX - 1`` characters; every chunk but the last is a directory named ``@chunk``.
    """
    parts = marker.relative_to(root).parts
    if not parts or any(not p.startswith("@") for p in parts[:-1]):
        return None
    b64 = "".join(p[1:] for p in parts[:-1]) + parts[-1]
    try:
        return base64.urlsafe_b64decode(b64.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def incomplete_outputs(snakemake_dir: str | os.PathLike = ".snakemake") -> list[str]:
    """Output paths Snakemake marked incomplete (started, never finished), sorted.

    Parameters
    ----------
    snakemake_dir : path
        Snakemake's state directory of the working directory (``.snakemake``).

    Returns
    -------
    list of str
        The paths as Snakemake wrote them (relative to the working directory unless the
        rule's output was absolute); a missing state directory gives an empty list.
    """
    root = Path(snakemake_dir) / "incomplete"
    if not root.is_dir():
        return []
    found = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name == "migration_underway":
                continue
            path = _decode(Path(dirpath) / name, root)
            if path:
                found.append(path)
    return sorted(found)


def _locked(snakemake_dir: Path) -> bool:
    locks = snakemake_dir / "locks"
    return locks.is_dir() and any(locks.glob("*.lock"))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def drop_incomplete_outputs(results_root: str | os.PathLike,
                            snakemake_dir: str | os.PathLike = ".snakemake") -> list[Path]:
    """Remove the outputs of killed jobs so that Snakemake reruns every one of them.

    Parameters
    ----------
    results_root : path
        Only marked outputs inside this directory are removed (``results/<run_name>``);
        markers of other runs in the same working directory are left for their runs.
    snakemake_dir : path
        Snakemake's state directory of the working directory.

    Returns
    -------
    list of pathlib.Path
        The outputs removed (files, or directory outputs removed whole); empty when a
        Snakemake instance holds a lock on the working directory (its running jobs are
        marked incomplete as well) or nothing was marked.
    """
    state = Path(snakemake_dir)
    if _locked(state):
        return []
    root = Path(results_root)
    removed = []
    for key in incomplete_outputs(state):
        path = Path(key)
        if not _inside(path, root):
            continue
        # our atomic writers' temporaries (io.write_parquet, net: ".<name>.*.tmp";
        # sky.render: "<name>.tmp"), left behind by a kill between write and rename
        for tmp in [*path.parent.glob(f".{path.name}.*.tmp"), path.with_name(f"{path.name}.tmp")]:
            if tmp.is_file():
                tmp.unlink()
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed
