"""Rule `segment_hosts`: every host's image at the morphology pixel scale -- cut from its
rendered Legacy field (synthetic imaging) or fetched from the Legacy viewer by
`fetch_host_images` (live imaging) -- through the Mask R-CNN: host class, score, mask
centroid, mask and every detection (paper 003 Sec. 5.4-5.5)."""
from catclean.cutouts.build import field_paths_from_inputs
from catclean.morphology.stage import segment
from catclean.runtime import rule_setup

log = rule_setup(snakemake, tensorflow=True)
inp, p, out = snakemake.input, snakemake.params, snakemake.output
segment(inp.hosts, field_paths_from_inputs(inp.get("fields", [])), inp.model, size=p.size,
        pixscale=p.pixscale, min_score=p.min_score, batch_size=p.batch_size,
        table_path=out.table, masks_path=out.masks, images_path=inp.get("images"))
