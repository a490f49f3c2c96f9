"""`dinstyle export onnx`: style encoder + content graphs and a manifest, for `python -m dinstyle.lite`."""
from __future__ import annotations

from ..defaults import DEFAULT_MODEL

import importlib.util
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("export", help="export a model for deployment (ONNX; runs without torch via dinstyle.lite)")
    p.add_argument("format", choices=["onnx"], help="export format")
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|FILE", help="architecture name or model file")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--style-size", type=int, default=None,
                   help="default longer side of style images for the runtime (default: the model's own, as "
                        "'dinstyle stylize' uses; 256 for the bundled models)")
    p.add_argument("--int8", nargs="?", const="static", choices=["static", "dynamic"], default=None,
                   help="also write content.int8.onnx (static: calibrated QDQ, the default; dynamic)")
    p.add_argument("--calibration", nargs="+", default=[], metavar="IMAGE",
                   help="content images to calibrate static int8 with (default: synthetic images)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch parity check")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export in DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import DinstyleError, UsageError

    if args.style_size is not None and args.style_size < 64:
        raise UsageError("--style-size must be at least 64")
    if not 13 <= args.opset <= 20:
        raise UsageError("--opset must be between 13 and 20")
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise DinstyleError(f"export needs {' and '.join(missing)}: pip install {' '.join(missing)}")
    from .. import export
    from ..models import load_model

    # no output may replace these (the model may sit in DIR under a graph's name)
    inputs = [*([args.model] if Path(args.model).is_file() else []), *args.calibration]
    export.check_outputs(Path(args.output), args.overwrite, inputs)  # before the model loads: fail fast
    model = load_model(args.model)
    manifest = export.export_onnx(model, args.output, opset=args.opset, style_size=args.style_size,
                                  check=not args.no_check, overwrite=args.overwrite, inputs=inputs)
    parity = manifest.get("parity_max_abs_diff")
    checked = f", max |onnx - torch| = {parity:.1e}" if parity is not None else ", not checked"
    print(f"{args.output}: {manifest['model_id']} (opset {manifest['opset']}{checked})")
    if args.int8:
        path = export.quantize_content(args.output, mode=args.int8, calibration=args.calibration)
        print(f"{path}: int8 ({args.int8}); measure its quality before use: python benchmarks/quantization.py")
    return 0
