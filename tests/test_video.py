"""`dinstyle video` and the frame iterator, on tiny generated clips (64x48, ~20 frames, a sine in AAC)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from dinstyle.api import Stylizer
from dinstyle.cli import main
from dinstyle.errors import UsageError
from dinstyle.models import create_model, save_model
from dinstyle.video import stylize_frames
from dinstyle.video.temporal import TemporalSmoother, flicker, global_shift, synthetic_clip

from conftest import TINY

FPS = 24


def write_clip(path: Path, frames, fps: int = FPS, audio: bool = True, codec: str = "libx264") -> None:
    """Encode uint8 frames (+ a 440 Hz sine in AAC as long as the video) with PyAV."""
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=fps)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "pal8" if codec == "gif" else "yuv420p"
        a = out.add_stream("aac", rate=44100, layout="mono") if audio else None
        for f in frames:
            if codec == "gif":
                im = Image.fromarray(f).quantize(256)
                pal = np.zeros((256, 4), np.uint8)
                pal[:, 0] = 255
                p = np.asarray(im.getpalette(), np.uint8).reshape(-1, 3)[:256]
                pal[: len(p), 1:] = p
                frame = av.VideoFrame.from_ndarray((np.asarray(im), pal), format="pal8")
            else:
                frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            t = np.arange(round(44100 * len(frames) / fps)) / 44100
            sine = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                              format="flt", layout="mono")
            sine.sample_rate, sine.pts = 44100, 0
            out.mux(a.encode(sine))
            out.mux(a.encode(None))


def read_clip(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"rate": v.average_rate, "audio": [s.codec_context.name for s in c.streams.audio],
                "audio_seconds": [float(s.duration * s.time_base) if s.duration else None for s in c.streams.audio]}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return {**info, "frames": frames, "size": (frames[0].shape[1], frames[0].shape[0]) if frames else None}



@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("video")
    torch.manual_seed(0)
    save_model(create_model("din-mobilenet-vgg", **TINY), d / "tiny.safetensors")
    Image.fromarray(synthetic_clip(48, 48, 1, 0, 0, seed=5)[0][0]).save(d / "style.png")
    frames, cut = synthetic_clip(64, 48, pan=10, static=5, after_cut=5)
    write_clip(d / "clip.mp4", frames)
    write_clip(d / "still.mp4", [frames[0]] * 12)
    return d


def run_cli(assets, *args) -> int:
    return main(["video", *map(str, args), "--model", str(assets / "tiny.safetensors"), "--style",
                 str(assets / "style.png"), "--style-size", "64", "--quiet"])


def leftovers(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def stylizer(assets):
    return Stylizer.from_pretrained(str(assets / "tiny.safetensors"), device="cpu")


@pytest.mark.parametrize("ext,codec,audio", [(".mp4", "h264", ["aac"]), (".webm", "vp9", ["opus"]),
                                             (".mov", "h264", ["aac"]), (".gif", "gif", [])])
def test_keeps_frames_size_rate_and_audio(assets, tmp_path, capsys, ext, codec, audio):
    out = tmp_path / f"out{ext}"
    assert run_cli(assets, assets / "clip.mp4", "-o", out, "--json") == 0
    got, src = read_clip(out), read_clip(assets / "clip.mp4")
    assert len(got["frames"]) == len(src["frames"]) == 20
    assert got["size"] == (64, 48)
    # GIF delays are whole centiseconds: 24 fps is stored as 4 cs = 25 fps
    assert abs(float(got["rate"]) - FPS) < (1.01 if ext == ".gif" else 0.01)
    assert got["audio"] == audio  # aac is copied into mp4/mov, transcoded to Opus for webm, dropped for gif
    if audio:
        assert got["audio_seconds"][0] is None or abs(got["audio_seconds"][0] - 20 / FPS) < 0.1
    assert '"frames": 20' in capsys.readouterr().out
    assert leftovers(tmp_path) == []


def test_segment_resize_and_odd_sizes(assets, tmp_path):
    odd = tmp_path / "odd.gif"
    write_clip(odd, [f[:47, :63] for f in synthetic_clip(64, 48, 8, 0, 0)[0]], audio=False, codec="gif")
    assert run_cli(assets, odd, "-o", tmp_path / "even.mp4") == 0
    assert read_clip(tmp_path / "even.mp4")["size"] == (64, 48)  # yuv420p: last row/column repeated
    assert run_cli(assets, assets / "clip.mp4", "-o", tmp_path / "small.mp4", "--size", "32",
                   "--start", "0.25", "--duration", "0.25") == 0
    seg = read_clip(tmp_path / "small.mp4")
    assert seg["size"] == (32, 24) and len(seg["frames"]) == 6 and seg["audio"] == ["aac"]
    assert seg["audio_seconds"][0] < 0.4


def test_static_clip_gives_static_output(assets, tmp_path, stylizer):
    out = tmp_path / "still_out.mp4"
    assert run_cli(assets, assets / "still.mp4", "-o", out, "--temporal", "0") == 0
    frames = read_clip(out)["frames"]
    assert len(frames) == 12
    # static input: the metric is the mean output change in 8-bit code values (codec noise only)
    assert flicker(read_clip(assets / "still.mp4")["frames"], frames) < 0.5
    still = [synthetic_clip(64, 48, 1, 0, 0)[0][0]] * 6
    for t in (0.0, 0.5):  # in memory, exactly: same frame in, same frame out
        outs = list(stylize_frames(stylizer, still, assets / "style.png", temporal=t, style_size=64, batch_size=4))
        assert all(np.array_equal(o, outs[0]) for o in outs)


def test_temporal_lowers_flicker_without_smearing_across_the_cut(assets, stylizer):
    frames, cut = synthetic_clip(64, 48, pan=10, static=4, after_cut=6)
    code = stylizer.encode_style(assets / "style.png", style_size=64)
    plain = list(stylize_frames(stylizer, frames, code, temporal=0.0))
    steady = list(stylize_frames(stylizer, frames, code, temporal=0.6, batch_size=3))
    assert flicker(frames[:10], steady[:10]) < 0.95 * flicker(frames[:10], plain[:10])
    # nothing leaks across the cut: the first frame of the new scene is the independent frame, and the
    # whole new scene is what a video starting at the cut would give
    assert np.abs(steady[cut].astype(int) - plain[cut]).max() <= 1
    fresh = list(stylize_frames(stylizer, frames[cut:], code, temporal=0.6, batch_size=3))
    assert max(np.abs(a.astype(int) - b).max() for a, b in zip(fresh, steady[cut:])) <= 1
    one_by_one = list(stylize_frames(stylizer, frames, code, temporal=0.6, batch_size=1))
    assert max(np.abs(a.astype(int) - b).max() for a, b in zip(one_by_one, steady)) <= 1


def test_global_motion_and_flicker_metric_definition():
    frames, cut = synthetic_clip(96, 64, pan=4, static=2, after_cut=2)
    t = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames]
    dy, dx = global_shift(t[0], t[1])  # the clip pans 1 px/frame: content moves left
    assert abs(dy) < 0.1 and abs(dx + 1) < 0.1
    assert global_shift(t[4], t[5]) is None  # still
    assert flicker(frames, frames) == 1.0 and flicker(frames[4:6], frames[4:6]) == 0.0
    assert flicker(frames[4:6], [frames[0], frames[1]]) > 1  # static input, changing output: in code values
    with pytest.raises(UsageError):
        TemporalSmoother(1.5)


def test_stylizer_method(stylizer, assets, tmp_path):
    res = stylizer.stylize_video(assets / "clip.mp4", tmp_path / "api.webm", assets / "style.png", style_size=64,
                                 temporal=0.3, max_size=32, progress=False)
    assert (res["frames"], res["width"], res["height"], res["temporal"]) == (20, 32, 24, 0.3)
    assert res["audio"] == "transcoded (aac -> opus)" and read_clip(tmp_path / "api.webm")["size"] == (32, 24)


def test_frame_kinds(stylizer, assets):
    f = synthetic_clip(40, 30, 1, 0, 0)[0][0]
    kinds = [f, Image.fromarray(f), torch.from_numpy(f).permute(2, 0, 1).float() / 255, f.astype(np.float32) / 255]
    outs = list(stylize_frames(stylizer, kinds, assets / "style.png", style_size=64))
    assert outs[0].dtype == np.uint8 and outs[0].shape == (30, 40, 3)
    assert isinstance(outs[1], Image.Image) and outs[1].size == (40, 30)
    assert torch.is_tensor(outs[2]) and outs[2].shape == (3, 30, 40)
    assert outs[3].dtype == np.float32 and outs[3].shape == (30, 40, 3)
    assert np.abs(np.asarray(outs[1]).astype(int) - outs[0]).max() == 0
    as_uint8 = outs[0].astype(np.float32) / 255  # every kind carries the same picture
    assert np.abs(outs[2].permute(1, 2, 0).numpy() - as_uint8).max() <= 1 / 255 + 1e-6
    assert np.abs(outs[3] - as_uint8).max() <= 1 / 255 + 1e-6


def test_style_controls(assets, tmp_path, stylizer, capsys):
    stylizer.encode_style(assets / "style.png", style_size=64).save(tmp_path / "code.safetensors")
    Image.fromarray(synthetic_clip(48, 48, 1, 0, 0, seed=9)[0][0]).save(tmp_path / "b.png")
    base = ["video", str(assets / "clip.mp4"), "--model", str(assets / "tiny.safetensors"), "--quiet",
            "--duration", "0.2"]
    assert main([*base, "-o", str(tmp_path / "code.mp4"), "--style", str(tmp_path / "code.safetensors")]) == 0
    assert main([*base, "-o", str(tmp_path / "mix.mp4"), "--style", str(assets / "style.png"), "--style",
                 str(tmp_path / "b.png"), "--style-weights", "0.7,0.3", "--style-size", "64", "--stroke-size", "2",
                 "--preserve-color", "--alpha", "0.5"]) == 0
    mix, code = read_clip(tmp_path / "mix.mp4")["frames"], read_clip(tmp_path / "code.mp4")["frames"]
    assert len(mix) == len(code) == 5
    # the controls reach the frames (alpha 0.5 and colour preservation alone move every pixel)
    assert np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(mix, code)]) > 2
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "w.mp4"), "--style", str(assets / "style.png"),
                 "--style-weights", "1,2"]) == 2
    assert main([*base, "-o", str(tmp_path / "w.mp4"), "--style", str(tmp_path / "nope.png")]) == 2
    assert main([*base, "-o", str(tmp_path / "w.mp4"), "--style", str(assets / "style.png"), "--temporal", "2"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 3 and leftovers(tmp_path) == []
    assert not (tmp_path / "w.mp4").exists()


def make_bad(kind: str, d: Path, assets: Path) -> Path:
    p = d / f"bad_{kind}.mp4"
    if kind == "text":
        p.write_text("not a video\n")
    elif kind == "truncated":
        data = (assets / "clip.mp4").read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif kind == "truncated-webm":
        p = d / "bad.webm"
        main(["video", str(assets / "clip.mp4"), "-o", str(p), "--model", str(assets / "tiny.safetensors"),
              "--style", str(assets / "style.png"), "--style-size", "64", "--quiet"])
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif kind == "zero-frames":
        with av.open(str(p), "w", format="matroska") as out:
            v = out.add_stream("libx264", rate=FPS)
            v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
            out.start_encoding()
    return p


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "truncated-webm", "zero-frames", "past-end"])
def test_bad_input_one_line_error_no_output(assets, tmp_path, capsys, kind):
    src = assets / "clip.mp4" if kind == "past-end" else make_bad(kind, tmp_path, assets)
    capsys.readouterr()
    out = tmp_path / "out.mp4"
    extra = ["--start", "5"] if kind == "past-end" else []
    assert run_cli(assets, src, "-o", out, *extra) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("dinstyle: error:") and "\n" not in err and "Traceback" not in err, err
    assert not out.exists() and leftovers(tmp_path) == []


def test_refuses_to_overwrite(assets, tmp_path, capsys):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    assert run_cli(assets, assets / "clip.mp4", "-o", out) == 1
    assert out.read_bytes() == b"keep me"
    assert run_cli(assets, assets / "clip.mp4", "-o", assets / "clip.mp4", "--overwrite") == 2  # never the input
    assert run_cli(assets, assets / "clip.mp4", "-o", tmp_path / "x.avi") == 2
    assert run_cli(assets, assets / "clip.mp4", "-o", out, "--overwrite") == 0
    assert len(read_clip(out)["frames"]) == 20


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_no_output(assets, tmp_path, sig):
    src = tmp_path / "long.mp4"
    write_clip(src, synthetic_clip(64, 48, pan=10, static=0, after_cut=0)[0] * 60, audio=False)  # 600 frames
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "dinstyle", "video", str(src), "-o", str(out), "--model",
           str(assets / "tiny.safetensors"), "--style", str(assets / "style.png"), "--style-size", "64",
           "--batch-size", "1", "--quiet"]
    # A child inherits an ignored SIGINT (a suite started with `nohup ... &` has it ignored) and Python then never
    # raises KeyboardInterrupt: the child ran to the end and exited 0. It starts as a foreground shell's would.
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 40
    while time.time() < deadline and proc.poll() is None:  # wait until frames are being written
        if any(p.stat().st_size > 0 for p in tmp_path.glob(".out.mp4.*")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (err.decode(), "parent's SIGINT handler:", signal.getsignal(signal.SIGINT))
    assert err.decode().strip().splitlines()[-1] == "dinstyle: error: interrupted"
    assert not out.exists() and leftovers(tmp_path) == []
