"""Load the host table from the configured provider."""

from __future__ import annotations

import pandas as pd

from ..sky.hosts import synthetic_hosts


def load_hosts(cfg: dict, seed: int, cosmo) -> pd.DataFrame:
    """Host table (NSA v1_0_1 column names) from ``config['hosts']``.

    ``provider: synthetic`` draws hosts with :func:`catclean.sky.hosts.synthetic_hosts`;
    ``provider: nsa`` reads the NSA catalogue through :mod:`catclean.catalogs.live`.
    """
    if cfg["provider"] == "synthetic":
        s = cfg.get("synthetic", {})
        return synthetic_hosts(s.get("n_hosts", 6), s.get("ra_range", (150, 154)),
                               s.get("dec_range", (0, 4)), cfg.get("z_range", (0.005, 0.05)),
                               cfg.get("log_mass_range", (9.5, 11.5)), seed, cosmo,
                               nan_redshift_hosts=s.get("nan_redshift_hosts", 0))
    if cfg["provider"] == "nsa":
        from . import live

        return live.load_nsa_hosts(cfg)
    raise ValueError(f"hosts.provider: unknown provider {cfg['provider']!r}")
