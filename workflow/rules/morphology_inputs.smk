# Derived config and input functions of the morphology stage: included by
# morphology.smk, so the rule file holds rules only.
MORPH = config["morphology"]
MORPH_DIR = f"{RESULTS}/morphology/_model"
MORPH_HOSTS_DIR = f"{RESULTS}/morphology/_hosts"
# host images: cut from the rendered Legacy fields (synthetic imaging) or fetched from the
# Legacy viewer (live imaging: the imaging survey's cutout provider, as for `cutouts`)
MORPH_IMAGING = config["cutouts"]["imaging_survey"]
MORPH_LIVE_IMAGING = cutout_provider(MORPH_IMAGING) == "live"


def host_image_inputs(wildcards):
    """segment_hosts' images: `images`, the fetched viewer JPEGs of every host (live
    imaging), or `fields`, the rendered Legacy field of every host that has one
    (synthetic; from the hosts checkpoint's plan)."""
    if MORPH_LIVE_IMAGING:
        return {"images": rules.fetch_host_images.output.images}
    return {
        "fields": expand(
            rules.render_field.output.image,
            survey=MORPH_IMAGING,
            release=config["surveys"][MORPH_IMAGING]["release"],
            host=sorted({h for hs in partition_plan()["fields"].values() for h in hs}),
        )
    }

