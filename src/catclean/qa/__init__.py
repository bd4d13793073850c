"""MegaCam-like image-quality grading (paper 000: Teimoorinia et al., CFHT MegaCam QA).

Pipeline (paper Sec. 3, Fig. 8), one rule per step (``workflow/rules/qa.smk``), each
calling one function of :mod:`.grading`: synthetic multi-extension exposures
(:mod:`.simulate`) -> per-CCD source extraction with sep or Source Extractor
(:mod:`.extract`, :mod:`.sextractor`) -> five source features (ISO0, ELLIPTICITY,
BACKGROUND, stellarity, EXPTIME capped at 30; :mod:`.features`, :mod:`.stellarity`)
-> batch SOM + k-means on its codebook (:mod:`.som`) -> representative images of
20 x 25x25 stamps and per-cluster counts (:mod:`.represent`) -> M1/M2/M3 Keras models
(:mod:`.models`) -> per-exposure probabilities (:mod:`.combiner`) and the classical
FWHM/ellipticity cut (:mod:`.grading`, :mod:`.plots`). ``catclean qa evaluate``
(:mod:`.commands`) runs the same functions in one process.
"""

CLASSES = ("Good", "RBT", "BT", "B-Seeing", "BGP")
"""The five quality classes of paper 000 Sec. 2, in model-output order."""

CLASS_COLUMNS = ("p_good", "p_rbt", "p_bt", "p_bseeing", "p_bgp")
"""Column names of the per-exposure class probabilities (same order as CLASSES)."""

FEATURES = ("ISO0", "ELLIPTICITY", "BACKGROUND", "STELLARITY", "EXPTIME")
"""The five SOM input features of paper 000 Sec. 3.1 (CLASS_STAR -> STELLARITY)."""
