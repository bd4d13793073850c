"""Rule evaluate_blends: networks vs the sep baseline on the test blends (paper 002 Sec. 4)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import json  # noqa: E402
import logging  # noqa: E402

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("blends_evaluate")

import pandas as pd  # noqa: E402

from catclean.blends import models, pipeline, plots  # noqa: E402

models.configure_threads(snakemake.threads)
test = pipeline.load_set(snakemake.input.test)
paths = {k: snakemake.input[k] for k in ("blend2flux", "unet", "blend2mask2flux")}
settings = getattr(snakemake.params, "settings", None) or pipeline.resolve(snakemake.params.blends)
res = pipeline.evaluate(test, paths, settings)
summary = res["summary"]
summary["preset"] = settings["preset"]
Path(snakemake.output.metrics).write_text(json.dumps(summary, indent=1, default=float))
tables = res["tables"]
long = pd.concat([t.assign(split=name) for name, t in tables.items()], ignore_index=True)
long.to_csv(snakemake.output.csv, index=False, float_format="%.4f")
html = ["<html><head><meta charset='utf-8'><title>Blends metrics</title></head><body>",
        "<h1>Photometry of blended pairs (paper 002): test-set metrics</h1>",
        "<p>dmag = mag_blend - mag_isolated; scatter = std(dmag); outliers |dmag| &gt; 0.75; "
        "MAPE on flux (%). sep: galaxies it missed are excluded (see completeness, "
        "outlier_frac_all).</p>"]
iou = summary.get("iou", {})
if iou:
    html.append("<h2>Mask IoU</h2>" + pd.DataFrame(iou).T.to_html(float_format="%.3f"))
for name, t in tables.items():
    html.append(f"<h2>{name}</h2>" + t.to_html(index=False, float_format="%.3f"))
html.append("</body></html>")
Path(snakemake.output.html).write_text("\n".join(html))
df = res["per_galaxy"]
plots.fig5(df, snakemake.output.fig5)
plots.fig6(df, snakemake.output.fig6)
plots.fig7(df, snakemake.output.fig7)
plots.fig8(tables, snakemake.output.fig8)
plots.fig_iou(res["iou"], test["morph"], res["morph_names"], snakemake.output.fig_iou)
for m, s in summary["methods"].items():
    log.info("%s: MAPE %.2f%% bias %.3f scatter %.3f outliers %.3f completeness %.3f", m,
             s["mape"], s["bias"], s["scatter"], s["outlier_frac"], s["completeness"])
log.info("IoU: %s", json.dumps(iou))
