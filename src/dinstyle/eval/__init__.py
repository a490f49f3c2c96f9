"""Evaluation of style-transfer models: metrics, Magenta rank judges, reports (`dinstyle eval`), the Magenta
reference model (``magenta``, torch-free), parameter/FLOP profiles (``profile``, `dinstyle profile`) and the
stroke-placement metric (``stroke``) with its synthetic test images (``stroke_shapes``).

The names below are imported lazily, so ``dinstyle.eval.magenta`` never pays for importing torch.
"""
_NAMES = {"color_transfer": "metrics", "palette_normalize": "metrics", "sliced_wasserstein": "metrics",
          "ssim": "metrics", "style_loss": "metrics", "evaluate": "run", "select_pairs": "run"}


def __getattr__(name: str):
    if name in _NAMES:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["color_transfer", "evaluate", "palette_normalize", "select_pairs", "sliced_wasserstein", "ssim",
           "style_loss"]
