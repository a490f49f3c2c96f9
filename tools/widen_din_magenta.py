"""Write a din-magenta model with k x k grouped (optionally deformable) DIN kernels that computes exactly the
images of the model it is made from: the start of a fine-tune that lets the new taps learn.

    python tools/widen_din_magenta.py src/dinstyle/assets/models/din-magenta.safetensors -o runs/wide.safetensors
    python tools/widen_din_magenta.py ... --deformable -o runs/wide-deform.safetensors

(``dinstyle.convert.widen``; docs/DEFORMABLE.md shows the fine-tune that follows.)
"""
from __future__ import annotations

import argparse
import sys

from dinstyle.errors import DinstyleError
from dinstyle.models import load_model_file, save_model
from dinstyle.convert.widen import widen


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a din-magenta model file with 1x1 depthwise DIN kernels")
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    p.add_argument("--kernel", type=int, default=3, help="DIN kernel size (default 3)")
    p.add_argument("--group-size", type=int, default=4, help="input channels per group (default 4)")
    p.add_argument("--deformable", action="store_true", help="deformable DIN levels (offsets start at zero)")
    args = p.parse_args(argv)
    try:
        model = load_model_file(args.model)
        if model.arch != "din-magenta":
            raise DinstyleError(f"{args.model}: a {model.arch} model, not din-magenta")
        wide = widen(model.float(), args.kernel, args.group_size, args.deformable)
    except (DinstyleError, ValueError) as e:
        print(f"widen_din_magenta: error: {e}", file=sys.stderr)
        return 1
    info = {**{k: v for k, v in wide.info.items() if k not in ("file", "trained")}, "widened_from": args.model}
    save_model(wide, args.output, info=info)
    print(f"{args.output}: din-magenta, {args.kernel}x{args.kernel} DIN kernels, {args.group_size} channels per "
          f"group{', deformable' if args.deformable else ''}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
