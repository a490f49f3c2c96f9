"""The work of one worker, the same on every engine: read a chunk of planned outputs, stylize photos of
one size (and one alpha and colour option) together, encode each result. Writing files and the
manifest is the driver's (one writer: atomic files, a manifest no two processes append to at once).

A row in: photo, src, variant, style_index, alpha, preserve_color, output, fmt. A result out: output,
status, error, data (the encoded file, or b"" when failed), cpu (seconds).
"""
from __future__ import annotations

import time
import warnings
from collections import OrderedDict

import torch

from ..api import Stylizer
from ..errors import DinstyleError
from ..io.images import DEFAULT_MAX_PIXELS, image_bytes, open_image, pil_to_tensor, tensor_to_pil
from ..models.stylecode import StyleCode
from . import bank as banks
from .manifest import FAILED, OK
from .tree import read_bytes

# Pixels per forward pass: at 224 px a batch is --batch-size photos, a 12-MP photo goes alone.
BATCH_PIXELS = 1 << 22


def resized(im, size: int | None, max_size: int | None):
    """Long side to ``size`` (or down to ``max_size``), Lanczos, as ``dinstyle stylize --size`` does."""
    from PIL import Image

    long_side = max(im.size)
    target = size or (max_size if max_size and long_side > max_size else None)
    if not target or target == long_side:
        return im
    s = target / long_side
    return im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)


class Worker:
    """A model and the style bank on one device, turning rows into results."""

    def __init__(self, spec: dict, bank: StyleCode, stylizer: Stylizer | None = None):
        self.spec = spec
        self.st = stylizer or Stylizer.from_pretrained(spec["model"], device=spec["device"], seed=spec["seed"],
                                                       half=False)
        self.bank = self.st.check_code(bank, "style bank")  # on the model's device, once

    def __call__(self, rows: list[dict]) -> list[dict]:
        """Results in the order of ``rows``, each with its share of this process's CPU time ("cpu", s): the
        cost of an image whatever the machine's load (benchmarks/dataset_throughput.py)."""
        cpu = time.process_time()
        results = self._results(rows)
        share = (time.process_time() - cpu) / max(1, len(rows))
        return [{**results[r["output"]], "cpu": share} for r in rows]

    def _results(self, rows: list[dict]) -> dict[str, dict]:
        results: dict[str, dict] = {}
        images = self._decode(rows, results)
        groups: OrderedDict[tuple, list] = OrderedDict()
        for r in rows:
            if r["output"] not in results:
                x, _ = images[r["src"]]
                groups.setdefault((*x.shape[-2:], float(r["alpha"]), bool(r["preserve_color"])), []).append(r)
        for (h, w, alpha, keep), members in groups.items():
            n = max(1, min(int(self.spec.get("batch_size", 8)), BATCH_PIXELS // (h * w)))
            for i in range(0, len(members), n):
                self._run(members[i : i + n], images, alpha, keep, results)
        return results

    def _decode(self, rows: list[dict], results: dict) -> dict:
        """Each photo once (its variants share it): (RGB tensor, alpha tensor or None); failures -> results."""
        images = {}
        for r in rows:
            if r["src"] in images:
                continue
            try:
                data = read_bytes(r["src"])
                rgb, alpha = open_image(data, self.spec.get("max_pixels", DEFAULT_MAX_PIXELS), name=r["photo"])
                rgb = resized(rgb, self.spec.get("size"), self.spec.get("max_size"))
                alpha = None if alpha is None else pil_to_tensor(resized(alpha, self.spec.get("size"),
                                                                         self.spec.get("max_size")))[:, :1]
                images[r["src"]] = (pil_to_tensor(rgb), alpha)
            except DinstyleError as e:
                images[r["src"]] = None
                for other in (o for o in rows if o["src"] == r["src"]):
                    results[other["output"]] = _failed(other, str(e))
        return images

    def _run(self, rows: list[dict], images: dict, alpha: float, keep: bool, results: dict) -> None:
        x = torch.cat([images[r["src"]][0] for r in rows])
        try:
            code = banks.pick(self.bank, [int(r["style_index"]) for r in rows])
            y = self.st.stylize(x, code, alpha=alpha, preserve_color=keep)
        except DinstyleError as e:  # NaN from a damaged model, out of memory even in tiles, ...
            for r in rows:
                results[r["output"]] = _failed(r, f"{r['photo']}: {e}")
            return
        for i, r in enumerate(rows):
            a = images[r["src"]][1]
            im = tensor_to_pil(y[i] if a is None else torch.cat([y[i], a[0]]))
            opts = {"quality": int(self.spec["quality"])} if self.spec.get("quality") and r["fmt"] in (
                "JPEG", "WEBP") else {}
            try:
                with warnings.catch_warnings():  # RGBA into JPEG is flattened onto white (docs/DATASETS.md)
                    warnings.simplefilter("ignore")
                    data = image_bytes(im, r["fmt"], r["output"], **opts)
            except DinstyleError as e:  # an encoder's limit: WebP over 16383 px, ...
                results[r["output"]] = _failed(r, str(e))
                continue
            results[r["output"]] = {"output": r["output"], "status": OK, "error": "", "data": data}


def _failed(row: dict, error: str) -> dict:
    return {"output": row["output"], "status": FAILED, "error": error, "data": b""}
