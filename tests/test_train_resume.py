"""Exact resume after SIGKILL, and a clean stop with a checkpoint on SIGTERM (the real CLI, in subprocesses)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from dinstyle.models import load_model_file
from dinstyle.train.checkpoint import load_checkpoint, read_log
from dinstyle.train.synthetic_data import make_image_folder

from conftest import TINY_MODEL_TOML

TOML = """
arch = "din-mobilenet-vgg"
size = 32
batch_size = 2
log_every = 1
sample_every = 0
sample_count = 2
loss_net = "random-vgg19"
lr = 1e-3
""" + TINY_MODEL_TOML


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    make_image_folder(root / "content", 8, seed=1, min_side=40, max_side=64)
    make_image_folder(root / "style", 6, seed=2, min_side=40, max_side=64)
    (root / "tiny.toml").write_text(TOML)
    return root


def _start(root, run, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "dinstyle", "train", "--config", str(root / "tiny.toml"), "--content",
           str(root / "content"), "--style", str(root / "style"), "--run", str(run), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(proc, prefix: str, timeout: float = 120.0) -> list[str]:
    """Read stderr until a line starts with ``prefix``; returns the lines read."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            return lines
    proc.kill()
    raise AssertionError(f"never saw {prefix!r}; stderr was:\n{''.join(lines)}")


def _losses(run) -> dict[int, dict]:
    return {e["step"]: e for e in read_log(run / "log.jsonl")}


def test_resume_after_sigkill_logs_the_same_losses(setup):
    steps = ["--steps", "8", "--checkpoint-every", "3"]
    reference = _start(setup, setup / "ref", *steps, "--workers", "0")
    out, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err
    assert out.strip().endswith("model.safetensors")

    killed = _start(setup, setup / "run", *steps, "--workers", "2")  # workers must not change the data
    _wait_for_line(killed, "step 5/")  # past the checkpoint at step 3
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert load_checkpoint(setup / "run")["step"] == 3
    assert max(_losses(setup / "run")) >= 5  # entries after the checkpoint exist and will be rewritten

    resumed = _start(setup, setup / "run", "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    ref, got = _losses(setup / "ref"), _losses(setup / "run")
    assert sorted(got) == sorted(ref) == list(range(1, 9))
    for step in range(4, 9):
        for term in ("loss", "content", "style", "identity"):
            assert abs(got[step][term] - ref[step][term]) <= 1e-6 * max(1.0, abs(ref[step][term])), (step, term)


def test_sigterm_stops_cleanly_with_a_checkpoint(setup):
    proc = _start(setup, setup / "term", "--steps", "500", "--checkpoint-every", "0", "--workers", "0")
    _wait_for_line(proc, "step 2/")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "stopped at step" in err and "--resume" in err
    state = load_checkpoint(setup / "term")
    assert state["step"] == max(_losses(setup / "term")) >= 2
    model = load_model_file(out.strip().splitlines()[-1])
    assert model.info["step"] == state["step"]
