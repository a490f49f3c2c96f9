"""The paper's data source: an infinite, shuffled stream of (content, style) crop pairs read from files.

Every random choice is a pure function of (seed, global sample index): which file (a seeded
permutation per epoch), the crop and the flip. So a run resumed from a checkpoint sees exactly the
batches it would have seen, whatever the number of DataLoader workers, and DDP ranks take
interleaved indices of the same global stream (rank r of W takes r, r+W, r+2W, ...).
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import DinstyleError, UsageError
from ..io.imagefolders import BadImage, list_images, load_rgb, open_checked, oriented_size
from .distributed import DistInfo

MAX_RETRIES = 64  # consecutive unreadable picks before giving up on a data set
CONTENT, STYLE = 0, 1


def random_resized_crop(path: Path, size: int, scale: tuple[float, float], flip: bool, max_pixels: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Aspect-preserving: short side -> size * U(scale), random size x size crop, random h-flip. (H, W, 3) uint8."""
    with open_checked(path, max_pixels) as probe:
        w, h = oriented_size(probe)
    short = size * rng.uniform(*scale)
    nw, nh = max(size, round(w * short / min(w, h))), max(size, round(h * short / min(w, h)))
    im = load_rgb(path, max_pixels, min_size=(nw, nh))
    if im.size != (nw, nh):
        im = im.resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
    x, y = int(rng.integers(0, nw - size + 1)), int(rng.integers(0, nh - size + 1))
    a = np.array(im.crop((x, y, x + size, y + size)), dtype=np.uint8)  # a writable copy
    if flip and rng.random() < 0.5:
        a = np.ascontiguousarray(a[:, ::-1])
    return a


def center_crop(path: Path, size: int, max_pixels: int) -> np.ndarray:
    """Short side -> size, centre crop (the fixed sample pairs). (H, W, 3) uint8; raises BadImage."""
    with open_checked(path, max_pixels) as probe:
        w, h = oriented_size(probe)
    nw, nh = max(size, round(w * size / min(w, h))), max(size, round(h * size / min(w, h)))
    im = load_rgb(path, max_pixels, min_size=(nw, nh)).resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
    x, y = (nw - size) // 2, (nh - size) // 2
    return np.array(im.crop((x, y, x + size, y + size)), dtype=np.uint8)


class _Stream:
    """One image list read in seeded per-epoch permutations, with deterministic replacement of bad files."""

    def __init__(self, files: Sequence[Path], seed: int, stream: int):
        self.files, self.seed, self.stream = list(files), seed, stream
        self._epoch, self._perm = -1, None

    def file_at(self, g: int) -> Path:
        n = len(self.files)
        epoch, pos = divmod(g, n)
        if epoch != self._epoch:  # cached: consecutive indices share an epoch
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, self.stream, epoch]).permutation(n)
        return self.files[int(self._perm[pos])]

    def crop(self, g: int, size: int, scale, flip: bool, max_pixels: int) -> tuple[np.ndarray, list[str]]:
        """The crop for global index g; unreadable files are replaced by other (seeded) picks and named."""
        bad: list[str] = []
        for attempt in range(MAX_RETRIES):
            # attempt > 0 draws a replacement from further along the stream, still a pure function of g
            gi = g if attempt == 0 else g + int(np.random.default_rng([self.seed, self.stream, g, attempt]).integers(1, 1 << 40))
            path = self.file_at(gi)
            rng = np.random.default_rng([self.seed, 2 + self.stream, g, attempt])
            try:
                return random_resized_crop(path, size, scale, flip, max_pixels, rng), bad
            except BadImage as e:
                bad.append(f"{e.kind}\t{path}\t{e}")
        raise DinstyleError(f"{MAX_RETRIES} unreadable images in a row (last: {bad[-1].split(chr(9))[1]}); "
                            "run 'dinstyle check-data' on the folder")


class PairDataset(Dataset):
    """Item g (a global sample index) -> (content uint8 (3,S,S), style uint8 (3,S,S), bad-file records)."""

    def __init__(self, content: Sequence[Path], style: Sequence[Path], size: int, seed: int,
                 scale: tuple[float, float] = (1.0, 2.0), flip: bool = True, max_pixels: int = 100_000_000):
        self.content, self.style = _Stream(content, seed, CONTENT), _Stream(style, seed, STYLE)
        self.size, self.scale, self.flip, self.max_pixels = size, tuple(scale), flip, max_pixels

    def __len__(self) -> int:  # nominal: the stream is infinite
        return max(len(self.content.files), len(self.style.files))

    def __getitem__(self, g: int):
        c, bad_c = self.content.crop(g, self.size, self.scale, self.flip, self.max_pixels)
        s, bad_s = self.style.crop(g, self.size, self.scale, self.flip, self.max_pixels)
        return (torch.from_numpy(c).permute(2, 0, 1), torch.from_numpy(s).permute(2, 0, 1), "\n".join(bad_c + bad_s))


