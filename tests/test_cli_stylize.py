"""`dinstyle stylize` / `encode-style` / `styles` / `info` as a user runs them: exit codes, one-line errors,
batches that finish the good items, no partial files, --json, stdin/stdout."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dinstyle.cli import main
from dinstyle.models import create_model, save_model
from conftest import TINY, tiny_model_file




@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    tiny_model_file(d / "tiny.safetensors")
    save_model(create_model("din-mobilenet-vgg", **{**TINY, "widths": (8, 16, 64)}), d / "other.safetensors")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(d / "style.png")
    return d


def photo(path, w=48, h=32, seed=1, mode="RGB", **save):
    a = (np.random.default_rng(seed).random((h, w, len(mode))) * 255).astype(np.uint8)
    Image.fromarray(a, mode).save(path, **save)
    return path


def run(files, *args):
    return main(["stylize", *map(str, args), "--model", str(files / "tiny.safetensors"), "--style-size", "48"])


def test_one_file_default_name_and_overwrite(files, tmp_path, capsys):
    src = photo(tmp_path / "a.jpg")
    assert run(files, src, "--style", files / "style.png") == 0
    out = tmp_path / "a_stylized.jpg"
    assert Image.open(out).size == (48, 32) and capsys.readouterr().out.strip() == str(out)
    assert run(files, src, "--style", files / "style.png") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dinstyle: error: {out}: already exists (use --overwrite to replace it)"]
    assert run(files, src, "--style", files / "style.png", "--overwrite") == 0
    assert run(files, src, "--style", files / "style.png", "-o", src, "--overwrite") == 1
    assert "would overwrite the input" in capsys.readouterr().err


def test_batch_with_bad_inputs_finishes_the_good_ones(files, tmp_path, capsys):
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    photo(inp / "good.png")
    photo(inp / "sub" / "good2.jpg", 40, 40)
    (inp / "empty.jpg").write_bytes(b"")
    (inp / "text.jpg").write_text("not a picture")
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)).save(buf, "JPEG")
    (inp / "truncated.jpg").write_bytes(buf.getvalue()[:700])
    from test_imageio import png_header_only

    (inp / "bomb.png").write_bytes(png_header_only(100_000, 100_000))
    code = run(files, inp, tmp_path / "missing.jpg", str(tmp_path / "nothing*.png"), "--style", files / "style.png",
               "-o", tmp_path / "out", "--json")
    cap = capsys.readouterr()
    assert code == 2 and "Traceback" not in cap.err  # 2: two named inputs do not exist (usage errors)
    results = [json.loads(line) for line in cap.out.splitlines()]
    ok = sorted(r["output"] for r in results if r["ok"])
    assert ok == [str(tmp_path / "out" / "good.png"), str(tmp_path / "out" / "sub" / "good2.jpg")]
    assert all({"input", "output", "size", "style", "model", "seconds", "device"} <= r.keys() for r in results if r["ok"])
    errors = [line for line in cap.err.splitlines() if line.startswith("dinstyle: error: ")]
    for name in ("missing.jpg", "nothing*.png", "empty.jpg", "text.jpg", "truncated.jpg", "bomb.png"):
        assert sum(name in e for e in errors) == 1, (name, errors)
        assert cap.err.count(name) == 1, (name, cap.err)  # reported once: the summary does not repeat it
    assert "dinstyle: 6 of 8 failed (each reported above)" in cap.err
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["good.png", os.path.join("sub", "good2.jpg")]  # nothing partial, no temp files


@pytest.mark.parametrize("args,words", [
    (["--style-weights", "a,b"], "comma-separated numbers"), (["--style-weights", "1,2"], "2 weights for 1"),
    (["--style-weights", "0"], "not all zero"), (["--alpha", "2"], "alpha must be a number from 0 to 1"), (["--stroke-size", "0"], "stroke size must be a number from 0.25 to 4"),
    (["--tile", "8"], "tile must be an integer >= 32"), (["--dither", "-1"], "dither must be 0 (off) or a positive"), (["--stroke-map", ""], "stroke map"),
    (["--style", "nope.jpg"], "nope.jpg: no such file"), (["--style", "builtin:nope"], "no such built-in"),
    (["--mask", "nomask.png"], "nomask.png: no such file"), (["--bogus"], "unrecognized"),
    (["-o", "-", "--json"], "both need stdout")])
def test_usage_errors_exit_2_with_one_line(files, tmp_path, capsys, args, words):
    src = photo(tmp_path / "a.png")
    with pytest.raises(SystemExit) if args == ["--bogus"] else _no_raise() as e:
        code = run(files, src, "--style", files / "style.png", *args)
    code = e.value.code if args == ["--bogus"] else code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "a_stylized.png").exists()


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_rgba_keeps_alpha_and_exif_comes_out_upright(files, tmp_path):
    a = np.zeros((32, 48, 4), np.uint8)
    a[..., :3] = 120
    a[..., 3] = np.arange(48, dtype=np.uint8)[None, :] * 5
    Image.fromarray(a, "RGBA").save(tmp_path / "t.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    photo(tmp_path / "r.jpg", exif=exif.tobytes())
    assert run(files, tmp_path / "t.png", tmp_path / "r.jpg", "--style", files / "style.png", "-o", tmp_path / "o") == 0
    out = Image.open(tmp_path / "o" / "t.png")
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], a[..., 3])
    assert Image.open(tmp_path / "o" / "r.jpg").size == (32, 48)


def test_mask_of_wrong_size_fails_that_item_only(files, tmp_path, capsys):
    photo(tmp_path / "a.png", 48, 32)
    photo(tmp_path / "b.png", 32, 32)
    m = np.zeros((16, 24), np.uint8)
    m[:, 12:] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    code = run(files, tmp_path / "a.png", tmp_path / "b.png", "--style", files / "style.png", "--style",
               "builtin:irises", "--mask", tmp_path / "m.png", "-o", tmp_path / "o")
    err = capsys.readouterr().err
    assert code == 1 and (tmp_path / "o" / "a.png").exists() and not (tmp_path / "o" / "b.png").exists()
    assert f"{tmp_path / 'm.png'}: is 24x16 but the content is 32x32" in err


def test_size_batch_and_tile_options(files, tmp_path):
    for i in range(3):
        photo(tmp_path / f"p{i}.png", 96, 64, seed=i)
    style = files / "style.png"
    assert run(files, tmp_path / "p0.png", "--style", style, "--size", "48", "-o", tmp_path / "s.png") == 0
    assert Image.open(tmp_path / "s.png").size == (48, 32)
    assert run(files, tmp_path / "p0.png", "--style", style, "--max-size", "200", "-o", tmp_path / "m.png") == 0
    assert Image.open(tmp_path / "m.png").size == (96, 64)
    srcs = [tmp_path / f"p{i}.png" for i in range(3)]
    assert run(files, *srcs, "--style", style, "-o", tmp_path / "b1") == 0
    assert run(files, *srcs, "--style", style, "-o", tmp_path / "b2", "--batch-size", "2") == 0
    assert run(files, *srcs, "--style", style, "-o", tmp_path / "t", "--tile", "64") == 0
    for i in range(3):
        ref = np.asarray(Image.open(tmp_path / "b1" / f"p{i}.png")).astype(int)
        assert np.abs(np.asarray(Image.open(tmp_path / "b2" / f"p{i}.png")).astype(int) - ref).max() <= 1
        assert np.abs(np.asarray(Image.open(tmp_path / "t" / f"p{i}.png")).astype(int) - ref).max() <= 1


def test_encode_style_and_reuse(files, tmp_path, capsys):
    photo(tmp_path / "a.png")
    code = tmp_path / "s.safetensors"
    assert main(["encode-style", str(files / "style.png"), "-o", str(code), "--style-size", "48",
                 "--model", str(files / "tiny.safetensors")]) == 0
    assert main(["encode-style", str(files / "style.png"), "-o", str(code)]) == 1  # exists
    assert run(files, tmp_path / "a.png", "--style", files / "style.png", "-o", tmp_path / "i.png") == 0
    capsys.readouterr()
    assert main(["stylize", str(tmp_path / "a.png"), "--style", str(code), "-o", str(tmp_path / "c.png"),
                 "--model", str(files / "tiny.safetensors")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png")), np.asarray(Image.open(tmp_path / "i.png")))
    assert main(["stylize", str(tmp_path / "a.png"), "--style", str(code), "-o", str(tmp_path / "x.png"),
                 "--model", str(files / "other.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "style code is for another din-mobilenet-vgg configuration" in err


def test_styles_and_info(capsys):
    assert main(["styles"]) == 0
    out = capsys.readouterr().out
    assert "irises" in out and "Vincent van Gogh" in out and len(out.strip().splitlines()) >= 11
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["versions"]["torch"] == torch.__version__ and any(m["default"] for m in info["models"])


def test_stdin_to_stdout_in_a_real_process(files, tmp_path):
    data = photo(tmp_path / "a.png").read_bytes()
    cmd = [sys.executable, "-m", "dinstyle", "stylize", "-", "--style", str(files / "style.png"), "--model",
           str(files / "tiny.safetensors"), "--style-size", "48", "-o", "-", "--format", "jpg"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, input=data, capture_output=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr.decode()
    assert Image.open(io.BytesIO(p.stdout)).format == "JPEG"
    p = subprocess.run(cmd, input=b"garbage", capture_output=True, timeout=120, env=env)
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode().strip() == "dinstyle: error: <stdin>: not an image, or a format Pillow cannot read"


def test_every_control_flag_changes_the_output(files, tmp_path):
    src = photo(tmp_path / "a.png", 64, 48)
    m = np.zeros((48, 64), np.uint8)
    m[:, 32:] = 9
    Image.fromarray(m).save(tmp_path / "mask.png")
    Image.fromarray(np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))).save(tmp_path / "strokes.png")
    style, irises = files / "style.png", "builtin:irises"
    variants = {"base": [], "alpha": ["--alpha", "0.5"], "blend": ["--style", irises, "--style-weights", "1,1"],
                "preserve": ["--preserve-color"], "mask": ["--style", irises, "--mask", tmp_path / "mask.png"],
                "stroke": ["--stroke-size", "2"], "dither": ["--dither", "0"], "strokemap": ["--stroke-map", tmp_path / "strokes.png"],
                "alpha0": ["--alpha", "0"], "alpha0b": ["--alpha", "0", "--style-size", "64"],
                "w10": ["--style", irises, "--style-weights", "1,0"]}
    out = {}
    for name, extra in variants.items():
        assert run(files, src, "--style", style, *extra, "-o", tmp_path / f"out_{name}.png") == 0, name
        out[name] = np.asarray(Image.open(tmp_path / f"out_{name}.png")).astype(int)
    for name in ("alpha", "blend", "preserve", "mask", "stroke", "strokemap", "alpha0", "dither"):
        assert np.abs(out[name] - out["base"]).mean() > 0.5, name
    assert np.array_equal(out["alpha0"], out["alpha0b"])  # alpha 0: the style no longer matters
    assert np.array_equal(out["w10"], out["base"])  # weights 1,0: the first style alone


def test_seed_device_and_pixel_limits(files, tmp_path, capsys):
    src = photo(tmp_path / "a.png")
    base = ["stylize", str(src), "--style", str(files / "style.png"), "--style-size", "48", "--overwrite",
            "--model", "din-mobilenet-vgg"]
    for seed, name in (("1", "s1"), ("1", "s1b"), ("2", "s2")):  # an untrained architecture: the seed picks it
        assert main([*base, "--seed", seed, "-o", str(tmp_path / f"{name}.png")]) == 0
    assert "UNTRAINED" in capsys.readouterr().err
    s1, s1b, s2 = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("s1", "s1b", "s2"))
    assert np.array_equal(s1, s1b) and not np.array_equal(s1, s2)
    big = photo(tmp_path / "big.png", 64, 48)
    assert run(files, big, "--style", files / "style.png", "--max-pixels", "2000", "-o", tmp_path / "x.png") == 1
    assert "big.png: 64x48 = 3,072 pixels, over the limit of 2,000" in capsys.readouterr().err
    assert run(files, src, "--style", files / "style.png", "--max-pixels-untiled", "100", "--device", "cpu",
               "--no-half", "-o", tmp_path / "t.png") == 0
    if not torch.cuda.is_available():
        assert run(files, src, "--style", files / "style.png", "--device", "cuda", "-o", tmp_path / "c.png") == 2
        assert "no CUDA GPU is available" in capsys.readouterr().err
