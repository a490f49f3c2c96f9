"""Shared helpers of the benchmark scripts: machine description, Markdown tables, statistics."""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys


def cpu_model() -> str:
    """The CPU's model name (lscpu, else /proc/cpuinfo, else platform)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(*modules: str) -> str:
    parts = []
    for name in modules:
        try:
            parts.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def header(title: str, *modules: str) -> str:
    """Markdown preamble: what ran, where, when, with which command."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return "\n".join([
        f"## {title}", "",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical cores, load average before the run {load}",
        f"- software: Python {platform.python_version()}, {versions(*modules)}",
        f"- command: `python {' '.join(shlex.quote(a) for a in sys.argv)}`", ""])


def markdown_table(columns: list[tuple[str, str]], rows: list[dict]) -> str:
    """columns: (header, key) pairs; a header starting with '>' is right-aligned."""
    heads = [h.lstrip(">") for h, _ in columns]
    align = ["---:" if h.startswith(">") else "---" for h, _ in columns]
    lines = ["| " + " | ".join(heads) + " |", "| " + " | ".join(align) + " |"]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "")) for _, k in columns) + " |")
    return "\n".join(lines)


def median_ms(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1000.0, 2)


def iqr_ms(seconds: list[float]) -> str:
    if len(seconds) < 4:
        return f"{min(seconds) * 1000:.0f}-{max(seconds) * 1000:.0f}"
    q = statistics.quantiles(seconds, n=4)
    return f"{q[0] * 1000:.0f}-{q[2] * 1000:.0f}"


def parse_list(text: str, what: str, cast=int) -> list:
    try:
        values = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"error: {what} must be a comma-separated list, got {text!r}") from None
    if not values:
        raise SystemExit(f"error: {what} is empty")
    return values
