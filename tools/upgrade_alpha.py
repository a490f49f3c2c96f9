"""Rewrite a model file from before the one alpha policy so that it loads today: drop its config ``alpha``
("features" or "code", refused since; see ``dinstyle.models.legacy``) and din-magenta's neutral-code buffer,
every other weight bit for bit as it is.

    python tools/upgrade_alpha.py OLD.safetensors -o NEW.safetensors

Alpha 1 gives the same images as before (the three policies are one network there). Alpha < 1 then blends
towards the content's own code, which such weights were not trained for: fine-tune them for it
(configs/din-magenta-alpha-content.toml) before shipping them.
"""
from __future__ import annotations

import argparse
import sys

from dinstyle.errors import DinstyleError
from dinstyle.io.tensorfiles import load_safetensors, save_safetensors
from dinstyle.models import load_model_file
from dinstyle.models.legacy import RETIRED_TENSORS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a dinstyle model file")
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors; may be the input)")
    args = p.parse_args(argv)
    try:
        tensors, meta = load_safetensors(args.model)
        config = dict(meta.get("config") or {})
        before = config.pop("alpha", None)
        meta["config"] = config
        meta["info"] = {**meta.get("info", {}), "alpha_mode": f"{before!r} dropped by tools/upgrade_alpha.py "
                                                              "(alpha now blends towards the content's own code)"}
        save_safetensors(args.output, {k: v for k, v in tensors.items() if k not in RETIRED_TENSORS}, meta)
        model = load_model_file(args.output)  # checked to load
    except (DinstyleError, ValueError) as e:
        print(f"upgrade_alpha: {e}", file=sys.stderr)
        return 1
    print(f"{args.output}: {model.arch}, alpha {before!r} dropped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
