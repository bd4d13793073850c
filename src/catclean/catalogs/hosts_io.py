"""Load the host table from the configured provider."""

from __future__ import annotations

import pandas as pd

from ..sky.hosts import synthetic_hosts
from .services.nsa import load_nsa_hosts


def load_hosts(cfg: dict, seed: int, cosmo) -> pd.DataFrame:
    """Host table (NSA v1_0_1 column names) from the resolved ``config['hosts']``.

    ``provider: synthetic`` draws hosts with :func:`catclean.sky.hosts.synthetic_hosts`;
    ``provider: nsa`` reads the NSA catalogue (:mod:`catclean.catalogs.services.nsa`).
    """
    if cfg["provider"] == "synthetic":
        s = cfg["synthetic"]
        return synthetic_hosts(s["n_hosts"], s["ra_range"], s["dec_range"], cfg["z_range"],
                               cfg["log_mass_range"], seed, cosmo,
                               nan_redshift_hosts=s["nan_redshift_hosts"])
    if cfg["provider"] == "nsa":
        return load_nsa_hosts(cfg)
    raise ValueError(f"hosts.provider: unknown provider {cfg['provider']!r}")
