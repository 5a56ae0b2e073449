"""Helpers of the LobeQuant module that need neither Slicer nor Qt (loaded on demand)."""
