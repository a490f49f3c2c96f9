"""Two-process DDP on CPU (gloo) through torchrun: one set of files, a loadable model, and the same
global batches as one process with twice the batch."""
import os
import subprocess
import sys

import pytest

from dinstyle.models import load_model_file
from dinstyle.train.checkpoint import load_checkpoint, read_log
from dinstyle.train.synthetic_data import make_image_folder

from conftest import TINY_MODEL_TOML

TOML = """
arch = "din-mobilenet-vgg"
size = 32
steps = 3
log_every = 1
checkpoint_every = 2
sample_every = 2
sample_count = 2
workers = 0
loss_net = "random-vgg19"
lr = 1e-3
""" + TINY_MODEL_TOML


def _train(root, run, batch, launcher):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["-m", "dinstyle", "train", "--config", str(root / "tiny.toml"), "--content", str(root / "content"),
            "--style", str(root / "style"), "--run-dir", str(run), "--batch-size", str(batch)]
    return subprocess.run([sys.executable, *launcher, *args], env=env, capture_output=True, text=True, timeout=300)


def test_two_process_ddp_run(tmp_path):
    make_image_folder(tmp_path / "content", 8, seed=1, min_side=40, max_side=64)
    make_image_folder(tmp_path / "style", 6, seed=2, min_side=40, max_side=64)
    (tmp_path / "tiny.toml").write_text(TOML)
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    ddp = _train(tmp_path, tmp_path / "ddp", 2, torchrun)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    run = tmp_path / "ddp"
    printed = [line for line in ddp.stdout.splitlines() if line.endswith("model.safetensors")]
    assert printed == [str(run / "model.safetensors")]  # only rank 0 speaks
    log = read_log(run / "log.jsonl")
    assert [e["step"] for e in log] == [1, 2, 3]  # one writer: no duplicated entries
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000002.png", "step-00000003.png"]
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "checkpoints", "config.toml", "log.jsonl",
                                                     "loss.png", "model-fp16.safetensors", "model.safetensors", "samples"]
    state = load_checkpoint(run)
    assert state["world_size"] == 2 and state["data"]["position"] == 3 * 2 * 2
    model = load_model_file(run / "model.safetensors")
    assert model.info["batch_size"] == 4 and model.info["step"] == 3

    # Ranks shard one global stream and gradients are averaged: same losses as 1 process x batch 4.
    single = _train(tmp_path, tmp_path / "single", 4, [])
    assert single.returncode == 0, single.stderr[-3000:]
    ref = read_log(tmp_path / "single" / "log.jsonl")
    # Step 1: same weights and samples, so only float summation order differs (loss and averaged gradient).
    assert log[0]["loss"] == pytest.approx(ref[0]["loss"], rel=1e-5)
    assert log[0]["grad_norm"] == pytest.approx(ref[0]["grad_norm"], rel=1e-4)
    # Later steps: Adam turns rounding-level gradient differences into lr-sized steps; they stay close.
    for a, b in zip(log[1:], ref[1:]):
        assert a["loss"] == pytest.approx(b["loss"], rel=3e-2), a["step"]
