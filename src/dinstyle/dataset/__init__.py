"""Stylizing whole datasets (``dinstyle dataset``): a mirrored output tree, seeded style draws, a style
bank encoded once, a manifest, resumable runs, and two engines (local processes, Ray Data) that give
the same outputs. See docs/DATASETS.md."""
from .options import PRESETS, DatasetOptions, parse_alpha, with_preset
from .run import Summary, stylize_dataset

__all__ = ["DatasetOptions", "PRESETS", "Summary", "parse_alpha", "stylize_dataset", "with_preset"]
