"""Evaluation of style-transfer models: metrics, Magenta rank judges, reports (`dinstyle eval`)."""
from .metrics import color_transfer, palette_normalize, sliced_wasserstein, ssim, style_loss
from .run import evaluate, select_pairs

__all__ = ["color_transfer", "evaluate", "palette_normalize", "select_pairs", "sliced_wasserstein", "ssim",
           "style_loss"]
