"""Issue 23, the command line: export never replaces its own model, SIGTERM cleans up like Ctrl-C, option
ranges, no image bytes on a terminal, missing inputs are usage errors, each bad item reported once."""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dinstyle
from dinstyle.cli import main
from conftest import tiny_model_file

SRC = str(Path(dinstyle.__file__).resolve().parents[1])
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": SRC}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hard")
    tiny_model_file(d / "tiny.safetensors")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(d / "style.png")
    Image.fromarray((rng.random((32, 48, 3)) * 255).astype(np.uint8)).save(d / "photo.png")
    return d


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dinstyle: error: ") and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ item 3: export and its own model
@pytest.mark.parametrize("name", ["content.onnx", "style_encoder.onnx", "manifest.json", "content.int8.onnx"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_export_never_replaces_its_model(files, tmp_path, capsys, name, overwrite):
    out = tmp_path / "exported"
    out.mkdir()
    model = out / name  # the model file sits in -o DIR under a name the export writes (or deletes)
    model.write_bytes((files / "tiny.safetensors").read_bytes())
    before = model.read_bytes()
    code = main(["export", "onnx", "--model", str(model), "-o", str(out), "--no-check",
                 *(["--overwrite"] if overwrite else [])])
    line = _one_line_error(capsys.readouterr().err)
    assert code == 2 and f"would overwrite {model}, an input of this run" in line, line
    assert "--overwrite" not in line  # it would not help: the message must not suggest it
    assert model.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [name]


def test_export_api_knows_its_models_file(files, tmp_path):
    from dinstyle.errors import UsageError
    from dinstyle.export import export_onnx
    from dinstyle.models import load_model

    out = tmp_path / "exported"
    out.mkdir()
    (out / "manifest.json").write_bytes((files / "tiny.safetensors").read_bytes())
    with pytest.raises(UsageError, match="an input of this run"):  # no inputs= given: model.info["file"] counts
        export_onnx(load_model(str(out / "manifest.json")), out, check=False, overwrite=True)
    assert (out / "manifest.json").read_bytes() == (files / "tiny.safetensors").read_bytes()


def test_export_refuses_a_hard_link_to_its_model(files, tmp_path, capsys):
    out = tmp_path / "exported"
    out.mkdir()
    os.link(files / "tiny.safetensors", out / "content.onnx")
    assert main(["export", "onnx", "--model", str(files / "tiny.safetensors"), "-o", str(out), "--overwrite"]) == 2
    assert "an input of this run" in _one_line_error(capsys.readouterr().err)


# ------------------------------------------------------------------ item 9: SIGTERM like Ctrl-C
# The batch's writer is held while its temporary file exists (a marker says so), then the test sends SIGTERM:
# the signal always lands mid-write, so without the handler the hidden temporary file would stay.
HOLD_WRITE = """
import os, sys, time
import {module} as m
real, n = m.encode_image, [0]
def held(im, dest, *a, **k):
    real(im, dest, *a, **k)
    n[0] += 1
    if n[0] == 2:  # the second image: one output is already written
        open(os.environ["MARKER"], "w").close()
        time.sleep(60)
m.encode_image = held
from {main_module} import main
sys.exit(main(sys.argv[1:]))
"""


def _run_until_marker(tmp_path: Path, module: str, main_module: str, args: list[str]):
    marker = tmp_path / "writing"
    script = HOLD_WRITE.format(module=module, main_module=main_module)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**ENV, "MARKER": str(marker)})
    for _ in range(1200):  # up to 120 s on a busy machine; the marker comes as soon as the 2nd image is encoded
        if marker.exists() or proc.poll() is not None:
            break
        try:
            proc.wait(0.1)
        except subprocess.TimeoutExpired:
            pass
    assert marker.exists(), proc.communicate()[1].decode()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode()


def _batch_inputs(tmp_path: Path, files: Path) -> Path:
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(3):
        Image.open(files / "photo.png").save(inp / f"p{i}.png")
    return inp


def test_sigterm_during_an_image_batch_leaves_no_temporary_file(files, tmp_path):
    inp, out = _batch_inputs(tmp_path, files), tmp_path / "out"
    code, err = _run_until_marker(tmp_path, "dinstyle.io.images", "dinstyle.cli", [
        "stylize", str(inp), "-o", str(out), "--model", str(files / "tiny.safetensors"), "--style",
        str(files / "style.png"), "--style-size", "48", "--quiet"])
    assert code in (130, 143), err
    assert err.strip().splitlines()[-1] == "dinstyle: error: interrupted"
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]  # the finished one; no hidden .p1.png.*.tmp


