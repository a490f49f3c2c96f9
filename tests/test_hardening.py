"""Issue 14, hardening: never destroy a user's file, never corrupt a stream. One test (or more) per finding,
each failing before its fix; tiny images and the tiny model only."""
from __future__ import annotations

import hashlib
import io
import json
import struct
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from dinstyle.cli import main
from dinstyle.errors import DinstyleError
from dinstyle.models.stylecode import StyleCode, blend

from conftest import TINY, TINY_MODEL_TOML, tiny_model_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hard")
    tiny_model_file(d / "tiny.safetensors")
    photo(d / "style.png", 40, 40, seed=9)
    photo(d / "style2.png", 40, 40, seed=10)
    return d


def photo(path, w=48, h=32, seed=1):
    a = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    Image.fromarray(a).save(path)
    return Path(path)


def digest(*paths) -> dict:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def run(files, *args) -> int:
    return main(["stylize", *map(str, args), "--model", str(files / "tiny.safetensors"), "--style-size", "48",
                 "--quiet"])


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("dinstyle: error: ")]


def resave(src: Path, dst: Path, tensors=None, **meta) -> Path:
    """Copy a safetensors file with some tensors and metadata values replaced (None removes a key)."""
    with safe_open(str(src), framework="pt") as f:
        old = {k: f.get_tensor(k) for k in f.keys()}
        md = dict(f.metadata())
    md.update({k: v for k, v in meta.items() if v is not None})
    for k in [k for k, v in meta.items() if v is None]:
        md.pop(k, None)
    save_file({**old, **(tensors or {})}, str(dst), metadata=md)
    return dst


# ------------------------------------------------------------------------------- 1. --overwrite and inputs
def test_overwrite_never_replaces_any_input_of_the_run(files, tmp_path, capsys):
    a_png, a_jpg = photo(tmp_path / "a.png"), photo(tmp_path / "a.jpg", seed=2)
    p, p_out = photo(tmp_path / "p.png", seed=3), photo(tmp_path / "p_stylized.png", seed=4)
    c, s2 = photo(tmp_path / "c.png", seed=5), photo(tmp_path / "s2.png", 40, 40, seed=6)
    strokes = tmp_path / "strokes.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 48).astype(np.uint8), (32, 1))).save(strokes)
    before = digest(a_png, a_jpg, p, p_out, c, s2, strokes, files / "tiny.safetensors")

    # a.jpg would land on a.png (another item's input): both refused, one line each
    assert run(files, a_png, a_jpg, "-o", tmp_path, "--format", "png", "--overwrite", "--style", files / "style.png") == 1
    err = errors(capsys.readouterr().err)
    assert len(err) == 2 and all("would overwrite" in e for e in err), err
    # p.png's default output p_stylized.png is itself an input: refused before it is read; p_stylized.png runs
    assert run(files, p, p_out, "--overwrite", "--style", files / "style.png") == 1
    err = errors(capsys.readouterr().err)
    assert len(err) == 1 and "p_stylized.png, an input of this run" in err[0]
    assert (tmp_path / "p_stylized_stylized.png").is_file()
    # a style image, a stroke map: never outputs
    assert run(files, c, "--style", s2, "-o", s2, "--overwrite") == 1
    assert run(files, c, "--style", s2, "--stroke-map", strokes, "-o", strokes, "--overwrite") == 1
    assert "would overwrite" in capsys.readouterr().err
    assert digest(a_png, a_jpg, p, p_out, c, s2, strokes, files / "tiny.safetensors") == before


