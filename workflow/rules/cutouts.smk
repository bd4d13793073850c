# cutouts stage: filled in by its own issue. Register per-partition catalog columns in
# CATALOG_COLUMNS and final products in ALL_TARGETS (see common.smk).