class StreamSampler(Sampler[int]):
    """Infinite: global indices start + rank, start + rank + world, ... (DDP shards interleave)."""

    def __init__(self, start: int = 0, rank: int = 0, world: int = 1):
        self.start, self.rank, self.world = start, rank, world

    def __iter__(self) -> Iterator[int]:
        g = self.start + self.rank
        while True:
            yield g
            g += self.world


def _quiet_worker(_: int) -> None:
    """Workers ignore Ctrl-C/SIGTERM: the main process stops cleanly and then shuts them down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(dataset: PairDataset, batch_size: int, start: int, rank: int = 0, world: int = 1,
                workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """Batches of the global stream from sample index ``start`` on, this rank's share only."""
    return DataLoader(dataset, batch_size=batch_size, sampler=StreamSampler(start, rank, world),
                      num_workers=workers, pin_memory=pin_memory, worker_init_fn=_quiet_worker if workers else None,
                      prefetch_factor=4 if workers else None, persistent_workers=False)


def split_samples(files: Sequence[Path], count: int, seed: int, stream: int, size: int,
                  max_pixels: int) -> tuple[list[Path], list[np.ndarray]]:
    """Pick ``count`` readable files (seeded) for the sample grid; returns (their paths, centre crops).

    They are held out of training when the folder has at least 10x as many images.
    """
    order = np.random.default_rng([seed, 100 + stream]).permutation(len(files))
    picked, crops = [], []
    for i in order:
        if len(picked) == count:
            break
        try:
            crops.append(center_crop(files[int(i)], size, max_pixels))
            picked.append(files[int(i)])
        except BadImage:
            continue
    return picked, crops


def training_files(files: Sequence[Path], held_out: Sequence[Path]) -> list[Path]:
    """``files`` minus the sample files, when there are enough files to spare them."""
    if len(files) < 10 * max(1, len(held_out)):
        return list(files)
    out = set(held_out)
    return [f for f in files if f not in out]


class StreamData:
    """Batches of the global stream for this process: ``{"content": uint8 (B, 3, S, S), "style": ...}``, from
    sample index ``position`` on (the checkpoint keeps it: a resumed run sees the batches it would have seen)."""

    def __init__(self, cfg, dist: DistInfo, pin_memory: bool = False):
        self.cfg, self.dist, self.pin_memory = cfg, dist, pin_memory
        files = {}
        for role in ("content", "style"):
            folder = getattr(cfg, role)
            if not folder:
                raise UsageError(f"--{role} DIR is required")
            files[role] = list_images(folder)
            if not files[role]:
                raise DinstyleError(f"{folder}: no images found (jpg, png, webp, bmp, tif, ...)")
        held_c, contents = split_samples(files["content"], cfg.sample_count, cfg.seed, 0, cfg.size, cfg.max_pixels)
        held_s, styles = split_samples(files["style"], cfg.sample_count, cfg.seed, 1, cfg.size, cfg.max_pixels)
        n = min(len(contents), len(styles))
        self.samples = (contents[:n], styles[:n])
        self.dataset = PairDataset(training_files(files["content"], held_c), training_files(files["style"], held_s),
                                   cfg.size, cfg.seed, cfg.crop_scale, cfg.flip, cfg.max_pixels)
        self.info = {"content_images": len(self.dataset.content.files), "style_images": len(self.dataset.style.files)}
        self.batch_images = cfg.batch_size * dist.world
        self.position, self.batches, self.bad = 0, None, []

    def next(self) -> dict:
        if self.batches is None:  # made at the first batch: a resumed run has set the position by then
            self.batches = iter(make_loader(self.dataset, self.cfg.batch_size, self.position, self.dist.rank,
                                            self.dist.world, self.cfg.workers, pin_memory=self.pin_memory))
        try:
            content, style, bad = next(self.batches)
        except DinstyleError as e:  # raised in a worker: keep the message, drop the worker's traceback
            raise DinstyleError(str(e).strip().splitlines()[-1].split("DinstyleError: ", 1)[-1]) from None
        self.bad += [r for b in bad for r in b.split("\n") if r]
        self.position += self.batch_images
        return {"content": content, "style": style}

    def take_bad(self) -> list[str]:
        """Unusable files this process met since the last call ('kind<TAB>path<TAB>message')."""
        bad, self.bad = self.bad, []
        return bad

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])
