"""NASA-Sloan Atlas v1_0_1 hosts: download once (resumable), checksum, select, read.

``hosts.provider: nsa`` reads the NSA FITS catalogue (Blanton et al. 2011; ~640 k
galaxies, one binary-table HDU) either from a local ``hosts.nsa.path`` or from
``hosts.nsa.url`` (default: the SDSS SAS copy). The download
(:meth:`catclean.net.Fetcher.download`, with the retry policy of every service) goes to
``hosts.nsa.cache_dir`` as ``<name>.part``, resumed with an HTTP ``Range`` request after
an interruption, renamed to ``<name>`` only when complete; its sha256 is recorded in the
sidecar ``<name>.json`` (and checked against ``hosts.nsa.sha256`` when that is set).

Only the needed columns are read, memory-mapped: the selection columns (NSAID, RA, DEC,
Z, ELPETRO_MASS) first, then the remaining :data:`~catclean.sky.hosts.NSA_COLUMNS` for
the selected rows only. Selection (all given criteria must hold):

- sky region: ``hosts.nsa.ra_range`` / ``dec_range`` (deg; ra_range may wrap, e.g.
  [350, 10]) and/or ``hosts.nsa.cones`` (list of [ra, dec, radius_deg]);
- ``hosts.nsa.nsaids``: explicit NSAID list;
- ``hosts.z_range`` on Z, ``hosts.log_mass_range`` on
  log10(ELPETRO_MASS / h^2) with h = ``hosts.nsa.mass_h`` (0.7, as the synthetic hosts;
  set 1.0 to cut on NSA's native Msun/h^2);
- ``hosts.nsa.max_hosts``: keep the first N by NSAID.

The output has the columns of :func:`~catclean.sky.hosts.synthetic_hosts` without the
``sim_*`` ones, sorted by NSAID.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from ...net import Fetcher, ServiceSettings
from ...sky.hosts import NSA_COLUMNS
from ..geometry import angular_separation_deg

log = logging.getLogger(__name__)


def nsa_file(nsa: dict) -> tuple[Path, dict]:
    """Local path of the NSA file (downloading it if needed) and its provenance record.

    ``nsa`` is the resolved ``hosts.nsa`` section.
    """
    if nsa["path"]:
        path = Path(nsa["path"])
        if not path.exists():
            raise FileNotFoundError(f"hosts.nsa.path: NSA file not found: {path}")
        return path, {"path": str(path), "sha256": nsa["sha256"]}
    url = nsa["url"]
    settings = ServiceSettings(name="nsa", url=url, timeout=float(nsa["timeout"]),
                               retries=int(nsa["retries"]), backoff=float(nsa["backoff"]),
                               backoff_max=float(nsa["backoff_max"]))
    dest = Path(nsa["cache_dir"]) / (Path(urlparse(url).path).name or "nsa.fits")
    fetcher = Fetcher(settings, "v1_0_1", refetch=nsa["refetch"])
    return dest, fetcher.download(url, dest, expected_sha256=nsa["sha256"])


def _in_ra_range(ra: np.ndarray, lo: float, hi: float) -> np.ndarray:
    lo, hi = lo % 360.0, hi % 360.0 if hi != 360 else 360.0
    ra = ra % 360.0
    return (ra >= lo) & (ra <= hi) if lo <= hi else (ra >= lo) | (ra <= hi)


def select_hosts(cols: dict[str, np.ndarray], cfg: dict) -> np.ndarray:
    """Boolean selection over the NSA rows (see the module docstring)."""
    nsa = cfg["nsa"]
    ra, dec = cols["RA"], cols["DEC"]
    z, mass = cols["Z"], cols["ELPETRO_MASS"]
    sel = np.ones(len(ra), dtype=bool)
    if nsa.get("ra_range"):
        sel &= _in_ra_range(ra, *map(float, nsa["ra_range"]))
    if nsa.get("dec_range"):
        lo, hi = map(float, nsa["dec_range"])
        sel &= (dec >= lo) & (dec <= hi)
    if nsa.get("cones"):
        c = np.asarray(nsa["cones"], float).reshape(-1, 3)
        idx = np.flatnonzero(sel)
        if len(idx):
            sep = angular_separation_deg(ra[idx], dec[idx], c[:, 0], c[:, 1])
            inside = (sep <= c[None, :, 2]).any(axis=1)
            sel[idx[~inside]] = False
    if nsa.get("nsaids"):
        sel &= np.isin(cols["NSAID"], np.asarray(nsa["nsaids"], dtype=np.int64))
    zr = cfg["z_range"]
    if zr:
        sel &= (z >= zr[0]) & (z <= zr[1])
    mr = cfg["log_mass_range"]
    if mr:
        h = float(nsa["mass_h"])
        with np.errstate(divide="ignore", invalid="ignore"):
            logm = np.log10(mass) - 2 * np.log10(h)
        sel &= (logm >= mr[0]) & (logm <= mr[1])
    return sel


def read_nsa(path: Path, cfg: dict) -> pd.DataFrame:
    """Selected hosts from an NSA FITS file, reading only the needed columns (memmap)."""
    from astropy.io import fits

    try:
        hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
    except OSError as exc:
        raise ValueError(f"NSA file {path} is not a readable FITS file: {exc}") from None
    with hdul:
        if len(hdul) < 2 or not isinstance(hdul[1], fits.BinTableHDU):
            raise ValueError(f"NSA file {path}: HDU 1 is not a binary table")
        data = hdul[1].data
        have = {n.upper(): n for n in data.columns.names}
        missing = [c for c in NSA_COLUMNS if c not in have]
        if missing:
            raise ValueError(f"NSA file {path} lacks columns {missing}")
        sel_cols = {c: np.asarray(data.field(have[c])) for c in
                    ("NSAID", "RA", "DEC", "Z", "ELPETRO_MASS")}
        sel_cols = {c: v.astype(np.int64 if c == "NSAID" else np.float64)
                    for c, v in sel_cols.items()}
        sel = select_hosts(sel_cols, cfg)
        idx = np.flatnonzero(sel)
        idx = idx[np.argsort(sel_cols["NSAID"][idx], kind="stable")]
        max_hosts = cfg["nsa"]["max_hosts"]
        if max_hosts:
            idx = idx[: int(max_hosts)]
        out = {}
        for c in NSA_COLUMNS:
            col = data.field(have[c])
            v = np.asarray(col[idx]) if len(idx) else np.asarray(col[:0])
            if c == "IAUNAME":
                out[c] = [s.decode().strip() if isinstance(s, bytes) else str(s).strip()
                          for s in v]
            elif c == "NSAID":
                out[c] = v.astype(np.int64)
            elif c == "SERSIC_FLUX":
                out[c] = [list(map(float, row)) for row in np.asarray(v, np.float64)]
            else:
                if v.ndim > 1:  # a per-band column where a scalar is expected: use r
                    v = v[:, 4] if v.shape[1] == 7 else v[:, 0]
                out[c] = v.astype(np.float64)
    df = pd.DataFrame({c: out[c] for c in NSA_COLUMNS})
    df["NSAID"] = df["NSAID"].astype("int64")
    return df.reset_index(drop=True)


def load_nsa_hosts(cfg: dict) -> pd.DataFrame:
    """The host table for ``hosts.provider: nsa`` (``cfg`` = ``config['hosts']``)."""
    path, rec = nsa_file(cfg["nsa"])
    hosts = read_nsa(path, cfg)
    log.info("NSA %s (sha256 %s): %d hosts selected", path, rec.get("sha256"), len(hosts))
    if hosts.empty:
        log.warning("NSA selection is empty: check hosts.nsa region/nsaids, z_range, "
                    "log_mass_range")
    hosts.attrs["nsa_provenance"] = rec
    return hosts


