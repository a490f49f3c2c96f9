"""The bundled, trained din-mobilenet (assets/models/din-mobilenet.safetensors) with every feature of the API:
alpha and the restore, forced tiles, the stroke size, video (file and in-memory frames), and ONNX export run by
the torch-free ``dinstyle.lite`` runtime. tests/test_din_mobilenet.py checks the architecture with untrained
weights; this file checks the weights that ship.

Measured here (2-core CPU, 160x200, irises): tiles vs whole 5e-7 max; stroke size 2's high-pass energy 0.92x
size 1's (a sigma-2 / sigma-3 blur of size 1's output: 0.50x / 0.39x), wavelength 26 -> 31 px; lite vs PyTorch
under 0.0001/255 mean, 0.002/255 max at stroke size 1 and 0.28/255 max at 2 (PIL vs torch bicubic).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import dinstyle
from dinstyle import Stylizer
from dinstyle.eval.wavelength import stroke_scale
from dinstyle.io.builtin_styles import builtin_style
from dinstyle.layers.filters import gaussian_blur
from dinstyle.video.temporal import synthetic_clip

STYLE = "builtin:irises"
SRC = str(Path(dinstyle.__file__).resolve().parents[1])


def _photo(h: int = 160, w: int = 200) -> torch.Tensor:
    """A smooth, photo-like image: a sky gradient, a dark hill and a bright disc (as test_bundled_models)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.4 + 0.4 * yy, 0.55 + 0.3 * yy, 0.9 - 0.3 * yy])
    hill = (yy > 0.6 + 0.15 * torch.sin(6 * xx)).float()
    img = img * (1 - hill) + hill * torch.stack([0.2 + 0.1 * xx, 0.35 + 0 * xx, 0.15 + 0 * xx])
    disc = (((yy - 0.3) ** 2 + (xx - 0.7) ** 2) < 0.01).float()
    return (img * (1 - disc) + disc * 0.95)[None]


