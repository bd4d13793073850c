"""Rule `make_shred_training_set`: labeled galaxy / shred RGB cutouts (paper 001 Sec. 2.1).

Synthetic (default): a training sky of its own seed (config seed + training.seed_offset),
Legacy fields of low-redshift hosts, one 128x128 RGB cutout per galaxy / shred detection.
Labeled: the user's CSV (source_id,label) + PNG/JPEG cutouts.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import numpy as np  # noqa: E402

from catclean.runtime import progress, rule_logging  # noqa: E402
from catclean.shreds.data import load_labeled_images, synthetic_training_set  # noqa: E402

log = rule_logging(snakemake.log[0])
p = snakemake.params
tr = p.shreds.get("training", {})
cut = p.cutouts or {}
size, pixscale = int(cut.get("rgb_size", 128)), float(cut.get("rgb_pixscale", 0.469))
if tr.get("source", "synthetic") == "labeled":
    images, labels, meta = load_labeled_images(tr["labeled"]["csv"], tr["labeled"]["images"],
                                               size=size)
    groups = np.arange(len(labels))
else:
    seed = int(p.seed) + int(tr.get("seed_offset", 101))
    n = int(tr.get("n_hosts", 24))
    bar = progress(range(n), desc="training fields", unit="field")
    images, labels, meta = synthetic_training_set(
        n, seed, z_range=tuple(tr.get("z_range", (0.015, 0.03))),
        log_mass_range=tuple(tr.get("log_mass_range", (10.2, 11.2))),
        ra_range=tuple(tr.get("ra_range", (200.0, 240.0))),
        dec_range=tuple(tr.get("dec_range", (5.0, 35.0))),
        sky={"field_max_pix": tr.get("field_max_pix", 500),
             "background_density": tr.get("background_density", 40000),
             "star_density": tr.get("star_density", 3000)},
        radius_kpc=p.radius_kpc, cosmology=p.cosmology, r_max=tr.get("r_max", 22.5),
        galaxy_fraction=tr.get("galaxy_fraction", 0.6), size=size, pixscale=pixscale,
        workers=snakemake.threads, progress=lambda k: bar.update(k))
    bar.close()
    groups = meta["host_nsaid"].to_numpy()
log.info("training set: %d cutouts, %d shreds (%.0f%%)", len(labels), int(labels.sum()),
         100 * labels.mean() if len(labels) else 0)
if len(labels) < 10 or labels.sum() < 3 or (labels == 0).sum() < 3:
    raise ValueError(f"shred training set too small: {len(labels)} cutouts, "
                     f"{int(labels.sum())} shreds; raise shreds.training.n_hosts")
out = Path(snakemake.output[0])
tmp = out.with_name(out.stem + ".tmp.npz")
np.savez(tmp, images=images, labels=labels, groups=groups,
         source_id=meta["source_id"].astype(str).to_numpy(),
         truth_label=meta["truth_label"].astype(str).to_numpy())
tmp.replace(out)
