"""LuPRRT core: Slicer-independent quantitative imaging for 177Lu-dotatate PRRT.

Shared by the LobeQuant, LesionDosimetry and ResponseAssess Slicer modules, the
``luprrt`` command line and cohort batch runs. Nothing here imports ``slicer``
except :mod:`luprrt.mrml`.
"""

__version__ = "0.1.0"
