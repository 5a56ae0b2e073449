"""Helpers of the ResponseAssess module, loaded on demand by its Logic.

* :mod:`.lines`: the long-axis markups line shown for each measured lesion (reused across
  runs; a line the reader moved or drew counts as a manual measurement).
* :mod:`.rows`: tidy table rows (diameters, tracking events, RECIST measurements and
  results, spider and waterfall plot data) with unit-carrying column names.
* :mod:`.synthetic`: analytic lesion phantoms (boxes, ellipsoids, a small CT) with
  closed-form diameters, used by the module's self-test.
"""
