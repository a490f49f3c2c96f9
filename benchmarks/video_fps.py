"""Video speed and steadiness.

    python benchmarks/video_fps.py                    # frames/s at 480p and 720p + the flicker table
    python benchmarks/video_fps.py --sizes 1080p --device cuda --skip-flicker

Speed: the bundled default model (or ``--model``), style encoded once, on a generated clip. "api" is
``Stylizer.stylize`` called on each frame as a still image; "model" is the video path (``stylize_frames``: the
same runner plus time-smoothed statistics) on frames already in memory, and "video / api" the ratio of their
times per frame (issue 24: at most 1.5); "end-to-end" is ``stylize_video`` (decode, stylize, H.264 encode,
audio copy). The style encoding is not counted (it is paid once per video).

Flicker: ``dinstyle.video.temporal.flicker`` on the generated test clip (a 1-px/frame pan, a still hold, a cut)
for several ``--temporal`` values, with the output's lag behind the independent-frame output (mean abs
difference, 8-bit code values) as the price, and a motion-compensated flicker for the pan (the clip moves
exactly 1 px/frame, so output t is compared with output t-1 shifted by 1 px: a perfectly steady
stylization scores 0 there, whatever its texture).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import av
import numpy as np
import torch

from dinstyle.api import Stylizer
from dinstyle.defaults import DEFAULT_MODEL
from dinstyle.video import stylize_frames, stylize_video
from dinstyle.video.temporal import flicker, synthetic_clip

SIZES = {"240p": (426, 240), "480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 24) -> None:
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "veryfast"})
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        for f in frames:
            out.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(v.encode(None))


def style_image(seed: int = 3) -> np.ndarray:
    return synthetic_clip(256, 256, pan=1, static=0, after_cut=0, seed=seed)[0][0]


def speed(st: Stylizer, name: str, frames: int, batch: int, tmp: Path) -> dict:
    w, h = SIZES[name]
    clip, _ = synthetic_clip(w, h, pan=frames, static=0, after_cut=0)
    src = tmp / f"{name}.mp4"
    write_clip(src, clip)
    code = st.encode_style(style_image())
    sync = torch.cuda.synchronize if st.device.type == "cuda" else (lambda: None)
    list(stylize_frames(st, clip[:batch], code, batch_size=batch))  # warm-up
    stills = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in clip]
    st.stylize(stills[0], code)  # warm-up
    sync()
    t = time.perf_counter()
    for x in stills:
        st.stylize(x, code)
    sync()
    api_s = (time.perf_counter() - t) / len(stills)
    sync()
    t, cpu = time.perf_counter(), time.process_time()
    n = sum(1 for _ in stylize_frames(st, clip, code, batch_size=batch))
    sync()
    model_fps, cpu_s = n / (time.perf_counter() - t), time.process_time() - cpu
    res = stylize_video(st, src, tmp / f"{name}_out.mp4", code, batch_size=batch, overwrite=True, progress=False)
    # CPU seconds this process used: on a shared, overloaded machine, frames per CPU-second (with 1 torch
    # thread) estimates what one idle core would do, where wall-clock frames/s depends on the neighbours
    return {"size": f"{name} ({w}x{h})", "frames": n, "model_fps": round(model_fps, 2),
            "api_fps": round(1 / api_s, 2), "video_vs_api": round(1 / (api_s * model_fps), 2),
            "model_frames_per_cpu_s": round(n / cpu_s, 2) if st.device.type == "cpu" else None,
            "end_to_end_fps": res["frames_per_second"], "end_to_end_temporal": res["temporal"]}


def flicker_table(st: Stylizer, strengths: list[float]) -> list[dict]:
    pan, still, after = 16, 8, 8
    clip, cut = synthetic_clip(128, 96, pan=pan, static=still, after_cut=after)
    code = st.encode_style(style_image())
    ref = list(stylize_frames(st, clip, code, temporal=0.0))
    rows = []
    for t in strengths:
        out = ref if t == 0 else list(stylize_frames(st, clip, code, temporal=t))
        comp, comp_in = (np.mean([np.abs(f[i][:, :-1].astype(np.float32) - f[i - 1][:, 1:]).mean()
                                  for i in range(1, pan)]) for f in (out, clip))
        lag = np.mean([np.abs(out[i].astype(np.float32) - ref[i]).mean() for i in range(len(clip))])
        rows.append({"temporal": t, "flicker_pan": round(flicker(clip[:pan], out[:pan]), 3),
                     "flicker_still": round(flicker(clip[pan - 1 : cut], out[pan - 1 : cut]), 3),
                     "flicker_clip": round(flicker(clip, out, cuts=[cut]), 3),
                     "compensated_pan": round(float(comp / max(comp_in, 1.0)), 3),
                     "lag": round(float(lag), 2),
                     "cut_frame_diff": round(float(np.abs(out[cut].astype(np.float32) - ref[cut]).mean()), 2)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="480p,720p", help=f"comma-separated, from {', '.join(SIZES)}")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=1, help="frames per forward pass (1 is fastest on CPU)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="model name or file (default: the bundled default)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-flicker", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        st = st_flicker = Stylizer.from_pretrained(args.model, args.device)
    env = {"device": str(st.device), "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
           "load_avg_1min": round(os.getloadavg()[0], 2), "dtype": str(getattr(st, "dtype", torch.float32))}
    result: dict = {"env": env}
    if not args.skip_speed:
        with tempfile.TemporaryDirectory() as d:
            result["speed"] = [speed(st, s.strip(), args.frames, args.batch_size, Path(d))
                               for s in args.sizes.split(",")]
    if not args.skip_flicker:
        result["flicker"] = flicker_table(st_flicker, [0.0, 0.25, 0.5, 0.75, 1.0])
        result["flicker_model"] = st_flicker.model_id
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"# {env}")
    for r in result.get("speed", []):
        per_cpu = f" ({r['model_frames_per_cpu_s']} frames per CPU-second)" if r["model_frames_per_cpu_s"] else ""
        print(f"{r['size']:>20}: api {r['api_fps']:7.2f} frames/s, video path {r['model_fps']:7.2f} frames/s{per_cpu} "
              f"(video / api time per frame {r['video_vs_api']}), end-to-end "
              f"(--temporal {r['end_to_end_temporal']}) {r['end_to_end_fps']:7.2f} frames/s")
    if "flicker" in result:
        print(f"\nflicker on the generated clip (model {result['flicker_model']}):")
        print("| --temporal | flicker (pan) | flicker (still) | flicker (clip) | compensated (pan) | lag "
              "| cut frame diff |")
        print("|---|---|---|---|---|---|---|")
        for r in result["flicker"]:
            print(f"| {r['temporal']} | {r['flicker_pan']} | {r['flicker_still']} | {r['flicker_clip']} | "
                  f"{r['compensated_pan']} | {r['lag']} | {r['cut_frame_diff']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
