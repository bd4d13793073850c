"""Rule `fetch_host_images` (live imaging): every host's Legacy viewer cutout.jpg at the
morphology field size and pixel scale, through the services' one Fetcher (retries, cache,
redaction); a failed download is a flagged host, never an error."""
import pandas as pd

from catclean.morphology.host_images import fetch
from catclean.runtime import progress, rule_setup

log = rule_setup(snakemake)
inp, p, out = snakemake.input, snakemake.params, snakemake.output
n_hosts = len(pd.read_parquet(inp.hosts, columns=["NSAID"]))
bar = progress(range(n_hosts), desc="host images", unit="host")
got = fetch(inp.hosts, p.services, p.release, size=p.size, pixscale=p.pixscale,
            out_path=out.images, progress=bar.update)
bar.close()
log.info("%d hosts, %d with an image", len(got["ok"]), int(got["ok"].sum()))
