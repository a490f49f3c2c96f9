"""Figures computed on model outputs (see each module's docstring for the definition)."""
from .stroke import PlacementScore, content_masks, stroke_placement
from .synthetic import KINDS, synthetic_image, synthetic_set

__all__ = ["PlacementScore", "content_masks", "stroke_placement", "KINDS", "synthetic_image", "synthetic_set"]
