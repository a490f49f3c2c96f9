"""What a run tells its user: progress bar (or plain lines off a terminal), log.jsonl, skipped files."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from tqdm import tqdm

SKIPPED_LIST = "skipped_files.txt"


def _fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


class Progress:
    """tqdm bar on a terminal, a plain line per logged step otherwise; silent on non-main processes."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not self.tty)
        self.total = total

    def update(self, terms: dict[str, float], images_per_s: float) -> None:
        if self.tty:
            self.bar.set_postfix({k: _fmt(v) for k, v in terms.items()} | {"img/s": f"{images_per_s:.1f}"},
                                 refresh=False)
            self.bar.update(1)

    def line(self, step: int, terms: dict[str, float], lr: float, images_per_s: float) -> None:
        if self.enabled and not self.tty:
            parts = " ".join(f"{k} {_fmt(v)}" for k, v in terms.items())
            print(f"step {step}/{self.total} {parts} lr {lr:.3g} {images_per_s:.1f} img/s", file=sys.stderr, flush=True)

    def say(self, message: str) -> None:
        """A message that does not break the bar."""
        if self.enabled:
            (self.bar.write if self.tty else lambda m: print(m, file=sys.stderr, flush=True))(message)

    def close(self) -> None:
        self.bar.close()


class LogWriter:
    """Appends one JSON object per logged step to log.jsonl (non-finite numbers become null)."""

    def __init__(self, path: Path | None):
        self.file = open(path, "a", encoding="utf-8") if path is not None else None

    def write(self, entry: dict) -> None:
        if self.file is None:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()}
        self.file.write(json.dumps(clean) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class SkippedFiles:
    """Unusable files seen by the loader: warned about once, counted in the log, listed at the end."""

    def __init__(self, known: dict[str, str] | None = None):
        self.files: dict[str, str] = dict(known or {})
        self.warned = bool(self.files)

    def add(self, records: list[str], say) -> None:
        """``records`` are 'kind<TAB>path<TAB>message' lines from the dataset."""
        for rec in records:
            kind, path, message = (rec.split("\t", 2) + ["", ""])[:3]
            if path and path not in self.files:
                self.files[path] = kind
                if not self.warned:
                    self.warned = True
                    say(f"dinstyle: warning: skipping {kind} image ({message}); further skips are only "
                        f"counted ('skipped_files' in log.jsonl, list in {SKIPPED_LIST})")

    def write(self, run_dir: Path) -> None:
        if self.files:
            (run_dir / SKIPPED_LIST).write_text("".join(f"{k}\t{p}\n" for p, k in sorted(self.files.items())),
                                                encoding="utf-8")


class Throughput:
    """Images per second since the previous call."""

    def __init__(self):
        self.t, self.images = time.perf_counter(), 0

    def add(self, n: int) -> None:
        self.images += n

    def rate(self, reset: bool = False) -> float:
        now = time.perf_counter()
        r = self.images / max(now - self.t, 1e-9)
        if reset:
            self.t, self.images = now, 0
        return r
