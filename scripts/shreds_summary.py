"""Rule `shreds_summary`: shred fraction per survey (paper 001 Sec. 3.2 finds ~4-5%) and,
on the synthetic sky, purity / completeness of is_shred against the truth labels."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

import json  # noqa: E402

import pandas as pd  # noqa: E402

from catclean.io import read_parquet  # noqa: E402
from catclean.runtime import rule_logging  # noqa: E402
from catclean.shreds.summary import summarize  # noqa: E402

log = rule_logging(snakemake.log[0])
rows = []
for survey in snakemake.params.surveys:
    files = list(snakemake.input[survey])
    shreds = pd.concat([read_parquet(f) for f in files if "/shreds/" in f], ignore_index=True)
    cuts = pd.concat([read_parquet(f) for f in files if "/cuts/" in f], ignore_index=True)
    rows.append(summarize(survey, shreds, cuts))
    log.info("%s", rows[-1])
Path(snakemake.output.json).write_text(json.dumps(rows, indent=1))
table = pd.DataFrame(rows)
html = ["<html><head><meta charset='utf-8'><title>Shred fractions</title></head><body>",
        "<h1>Shreds per survey (paper 001 Sec. 3.2: ~4% Legacy, ~5% SDSS / PS1)</h1>",
        f"<p>model: {snakemake.params.model_kind}. Fraction = is_shred among sources that "
        "pass the cuts and have an ok cutout. Truth columns exist on the synthetic sky only: "
        "purity = true shreds among is_shred, completeness = is_shred among true shreds "
        "(both over scored sources).</p>",
        table.to_html(index=False, float_format="%.3f"), "</body></html>"]
Path(snakemake.output.html).write_text("\n".join(html))
