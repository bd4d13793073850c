"""catclean: clean galaxy catalogs from large sky surveys.

Subpackages, one per pipeline stage (named after the concept of the paper it implements):

- :mod:`catclean.sky`        -- the embedded synthetic sky (GalSim renderer + sep detection)
- :mod:`catclean.catalogs`   -- survey providers (synthetic and live), native -> common schema
- :mod:`catclean.cuts`       -- SAGA-style photometric / quality cuts and host association
- :mod:`catclean.cutouts`    -- image cutouts, sharded stores
- :mod:`catclean.shreds`     -- CNN shred scoring (Di Teodoro et al., paper 001)
- :mod:`catclean.qa`         -- MegaCam image-quality grading (Teimoorinia et al., paper 000)
- :mod:`catclean.blends`     -- photometry of blended pairs (Boucaud et al., paper 002)
- :mod:`catclean.io`         -- partitioned Parquet with units and provenance
"""

__version__ = "0.1.0"
