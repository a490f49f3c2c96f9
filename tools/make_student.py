"""Write the starting point of a din-mobilenet distillation: a student built from din-magenta's own layers.

    python tools/make_student.py -o runs/din-mobilenet-init.safetensors [--teacher din-magenta] [--res-blocks 3]

What transfers (``models.din_mobilenet.from_teacher``): the style predictor, the res blocks' convs and weight/bias
nets (evenly spaced teacher blocks), ``up2`` (as a sub-pixel conv, the same map) and the 3-channel ``out``
level's nets. The contract convs and the head's conv are new.
"""
from __future__ import annotations

import argparse

from dinstyle.models import load_model, save_model
from dinstyle.models.din_mobilenet import DINMobileNetConfig, from_teacher


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--teacher", default="din-magenta", help="bundled name or model file (default: din-magenta)")
    p.add_argument("--res-blocks", type=int, default=DINMobileNetConfig.res_blocks)
    args = p.parse_args()
    teacher = load_model(args.teacher)
    student = from_teacher(teacher, DINMobileNetConfig(res_blocks=args.res_blocks))
    save_model(student, args.output, info={**student.info, "teacher": args.teacher})
    print(f"wrote {args.output} ({student.info['init']})")


if __name__ == "__main__":
    main()