def _gradient(h: int = 160, w: int = 200) -> torch.Tensor:
    """Colour ramps and a soft disc, no edges or texture of its own (benchmarks/stroke_scale.py's photo): all
    the high-pass texture of an output is the style's, so the stroke measure sees the strokes alone."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([0.3 + 0.5 * yy, 0.5 + 0.3 * xx, 0.8 - 0.4 * yy])
    disc = torch.exp(-(((yy - 0.4) ** 2 + (xx - 0.6) ** 2) / 0.02))
    return (img * (1 - 0.5 * disc) + 0.5 * disc * torch.tensor([0.9, 0.7, 0.2]).view(3, 1, 1))[None].clamp(0, 1)


def _mean_abs(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).mean())


@pytest.fixture(scope="module")
def st():
    s = Stylizer.from_pretrained("din-mobilenet", device="cpu")
    assert s.model.arch == "din-mobilenet" and s.model.pretrained.trained  # the shipped weights, not a fallback
    return s


@pytest.fixture(scope="module")
def code(st):
    return st.encode_style(STYLE)


# ---------------------------------------------------------------------------------------------- alpha, restore
def test_alpha_with_the_restore_runs_from_the_photo_to_the_style(st, code):
    x = _photo()
    out = {a: st.stylize(x, code, alpha=a) for a in (0.0, 0.25, 0.5, 0.75, 1.0)}
    assert torch.equal(out[0.0], x)  # the photo itself, bit for bit
    pil = Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    assert np.array_equal(np.asarray(st.stylize(pil, code, alpha=0.0)), np.asarray(pil))  # and as an 8-bit image
    # without the restore alpha 0 is the network's own reconstruction: the restore is what makes it exact
    assert (st.stylize(x, code, alpha=0.0, restore=False) - x).abs().mean() > 1e-3
    span = float((out[1.0] - x).abs().mean())
    assert span > 0.05  # the style really changes the picture
    half_to_photo, half_to_style = float((out[0.5] - x).abs().mean()), float((out[0.5] - out[1.0]).abs().mean())
    # halfway lies between: nearer each end than the ends are to each other, and at neither end
    assert 0.2 * span < half_to_photo < span and 0.2 * span < half_to_style < span
    dist = [float((out[a] - x).abs().mean()) for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert dist == sorted(dist), dist  # the further the slider, the further from the photo
    assert all(0 <= float(o.min()) and float(o.max()) <= 1 for o in out.values())


# ---------------------------------------------------------------------------------------------- tiles
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_forced_small_tiles_equal_the_whole_image(st, code, alpha):
    x = _photo(160, 200)
    totals = []
    whole = st.stylize(x, code, alpha=alpha, max_pixels_untiled=160 * 200)  # one piece, whatever the memory
    tiled = st.stylize(x, code, alpha=alpha, tile=64, progress=lambda done, total: totals.append(total))
    passes = 1 if alpha == 1.0 else 2  # the restore's alpha-0 pass is tiled too
    tiles = max(totals) // (passes * (len(st.model.dins) + 1))  # a stats pass per DIN level, then the last
    assert tiles >= 6, totals  # really in tiles (12 cores of at most 64 px), not one piece
    assert whole.shape == tiled.shape == x.shape
    assert (whole - x).abs().mean() > 0.05  # two no-ops would agree too
    assert float((tiled - whole).abs().max()) < 1e-3


# ---------------------------------------------------------------------------------------------- stroke size
def test_stroke_size_2_gives_larger_strokes_not_a_blur(st, code):
    x = _gradient(160, 200)
    y1, y2 = st.stylize(x, code, stroke_size=1.0), st.stylize(x, code, stroke_size=2.0)
    assert y2.shape == x.shape
    assert (y2 - y1).abs().mean() > 0.02 and (y2 - x).abs().mean() > 0.05  # another picture, still stylized
    s1, s2 = stroke_scale(y1), stroke_scale(y2)  # dinstyle.eval.wavelength: high-pass luminance, sigma 24 px
    energy = lambda s: s.hp_rms ** 2  # noqa: E731
    assert energy(s2) >= 0.5 * energy(s1), (s1, s2)  # as much texture, not a blur of it
    assert s2.wavelength > 1.05 * s1.wavelength, (s1, s2)  # and larger
    # the energy check can fail: a Gaussian blur of size 1's picture does
    blurred = gaussian_blur(y1, 3.0)
    assert energy(stroke_scale(blurred)) < 0.5 * energy(s1)


# ---------------------------------------------------------------------------------------------- video
def _write_clip(path: Path, frames: list[np.ndarray], fps: int = 24) -> None:
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        for f in frames:
            out.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(v.encode(None))


def _read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def clip():
    """4 frames of 128x96: one step of a pan, then the same frame three times."""
    frames, _ = synthetic_clip(128, 96, pan=2, static=2, after_cut=0)
    assert len(frames) == 4 and not np.array_equal(frames[0], frames[1])
    assert all(np.array_equal(frames[1], f) for f in frames[2:])
    return frames


def test_video_file_frames_are_stylized_and_steady(st, code, clip, tmp_path):
    _write_clip(tmp_path / "in.mp4", clip)
    summary = st.stylize_video(tmp_path / "in.mp4", tmp_path / "out.mp4", code, progress=False)  # temporal 0.5
    assert summary["frames"] == 4 and (summary["width"], summary["height"]) == (128, 96)
    src, out = _read_frames(tmp_path / "in.mp4"), _read_frames(tmp_path / "out.mp4")
    assert len(out) == 4 and all(f.shape == (96, 128, 3) for f in out)
    assert all(_mean_abs(o, s) > 10 for o, s in zip(out, src))  # code values: every frame is restyled
    # the same frame in, the same frame out (up to the codec's noise on both sides); the pan step moves it
    assert _mean_abs(out[1], out[2]) < 1.0 and _mean_abs(out[2], out[3]) < 1.0
    assert _mean_abs(out[0], out[1]) > 3.0


def test_video_frames_in_memory_are_stylized_and_steady(st, code, clip):
    for temporal in (0.0, 0.5):
        out = list(st.stylize_frames(clip, code, temporal=temporal))
        assert len(out) == 4 and all(o.shape == (96, 128, 3) and o.dtype == np.uint8 for o in out)
        assert all(_mean_abs(o, f) > 10 for o, f in zip(out, clip))
        # no codec here: repeated frames give the same picture (temporal 0 exactly; 0.5 settles within a level)
        assert max(np.abs(out[i].astype(int) - out[i + 1]).max() for i in (1, 2)) <= (0 if temporal == 0 else 1)
        assert _mean_abs(out[0], out[1]) > 3.0


# ---------------------------------------------------------------------------------------------- export + lite
LITE_SCRIPT = r"""
import json, sys
sys.modules["torch"] = None  # any import of torch now fails: the runtime must do without it
import numpy as np
from dinstyle.lite import LiteModel