def test_two_items_never_share_an_output(files, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    photo(tmp_path / "x" / "a.png")
    photo(tmp_path / "y" / "a.jpg", seed=2)
    photo(tmp_path / "b.png", seed=3)
    out = tmp_path / "out"
    code = run(files, tmp_path / "x" / "a.png", tmp_path / "y" / "a.jpg", tmp_path / "b.png", "-o", out, "--format",
               "png", "--style", files / "style.png")
    err = errors(capsys.readouterr().err)
    assert code == 1 and len(err) == 2 and all("is also the output of" in e for e in err), err
    assert sorted(p.name for p in out.iterdir()) == ["b.png"]  # neither a is written, the rest is


def test_lite_refuses_outputs_that_are_inputs_before_loading_anything(tmp_path, capsys):
    from dinstyle.lite.__main__ import main as lite_main

    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    xa, ya, s = photo(tmp_path / "x" / "a.png"), photo(tmp_path / "y" / "a.jpg", seed=2), photo(tmp_path / "s.png")
    before = digest(xa, ya, s)
    model_dir = str(tmp_path / "no-model")  # never opened: every item is refused first
    assert lite_main(["--model-dir", model_dir, "--style", str(s), str(xa), "-o", str(s), "--overwrite"]) == 1
    assert "would overwrite" in capsys.readouterr().err
    assert lite_main(["--model-dir", model_dir, "--style", str(s), str(xa), str(ya), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("is also the output of") == 2 and "Traceback" not in err
    assert digest(xa, ya, s) == before and not (tmp_path / "o" / "a.png").exists()


# ------------------------------------------------------------------------------- 2. stdout is the image only
def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_stdout_carries_the_image_and_nothing_else(files, tmp_path, monkeypatch, capsysbinary):
    data = photo(tmp_path / "c.png").read_bytes()
    _stdin(monkeypatch, data)
    assert run(files, "-", "--style", "builtin:irises", "--json") == 2
    cap = capsysbinary.readouterr()
    assert cap.out == b"" and b"both need stdout" in cap.err
    photo(tmp_path / "b.png", seed=2)
    _stdin(monkeypatch, data)
    assert run(files, "-", tmp_path / "b.png", "--style", "builtin:irises") == 2  # b's name would go to stdout
    assert capsysbinary.readouterr().out == b"" and not (tmp_path / "b_stylized.png").exists()
    _stdin(monkeypatch, data)
    assert run(files, "-", "--style", "builtin:irises") == 0
    out = capsysbinary.readouterr().out
    im = Image.open(io.BytesIO(out))
    im.load()
    assert im.format == "PNG" and im.size == (48, 32) and out.endswith(b"IEND\xaeB`\x82")  # nothing after it


# ------------------------------------------------------------------------------- 3. video: guard and tiles
def _clip(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=24)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        for f in frames:
            out.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(v.encode(None))
    return path


def test_video_frames_get_the_pixel_guard(files, tmp_path, capsys):
    clip = _clip(tmp_path / "big.mp4", [np.full((48, 64, 3), 128, np.uint8)] * 2)
    code = main(["video", str(clip), "-o", str(tmp_path / "o.mp4"), "--style", str(files / "style.png"), "--model",
                 str(files / "tiny.safetensors"), "--quiet", "--max-pixels", "1000"])
    err = capsys.readouterr().err
    assert code == 1 and "64x48 = 3,072 pixels, over the limit of 1,000" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()


def test_video_frames_are_tiled_above_the_untiled_limit(files, monkeypatch):
    from dinstyle.api import Stylizer
    from dinstyle.runtime import runner as stylize_run
    from dinstyle.video import stylize_frames

    st = Stylizer.from_pretrained(str(files / "tiny.safetensors"), device="cpu")
    rng = np.random.default_rng(0)
    base = (rng.random((150, 210, 3)) * 255).astype(np.uint8)
    frames = [base, np.roll(base, 2, axis=1), np.roll(base, 4, axis=1)]
    ref = list(stylize_frames(st, frames, files / "style.png", temporal=0.5, style_size=48))
    calls = []
    real = stylize_run.stylize_tiled
    monkeypatch.setattr(stylize_run, "stylize_tiled", lambda m, x, req, **k: calls.append(req.tile) or real(m, x, req, **k))
    tiled = list(stylize_frames(st, frames, files / "style.png", temporal=0.5, style_size=48,
                                max_pixels_untiled=10_000))
    assert calls and all(t < 210 for t in calls)  # several tiles per frame
    for r, t in zip(ref, tiled):  # whole-frame statistics, smoothed over time, as untiled
        assert np.abs(r.astype(int) - t.astype(int)).max() <= 2


# ------------------------------------------------------------------------------- 4. Pillow's global guard
def test_pixel_guard_never_touches_pillows_global_limit(tmp_path, monkeypatch):
    from dinstyle.io.images import load_image

    seen = []

    class Spy(io.BytesIO):
        def read(self, *a):
            seen.append(Image.MAX_IMAGE_PIXELS)
            return super().read(*a)

    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (1, 2, 3)).save(buf, "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow's limit far below the image (a thread's view)
    with _no_warnings():
        im = load_image(Spy(buf.getvalue()), max_pixels=10_000)  # ours allows it: our guard alone applies
    assert im.size == (40, 40) and seen and set(seen) == {100}  # never None, not even for a moment
    with pytest.raises(DinstyleError, match="over the limit of 1,000"):
        load_image(Spy(buf.getvalue()), max_pixels=1000)


class _no_warnings:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.caught = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        assert not [w for w in self.caught if issubclass(w.category, Image.DecompressionBombWarning)]
        return False


def test_concurrent_decodes_keep_the_global_limit(tmp_path):
    from dinstyle.io.images import load_image

    Image.new("RGB", (64, 64)).save(tmp_path / "x.png")
    start = Image.MAX_IMAGE_PIXELS
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.add(Image.MAX_IMAGE_PIXELS)

    t = threading.Thread(target=watch)
    t.start()
    try:
        for _ in range(200):
            load_image(tmp_path / "x.png")
    finally:
        stop.set()
        t.join()
    assert seen == {start}


# ------------------------------------------------------------------------------- 5. one file, one line
def test_an_encoder_refusal_fails_that_item_only(files, tmp_path, capsys):
    inp = tmp_path / "in"
    inp.mkdir()
    photo(inp / "a_wide.png", 16400, 1, seed=1)  # over WebP's 16383-pixel limit
    photo(inp / "b.png", seed=2)
    assert run(files, inp, "-o", tmp_path / "w", "--format", "webp", "--style", files / "style.png") == 1
    err = errors(capsys.readouterr().err)
    assert len(err) == 1 and "a_wide.webp: cannot write as WEBP" in err[0] and "internal error" not in err[0]
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["b.webp"]  # the rest is written, nothing partial
    photo(inp / "a_wide.png", 300, 1, seed=1)  # ICO: icons are at most 256 px
    assert run(files, inp, "-o", tmp_path / "i", "--format", "ico", "--style", files / "style.png") == 1
    err = errors(capsys.readouterr().err)
    assert len(err) == 1 and "a_wide.ico: cannot write as ICO" in err[0]
    assert sorted(p.name for p in (tmp_path / "i").iterdir()) == ["b.ico"]


def test_lite_save_refusal_is_one_line(tmp_path):
    from dinstyle.lite import save_rgb

    with pytest.raises(DinstyleError, match="cannot write as WEBP"):
        save_rgb(np.zeros((1, 16400, 3), np.float32), tmp_path / "x.webp")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- 6. non-finite numbers
def test_non_finite_style_weights_are_refused_and_huge_ones_blend_evenly(files, tmp_path, capsys):
    src = photo(tmp_path / "a.png")
    two = ["--style", files / "style.png", "--style", files / "style2.png"]
    assert run(files, src, *two, "--style-weights", "inf,1", "-o", tmp_path / "x.png") == 2
    assert "finite" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    assert run(files, src, *two, "--style-weights", "nan,1", "-o", tmp_path / "x.png") == 2
    assert run(files, src, *two, "--style-weights", "1e308,1e308", "-o", tmp_path / "huge.png") == 0
    assert run(files, src, *two, "--style-weights", "1,1", "-o", tmp_path / "even.png") == 0
    huge, even = (np.asarray(Image.open(tmp_path / n)) for n in ("huge.png", "even.png"))
    assert np.array_equal(huge, even) and even.max() > 0
    from dinstyle.models.stylecode import normalized_weights

    assert normalized_weights([1e308, 1e308], 2) == [0.5, 0.5]
    a = StyleCode({"l.weight": torch.ones(1, 2), "l.bias": torch.ones(1, 2)})
    assert torch.equal(blend([a, a], [1e308, 1e308])["l.weight"], a["l.weight"])
    with pytest.raises(ValueError, match="finite"):
        blend([a, a], [float("inf"), 1.0])


def _code(files, tmp_path) -> Path:
    path = tmp_path / "code.safetensors"
    assert main(["encode-style", str(files / "style.png"), "-o", str(path), "--style-size", "48", "--model",
                 str(files / "tiny.safetensors")]) == 0
    return path


@pytest.mark.parametrize("value", [float("nan"), 1e30])
def test_style_codes_and_model_files_with_extreme_values_paint_nothing(files, tmp_path, capsys, value):
    src = photo(tmp_path / "a.png")
    code = _code(files, tmp_path)
    with safe_open(str(code), framework="pt") as f:
        key = next(k for k in f.keys() if k.endswith(".weight"))
        bad_w = f.get_tensor(key).clone()
    bad_w.view(-1)[0] = value
    bad_code = resave(code, tmp_path / "bad_code.safetensors", {key: bad_w})
    capsys.readouterr()
    rc = main(["stylize", str(src), "--style", str(bad_code), "--model", str(files / "tiny.safetensors"),
               "-o", str(tmp_path / "o1.png")])
    err = capsys.readouterr().err
    assert rc == 2 and len(errors(err)) == 1 and "bad_code.safetensors" in err and "NaN" in err, err
    assert not (tmp_path / "o1.png").exists()

    with safe_open(str(files / "tiny.safetensors"), framework="pt") as f:
        weights = {k: f.get_tensor(k) for k in f.keys()}
    k = "encoder.0.conv.weight"  # the content path: a finite 1e30 there still paints (almost) black
    weights[k] = weights[k].clone()
    weights[k].view(-1)[:] = value
    bad_model = resave(files / "tiny.safetensors", tmp_path / "bad_model.safetensors", {k: weights[k]})
    rc = main(["stylize", str(src), "--style", str(files / "style.png"), "--style-size", "48",
               "--model", str(bad_model), "-o", str(tmp_path / "o2.png")])
    err = capsys.readouterr().err
    assert rc in (1, 2) and len(errors(err)) == 1 and "internal error" not in err, err
    assert "bad_model.safetensors" in err and "NaN" in err and not (tmp_path / "o2.png").exists()


# ------------------------------------------------------------------------------- 7. malformed files
def test_style_code_with_batch_0_or_2_is_one_line(files, tmp_path, capsys):
    code = _code(files, tmp_path)
    with safe_open(str(code), framework="pt") as f:
        t = {k: f.get_tensor(k) for k in f.keys()}
    src = photo(tmp_path / "a.png")
    for n, tensors in {"0": {k: v[:0] for k, v in t.items()}, "2": {k: torch.cat([v, v]) for k, v in t.items()}}.items():
        bad = resave(code, tmp_path / f"b{n}.safetensors", tensors)
        capsys.readouterr()
        assert main(["stylize", str(src), "--style", str(bad), "--model", str(files / "tiny.safetensors"),
                     "-o", str(tmp_path / f"o{n}.png")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"b{n}.safetensors" in err and "one style" in err, err


@pytest.mark.parametrize("meta,words", [({"config": '"widths"'}, "'config' must be a table"),
                                        ({"config": json.dumps({**TINY, "widths": [8, 16, 32], "bogus": 1})}, "bogus"),
                                        ({"format_version": "2"}, "format version"),
                                        ({"info": "[1, 2]"}, "'info' must be a table")])
def test_model_file_metadata_problems_are_one_line(files, tmp_path, capsys, meta, words):
    bad = resave(files / "tiny.safetensors", tmp_path / "m.safetensors", **meta)
    src = photo(tmp_path / "a.png")
    rc = main(["stylize", str(src), "--style", str(files / "style.png"), "--model", str(bad), "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "m.safetensors" in err and words in err, err
    assert "internal error" not in err and not (tmp_path / "o.png").exists()


def _safetensors(header: dict, body: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


@pytest.mark.parametrize("header,body", [
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}, bytes(4)),  # string offsets
    ({"a": {"dtype": "F32", "shape": [2 ** 32, 2 ** 32], "data_offsets": [0, 0]}}, b""),  # shape overflows int64
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": ["x"]}, bytes(4)),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4)),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"k": 1}}, bytes(4)),
    ({"a": "x"}, b"")])
def test_lite_safetensors_reader_refuses_malformed_headers(tmp_path, header, body):
    from dinstyle.lite import read_safetensors

    (tmp_path / "x.safetensors").write_bytes(_safetensors(header, body))
    with pytest.raises(DinstyleError) as e:
        read_safetensors(tmp_path / "x.safetensors")
    assert "x.safetensors" in str(e.value) and "\n" not in str(e.value)


def test_lite_style_codes_must_be_finite(tmp_path):
    from dinstyle.lite import read_style_code

    header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
              "__metadata__": {"format": "dinstyle-style-code"}}
    (tmp_path / "n.safetensors").write_bytes(_safetensors(header, struct.pack("<f", float("nan"))))
    with pytest.raises(DinstyleError, match="NaN, inf"):
        read_style_code(tmp_path / "n.safetensors")
    header["a"]["dtype"], header["a"]["data_offsets"] = "F64", [0, 8]  # finite in float64, inf as float32
    (tmp_path / "o.safetensors").write_bytes(_safetensors(header, struct.pack("<d", 1e300)))
    with pytest.raises(DinstyleError, match="NaN, inf"):
        read_style_code(tmp_path / "o.safetensors")


TRAIN_TOML = """
arch = "din-mobilenet-vgg"
size = 32
batch_size = 2
steps = 1
sample_every = 0
sample_count = 0
workers = 0
progress = false
loss_net = "random-vgg19"
""" + TINY_MODEL_TOML


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    from dinstyle.train.synthetic_data import make_image_folder

    root = tmp_path_factory.mktemp("train")
    make_image_folder(root / "content", 4, seed=1, min_side=40, max_side=48)
    make_image_folder(root / "style", 4, seed=2, min_side=40, max_side=48)
    (root / "tiny.toml").write_text(TRAIN_TOML)
    return root


def test_train_resume_with_an_incomplete_checkpoint_is_one_line(train_data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text(f'content = "{train_data / "content"}"\nstyle = "{train_data / "style"}"\n'
                                         f'run = "{run_dir}"\n' + TRAIN_TOML)  # keys before the [model] table
    torch.save({"format_version": 2, "step": 3, "data": {"position": 6}}, run_dir / "checkpoint.pt")
    assert main(["train", "--resume", "--run", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "checkpoint.pt: incomplete checkpoint" in err and "model_file" in err


def test_train_refuses_a_non_empty_folder_that_is_not_a_run(train_data, tmp_path, capsys):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "model.safetensors").write_bytes(b"my own model")
    (run_dir / "log.jsonl").write_text("my notes\n")
    code = main(["train", "--config", str(train_data / "tiny.toml"), "--content", str(train_data / "content"),
                 "--style", str(train_data / "style"), "--run", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 1 and "is not empty" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in run_dir.iterdir()) == ["log.jsonl", "model.safetensors"]
    assert (run_dir / "model.safetensors").read_bytes() == b"my own model"


# ------------------------------------------------------------------------------- 8. the smaller ones
def test_a_second_run_on_a_folder_does_not_stylize_the_first_ones_outputs(files, tmp_path, capsys):
    photo(tmp_path / "a.png")
    photo(tmp_path / "b_stylized.png", seed=2)  # a user's own file of that name, with no b.*: still an input
    assert run(files, tmp_path, "--style", files / "style.png") == 0
    assert run(files, tmp_path, "--style", files / "style.png", "--overwrite") == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.png", "a_stylized.png", "b_stylized.png", "b_stylized_stylized.png"], names


@pytest.mark.parametrize("args,words", [
    (["--format", "png/../../x.png"], "give a file extension"), (["--max-pixels", "nan"], "--max-pixels"),
    (["--max-pixels", "inf"], "--max-pixels"), (["--max-pixels", "0"], "--max-pixels"),
    (["--max-pixels-untiled", "0"], "--max-pixels-untiled"), (["--stroke-size", "inf"], "stroke size"),
    (["--stroke-size", "1e-300"], "stroke size"), (["--stroke-size", "nan"], "stroke size")])
def test_bad_option_values_are_usage_errors(files, tmp_path, capsys, args, words):
    (tmp_path / "sub").mkdir()
    src = photo(tmp_path / "sub" / "a.png")
    with pytest.raises(SystemExit) if args[0].startswith("--max-pixels") else _raises_nothing() as e:
        code = run(files, src, "--style", files / "style.png", "-o", tmp_path / "sub" / "o", *args)
    code = e.value.code if args[0].startswith("--max-pixels") else code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "sub"]  # nothing written anywhere


class _raises_nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.skipif(torch.cuda.is_available(), reason="float16 is fine on a GPU")
def test_half_on_the_cpu_is_refused(files, tmp_path, capsys):
    src = photo(tmp_path / "a.png")
    assert run(files, src, "--style", files / "style.png", "--half", "--device", "cpu", "-o", tmp_path / "o.png") == 2
    assert "12x slower" in capsys.readouterr().err and not (tmp_path / "o.png").exists()


def test_video_writer_closes_its_container_when_opening_fails(tmp_path, monkeypatch):
    from fractions import Fraction

    from dinstyle.io import videofiles as video_io

    opened = []

    class Proxy:
        def __init__(self, c):
            self.c, self.closed = c, False

        def __getattr__(self, name):
            return getattr(self.c, name)

        def start_encoding(self):
            raise av.FFmpegError(22, "refused by the muxer")

        def close(self):
            self.closed = True
            self.c.close()

    real_open = av.open
    monkeypatch.setattr(video_io.av, "open", lambda *a, **k: opened.append(Proxy(real_open(*a, **k))) or opened[-1])
    with pytest.raises(av.FFmpegError):
        video_io.VideoWriter(tmp_path / "t.mp4", tmp_path / "o.mp4", 64, 48, Fraction(24), None)
    assert opened and all(p.closed for p in opened)


def test_only_raster_formats_are_opened(tmp_path):
    from dinstyle.io.images import image_extensions, load_image

    exts = image_extensions()
    assert {".png", ".jpg", ".webp", ".tif"} <= exts and not {".eps", ".ps", ".pdf", ".psd"} & exts
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n"
    (tmp_path / "looks.png").write_bytes(eps)  # Pillow sniffs the content, not the name
    with pytest.raises(DinstyleError, match="looks.png: not an image"):
        load_image(tmp_path / "looks.png")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.eps").write_bytes(eps)
    photo(tmp_path / "d" / "y.png")
    from dinstyle.cli.batch import expand_inputs

    assert [it.path.name for it in expand_inputs([str(tmp_path / "d")])] == ["y.png"]
