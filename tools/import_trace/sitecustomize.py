"""Import trace for ``python tools/env_imports.py trace DIR`` (the dynamic cross-check).

With this folder on ``PYTHONPATH`` and ``CATCLEAN_IMPORT_TRACE=DIR`` set, every Snakemake
rule script (``.snakemake/scripts/tmpXXXX.<rule>.py``) writes, when it exits, the
top-level modules it loaded to ``DIR/<pid>.txt`` (first line: the script's file name).
"""

import atexit
import os
import sys


def _dump() -> None:
    out = os.environ.get("CATCLEAN_IMPORT_TRACE")
    script = sys.argv[0] if sys.argv else ""
    if not out or ".snakemake" not in script:
        return
    tops = sorted({name.split(".")[0] for name in list(sys.modules)})
    with open(os.path.join(out, f"{os.getpid()}.txt"), "w") as fh:
        fh.write(os.path.basename(script) + "\n" + "\n".join(tops) + "\n")


atexit.register(_dump)
