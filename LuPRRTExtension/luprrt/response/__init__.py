"""Tumour response: lesion diameters, lesion tracking, RECIST 1.1 and lesion-level outcome.

Modules: :mod:`.diameters` (longest axial diameter and short axis), :mod:`.matching`
(lesion correspondence between time points), :mod:`.recist` (RECIST 1.1 rules and
responses) and :mod:`.outcome` (per-lesion change of the longest diameter).
"""
