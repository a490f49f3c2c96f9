"""Say in a model file what its alpha blends (config ``alpha``, see ``dinstyle.models.base.ALPHA_MODES``),
leaving every weight bit for bit as it is.

    python tools/set_alpha_mode.py src/dinstyle/assets/models/din-fast.safetensors content -o OUT.safetensors

The new file loads, and is checked to load, as a model with that alpha; its ``info`` records the change.
"""
from __future__ import annotations

import argparse
import sys

from dinstyle.errors import DinstyleError
from dinstyle.io.tensorfiles import save_safetensors
from dinstyle.models import load_model_file
from dinstyle.models.base import ALPHA_MODES
from dinstyle.models.registry import read_model_file


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a dinstyle model file")
    p.add_argument("alpha", choices=ALPHA_MODES, help="what alpha < 1 blends")
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors; may be the input)")
    args = p.parse_args(argv)
    try:
        tensors, meta = read_model_file(args.model)
        before = meta.get("config", {}).get("alpha", "features")
        meta["config"] = {**meta.get("config", {}), "alpha": args.alpha}
        meta["info"] = {**meta.get("info", {}), "alpha_mode": f"set to {args.alpha!r} (was {before!r}) by "
                                                              f"tools/set_alpha_mode.py; weights unchanged"}
        save_safetensors(args.output, tensors, meta)
        model = load_model_file(args.output)
    except (DinstyleError, ValueError) as e:
        print(f"set_alpha_mode: {e}", file=sys.stderr)
        return 1
    print(f"{args.output}: {model.arch}, alpha {before!r} -> {model.alpha_mode!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