def test_sigterm_during_a_lite_batch_leaves_no_temporary_file(files, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    onnx_dir, inp, out = tmp_path / "onnx", _batch_inputs(tmp_path, files), tmp_path / "out"
    assert main(["export", "onnx", "--model", str(files / "tiny.safetensors"), "-o", str(onnx_dir),
                 "--no-check", "--style-size", "64"]) == 0
    code, err = _run_until_marker(tmp_path, "dinstyle.lite.images", "dinstyle.lite.__main__", [
        "--model-dir", str(onnx_dir), "--style", str(files / "style.png"), *map(str, sorted(inp.iterdir())),
        "-o", str(out)])
    assert code in (130, 143), err
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]


def test_sigterm_handler_is_put_back_after_main(files, capsys):
    before = signal.getsignal(signal.SIGTERM)
    main(["styles"])
    assert signal.getsignal(signal.SIGTERM) is before


# ------------------------------------------------------------------ item 11: video --cut-threshold
@pytest.mark.parametrize("value", ["nan", "-1", "5", "inf", "-0.01"])
def test_video_cut_threshold_out_of_range_is_a_usage_error(files, tmp_path, capsys, value):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read: the option is checked first")
    code = main(["video", str(clip), "--style", str(files / "style.png"), "--model", str(files / "tiny.safetensors"),
                 f"--cut-threshold={value}"])
    assert code == 2 and "cut threshold must be a number from 0 to 1" in _one_line_error(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize("value", ["0", "1", "0.3"])
def test_video_cut_threshold_in_range_is_accepted(files, tmp_path, capsys, value):
    clip = tmp_path / "clip.mp4"
    clip.write_text("not a video")  # gets past the option checks, then fails where videos are read
    code = main(["video", str(clip), "--style", str(files / "style.png"), "--model", str(files / "tiny.safetensors"),
                 "--cut-threshold", value, "--quiet"])
    line = _one_line_error(capsys.readouterr().err)
    assert code == 1 and "cut-threshold" not in line and "not a readable video" in line, line


# ------------------------------------------------------------------ item 14: messages and exit codes
def test_stdout_several_inputs_does_not_talk_about_stdin(files, capsys):
    code = main(["stylize", str(files / "photo.png"), str(files / "style.png"), "-o", "-", "--style",
                 str(files / "style.png"), "--model", str(files / "tiny.safetensors")])
    line = _one_line_error(capsys.readouterr().err)
    assert code == 2 and "-o - (stdout)" in line and "stdin" not in line, line


@pytest.mark.parametrize("how", [["-o", "-"], ["-"]])  # -o -, and stdin without -o (which goes to stdout)
def test_image_bytes_are_not_written_to_a_terminal(files, how):
    master, slave = pty.openpty()
    try:
        cmd = [sys.executable, "-m", "dinstyle", "stylize", *(how if how == ["-"] else [str(files / "photo.png"),
               *how]), "--style", str(files / "style.png"), "--model", str(files / "tiny.safetensors")]
        with open(files / "photo.png", "rb") as stdin:
            p = subprocess.run(cmd, stdin=stdin, stdout=slave, stderr=subprocess.PIPE, env=ENV, timeout=120)
        written = os.read(master, 65536) if select.select([master], [], [], 0.2)[0] else b""
    finally:
        os.close(master)
        os.close(slave)
    line = _one_line_error(p.stderr.decode())
    assert p.returncode == 2 and "terminal" in line and written == b"", (line, written[:40])


@pytest.mark.parametrize("missing", ["photo", "style"])
def test_missing_photo_and_missing_style_both_exit_2(files, tmp_path, capsys, missing):
    photo = tmp_path / "nope.png" if missing == "photo" else files / "photo.png"
    style = tmp_path / "nope.png" if missing == "style" else files / "style.png"
    code = main(["stylize", str(photo), "--style", str(style), "--model", str(files / "tiny.safetensors"),
                 "-o", str(tmp_path / "out.png")])
    assert code == 2 and "nope.png: no such file" in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("missing", ["video", "style"])
def test_video_missing_input_or_style_exits_2(files, tmp_path, capsys, missing):
    clip = tmp_path / ("nope.mp4" if missing == "video" else "clip.mp4")
    if missing != "video":
        clip.write_text("never read")
    style = tmp_path / "nope.png" if missing == "style" else files / "style.png"
    code = main(["video", str(clip), "--style", str(style), "--model", str(files / "tiny.safetensors")])
    assert code == 2 and "no such file" in _one_line_error(capsys.readouterr().err)


def test_lite_missing_content_or_style_exits_2(files, tmp_path, capsys):
    from dinstyle.lite.__main__ import main as lite_main

    d = str(tmp_path / "no-export-needed")  # a missing file is refused before the model directory is read
    assert lite_main(["--model-dir", d, "--style", str(tmp_path / "nope.png"), str(files / "photo.png")]) == 2
    assert "nope.png: no such file" in capsys.readouterr().err
    assert lite_main(["--model-dir", d, "--style", str(files / "style.png"), str(tmp_path / "gone.png"),
                      "-o", str(tmp_path / "o.png")]) == 2
    assert "gone.png: no such file" in capsys.readouterr().err