d = sys.argv[1]
lite = LiteModel(d + "/onnx", threads=1)
photo = np.load(d + "/photo.npy")
code = dict(np.load(d + "/code.npz"))
own = lite.code_for(sys.argv[2])  # the style image through the exported style encoder
runs = {f"alpha{a}_stroke{s}": lite.stylize(photo, code, alpha=a, stroke_size=s)
        for a, s in ((1.0, 1.0), (0.5, 1.0), (0.0, 1.0), (1.0, 2.0))}
runs["own_code"] = lite.stylize(photo, own)
np.savez(d + "/lite_out.npz", **runs)
print(json.dumps({"torch_loaded": sys.modules.get("torch") is not None}))
"""


@pytest.fixture(scope="module")
def lite_runs(st, code, tmp_path_factory):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from dinstyle.export import export_onnx

    d = tmp_path_factory.mktemp("mobilenet-lite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings
        manifest = export_onnx(st.model, d / "onnx")
    x = _photo()
    np.save(d / "photo.npy", x[0].permute(1, 2, 0).numpy())
    np.savez(d / "code.npz", **{k: v.float().numpy() for k, v in code.tensors.items()})
    r = subprocess.run([sys.executable, "-c", LITE_SCRIPT, str(d), str(builtin_style(STYLE).path)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"torch_loaded": False}
    with np.load(d / "lite_out.npz") as f:
        runs = dict(f)
    return manifest, x, runs


def test_export_describes_the_trained_model(lite_runs):
    manifest, _, _ = lite_runs
    assert manifest["arch"] == "din-mobilenet" and manifest["trained"] is True
    assert manifest["style_size"] == 256 and manifest["reference_size"] == 512
    assert manifest["parity_max_abs_diff"] <= 1e-3  # the export's own graph-vs-PyTorch check


@pytest.mark.parametrize("alpha,stroke", [(1.0, 1.0), (0.5, 1.0), (1.0, 2.0)])
def test_lite_without_torch_matches_pytorch(st, code, lite_runs, alpha, stroke):
    """Like with like: the API's passes and lite's both carry the fixed dither (runner.dithered, lite._pass);
    the restore (alpha 0.5) and the stroke scale (PIL vs torch bicubic) run on both sides."""
    _, x, runs = lite_runs
    ref = st.stylize(x, code, alpha=alpha, stroke_size=stroke).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    out = runs[f"alpha{alpha}_stroke{stroke}"]
    assert out.shape == ref.shape == (160, 200, 3)
    diff = np.abs(out - ref)
    assert diff.mean() < 2 / 255 and diff.max() < 0.1, (diff.mean() * 255, diff.max() * 255)
    assert np.abs(ref - x[0].permute(1, 2, 0).numpy()).mean() > 0.05  # a parity of two no-ops proves nothing


def test_lite_alpha_0_and_its_own_style_encoding(st, code, lite_runs):
    _, x, runs = lite_runs
    photo = x[0].permute(1, 2, 0).numpy()
    assert np.array_equal(runs["alpha0.0_stroke1.0"], photo)  # the restore: the photo itself
    ref = st.stylize(x, code).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    diff = np.abs(runs["own_code"] - ref)  # the exported style encoder, lite's own resize to 256 px
    assert diff.mean() < 2 / 255 and diff.max() < 0.1, (diff.mean() * 255, diff.max() * 255)
