"""Torch-free runtime for exported models: onnxruntime, numpy and Pillow only.

    from dinstyle.lite import LiteModel
    model = LiteModel("exported/")            # made by `dinstyle export onnx`
    code = model.code_for("style.jpg")        # or a style code .safetensors file
    out = model.stylize("photo.jpg", code)    # HxWx3 float32 in [0, 1]

Command line: ``python -m dinstyle.lite --model-dir DIR --style STYLE CONTENT -o OUT``.
"""
from .codefile import read_safetensors, read_style_code
from .images import load_rgb, save_rgb
from .manifest import read_manifest
from .runtime import LiteModel

__all__ = ["LiteModel", "load_rgb", "read_manifest", "read_safetensors", "read_style_code", "save_rgb"]
