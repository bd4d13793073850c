"""Rule `train_shred_cnn`: held-out test + k-fold CV training (paper 001 Sec. 2.2)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import time  # noqa: E402

import numpy as np  # noqa: E402

from catclean.runtime import rule_logging  # noqa: E402
from catclean.shreds.model import ShredArch  # noqa: E402
from catclean.shreds.train import TrainConfig, cross_validate, save_json  # noqa: E402

log = rule_logging(snakemake.log[0])
p = snakemake.params
preset_name = p.shreds.get("preset", "small")
preset = dict(p.shreds.get("presets", {}).get(preset_name, {}))
arch = ShredArch.from_config(preset)
cfg = TrainConfig.from_config(dict(preset, threads=snakemake.threads), seed=p.seed)
d = np.load(snakemake.input[0], allow_pickle=False)
log.info("preset %s: arch %s; train %s; %d cutouts", preset_name, arch, cfg, len(d["labels"]))
t0 = time.time()
res = cross_validate(d["images"], d["labels"], arch, cfg, groups=d["groups"],
                     model_path=snakemake.output.model)
res["preset"] = preset_name
res["wall_seconds"] = round(time.time() - t0, 1)
import keras  # noqa: E402

res["n_params"] = int(keras.saving.load_model(snakemake.output.model, compile=False,
                                               safe_mode=True).count_params())
save_json(res, snakemake.output.cv)
log.info("mean test AUC %s, accuracy %.4f; kept fold %d (AUC %s)", res["mean"]["auc"],
         res["mean"]["accuracy"], res["kept_fold"], res["kept"]["auc"])
