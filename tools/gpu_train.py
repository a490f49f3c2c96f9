#!/usr/bin/env python3
"""One-shot GPU training kit (issue 7): pilots -> pick by `dinstyle eval` -> train din-mobilenet-vgg + adain.

Run from the repo root on the device machine, after `tools/make_carry.py` built `.carry/` here:

    python3 tools/gpu_train.py                    # OUT=$OUT, ~9 minutes in all (BUDGET_S=540)
    TOY=1 OUT=/tmp/out .venv/bin/python tools/gpu_train.py   # the same steps at toy scale on CPU

1. Pilots: din-mobilenet-vgg with each candidate loss/encoder setting (PILOTS), trained at the same time on
   the one GPU for the same wall-clock budget (PILOT_MIN), from scratch, on .carry/data/train.
2. `dinstyle eval` of every pilot on the held-out pairs (.carry/data/holdout); the winner has the lowest
   sum of its ranks among the pilots on SSIM, the style-vector judge and the texture judge (ties:
   texture judge). No fixed thresholds: pilots are compared with each other.
3. din-mobilenet-vgg and adain trained side by side with the winner's losses for the remaining time
   (equal budget; INIT_DIN / INIT_ADAIN continue earlier models via --init).
4. Final eval with Magenta and the colour-transfer baseline, then $OUT gets: gpu_train.log,
   din-mobilenet-vgg.safetensors, adain.safetensors, eval.md, results.tar.gz (eval JSON, contact sheets,
   run logs/configs/loss curves/samples, winner.toml). At most 8 files, each under 16 MiB.

A later session continues: `tools/make_carry.py --init PREVIOUS_OUT` puts winner.toml and both models
into .carry/init/; this script then skips the pilots and continues both models from them (--init).

Environment: OUT, TOY=1, BUDGET_S, PILOT_MIN, PILOTS ("name:key=value,key=value;..."),
SKIP_PILOTS=1 with WINNER=winner.toml, INIT_DIN, INIT_ADAIN (defaults from .carry/init/ when it exists),
WORK (scratch folder).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CARRY = REPO / ".carry"
INIT = CARRY / "init"  # written by make_carry.py --init: continue a previous session
if (INIT / "winner.toml").is_file():
    os.environ.setdefault("SKIP_PILOTS", "1")
    os.environ.setdefault("WINNER", str(INIT / "winner.toml"))
    os.environ.setdefault("INIT_DIN", str(INIT / "din-mobilenet-vgg.safetensors"))
    os.environ.setdefault("INIT_ADAIN", str(INIT / "adain.safetensors"))
T0 = time.monotonic()
TOY = os.environ.get("TOY") == "1"
# Candidates: AdaIN's 10x style/content balance, a stronger style term, a faster learning rate for short
# budgets, a random-VGG loss network (content and style terms: their scales differ by orders of magnitude
# from the ImageNet VGG's, so the two terms must share a net; it transferred texture in earlier pilots),
# the cheap Lite0 style encoder, and a wider generator (capacity; still 48x cheaper than adain).
DEFAULT_PILOTS = ("sw10:style_weight=10;sw30:style_weight=30;sw10-lr3e-4:style_weight=10,lr=3e-4;"
                  "randvgg:style_weight=10,loss_net=random-vgg19;lite0enc:style_weight=10,style_encoder=efficientnet-lite0;"
                  "wide:style_weight=10,config=configs/din-mobilenet-vgg-wide.toml")
S = {"budget_s": 1500 if TOY else 540, "pilot_min": 0.1 if TOY else 2.0, "steps": 2 if TOY else 10_000_000,
     "batch_size": 2 if TOY else 16, "size": 64 if TOY else 256, "workers": 0 if TOY else 3,
     "final_workers": 0 if TOY else 7, "pairs": 3 if TOY else 32, "eval_size": 64 if TOY else 256,
     "precision": "fp32" if TOY else "bf16", "device": "cpu" if TOY else "cuda",
     "eval_reserve_s": 150 if TOY else 100, "grace_s": 900 if TOY else 120}
S["budget_s"] = float(os.environ.get("BUDGET_S", S["budget_s"]))
S["pilot_min"] = float(os.environ.get("PILOT_MIN", S["pilot_min"]))
OUT = Path(os.environ.get("OUT") or ("/tmp/out" if TOY else sys.exit("gpu_train: set OUT")))
WORK = Path(os.environ.get("WORK", "/tmp/dinstyle-gpu-toy" if TOY else "/tmp/dinstyle-gpu"))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CARRY / "site"), str(REPO / "src"),
                                                   os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
       "PYTHONUNBUFFERED": "1"}
# Several runs share the machine's cores: few intra-op threads each (DataLoader workers use 1 anyway).
ENV_TRAIN = {**ENV, "OMP_NUM_THREADS": "1" if TOY else "2"}
PY = [sys.executable, "-m", "dinstyle"]
sys.path[:0] = [str(REPO / "src")]  # for the report helpers (torch, Pillow: on the GPU image too)


def log(msg: str) -> None:
    line = f"[{time.monotonic() - T0:6.0f}s] {msg}"
    print(line, flush=True)
    with open(OUT / "gpu_train.log", "a") as f:
        f.write(line + "\n")


def left() -> float:
    return S["budget_s"] - (time.monotonic() - T0)


def parse_pilots(text: str) -> dict[str, dict]:
    pilots = {}
    for item in filter(None, (s.strip() for s in text.split(";"))):
        name, _, body = item.partition(":")
        pilots[name] = {k: _value(v) for k, v in (kv.split("=", 1) for kv in body.split(",") if kv)}
    return pilots


def _value(v: str):
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def flags(settings: dict) -> list[str]:
    def text(v) -> str:
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    return [x for k, v in settings.items() for x in (f"--{k.replace('_', '-')}", text(v))]


def common() -> dict:
    """Settings every run shares (and winner.toml records). Crops never upscale the 320-px carry copy."""
    return {"batch_size": S["batch_size"], "size": S["size"], "crop_scale": [1.0, 1.25] if not TOY else [1.0, 2.0]}


def start_train(name: str, arch: str, settings: dict, minutes: float, workers: int, init: str = "") -> subprocess.Popen:
    run = WORK / name
    argv = PY + ["train", "--content", str(CARRY / "data/train/content"), "--style", str(CARRY / "data/train/style"),
                 "--arch", arch, "--run", str(run), "--steps", str(S["steps"]), "--workers", str(workers),
                 "--precision", S["precision"],
                 "--device", S["device"], "--max-minutes", f"{minutes:.3f}", "--no-progress",
                 "--sample-every", "0", "--checkpoint-every", "0" if TOY else "2000"] + flags({**common(), **settings})
    if init:
        argv += ["--init", init]
    log(f"start {name}: {' '.join(argv[3:])}")
    return subprocess.Popen(argv, env=ENV_TRAIN, cwd=REPO, stdout=open(WORK / f"{name}.log", "w"), stderr=subprocess.STDOUT)


def wait_all(procs: dict[str, subprocess.Popen], deadline_s: float, kill_after_s: float) -> dict[str, int]:
    """Wait; past the deadline send SIGTERM (training checkpoints and stops), then kill if still running."""
    term_at = time.monotonic() + deadline_s
    while any(p.poll() is None for p in procs.values()):
        if time.monotonic() > term_at:
            for n, p in procs.items():
                if p.poll() is None:
                    log(f"{n}: over its deadline, SIGTERM")
                    p.send_signal(signal.SIGTERM)
            try:
                for p in procs.values():
                    p.wait(timeout=kill_after_s)
            except subprocess.TimeoutExpired:
                for p in procs.values():
                    p.kill()
            break
        time.sleep(2)
    codes = {n: p.wait() for n, p in procs.items()}
    for n, rc in codes.items():
        tail = (WORK / f"{n}.log").read_text(errors="replace").strip().splitlines()[-3:]
        log(f"{n}: exit {rc}; " + " | ".join(tail))
    return codes


def evaluate(name: str, models: dict[str, Path], baselines: bool) -> list[dict]:
    argv = PY + ["eval", "--content", str(CARRY / "data/holdout/content"), "--style", str(CARRY / "data/holdout/style"),
                 "--pairs", str(S["pairs"]), "--size", str(S["eval_size"]), "--seed", "0", "--json",
                 "--report", str(WORK / name), "--overwrite", "--device", S["device"]]
    argv += [x for label, f in models.items() for x in ("--model", f"{label}={f}")]
    argv += ["--magenta", "--color-transfer"] if baselines else []
    log(f"eval {name}: {len(models)} model(s)" + (" + magenta + color-transfer" if baselines else ""))
    r = subprocess.run(argv, env=ENV, cwd=REPO, capture_output=True, text=True, timeout=max(30, left() + 40))
    (WORK / name).mkdir(parents=True, exist_ok=True)
    (WORK / name / "eval.jsonl").write_text(r.stdout)
    (WORK / name / "eval.stderr").write_text(r.stderr)
    if r.returncode:
        log(f"eval {name} failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
        return []
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def pick(results: list[dict]) -> str:
    """Lowest rank sum over SSIM (high), judge mean rank (low), texture mean rank (low); ties by texture."""
    keys = [("ssim", True), ("judge_mean_rank", False), ("texture_mean_rank", False)]
    if "judge_mean_rank" not in results[0]:
        keys = [("ssim", True), ("style_loss", False)]
    total = {r["model"]: 0 for r in results}
    for k, high in keys:
        for i, r in enumerate(sorted(results, key=lambda r: -r[k] if high else r[k])):
            total[r["model"]] += i + 1
    best = min(results, key=lambda r: (total[r["model"]], r.get("texture_mean_rank", 0)))
    log("rank sums: " + ", ".join(f"{m}={t}" for m, t in sorted(total.items(), key=lambda x: x[1])))
    return best["model"]


def write_toml(path: Path, settings: dict, note: str) -> None:
    """A `dinstyle train --config` file: a pilot's `config=FILE` is inlined (its [model] table), since the
    train config has no such key."""
    import tomllib

    settings = dict(settings)
    model = tomllib.loads((REPO / settings.pop("config")).read_text()).get("model", {}) if "config" in settings else {}
    lines = [f"# {note}"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    lines += ["", "[model]"] + [f"{k} = {json.dumps(v)}" for k, v in model.items()] if model else []
    path.write_text("\n".join(lines) + "\n")


def table(results: list[dict]) -> str:
    from dinstyle.eval.report import markdown_table

    return markdown_table(results) if results else "(no results)"


def runs_table(prefix: str) -> str:
    """Steps, throughput and last loss of each run: what 'equal budget' bought each of them."""
    lines = ["| run | steps | images/s | last loss terms |", "|---|---:|---:|---|"]
    for run in sorted(WORK.glob(prefix + "*/log.jsonl")):
        entries = [json.loads(x) for x in run.read_text().splitlines() if x.startswith("{")]
        if entries:
            e = entries[-1]
            terms = ", ".join(f"{k} {v:.3g}" for k, v in e.items() if isinstance(v, float) and k not in ("lr", "grad_norm", "images_per_s"))
            rates = [x["images_per_s"] for x in entries if x.get("images_per_s")]
            lines.append(f"| {run.parent.name} | {e['step']} | {sum(rates) / max(1, len(rates)):.0f} | {terms} |")
    return "\n".join(lines)


def pack(sections: list[str]) -> None:
    """$OUT: models, eval.md, results.tar.gz (small files; contact sheets as JPEG to stay small)."""
    (OUT / "eval.md").write_text("\n\n".join(sections) + "\n")
    for label, run in (("din-mobilenet-vgg", "final-din"), ("adain", "final-adain")):
        f = WORK / run / "model.safetensors"
        if f.is_file():
            shutil.copy2(f, OUT / f"{label}.safetensors")
    from PIL import Image

    with tarfile.open(OUT / "results.tar.gz", "w:gz") as tar:
        for f in sorted(WORK.rglob("*")):
            rel = f.relative_to(WORK)
            if not f.is_file() or f.suffix in (".safetensors", ".pt"):
                continue
            if f.name == "contact_sheet.png":
                jpg = f.with_suffix(".jpg")
                Image.open(f).convert("RGB").save(jpg, quality=85)
                tar.add(jpg, str(rel.with_suffix(".jpg")))
            elif f.parent.name == "samples" and f != max(f.parent.glob("*.png")):
                continue  # the last sample grid of each run is enough
            elif f.suffix != ".jpg":
                tar.add(f, str(rel))
    for f in sorted(OUT.iterdir()):
        log(f"out: {f.name} {f.stat().st_size / 2**20:.2f} MiB")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    if not (CARRY / "data/train/content").is_dir() or not (CARRY / "site").is_dir():
        log("no .carry/ here: run tools/make_carry.py first and name .carry in carry")
        return 2
    probe = subprocess.run([sys.executable, "-c", "import torch, dinstyle.eval.magenta, dinstyle.backbones as b; "
                            "print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0) "
                            "if torch.cuda.is_available() else 'cpu'); b.create_backbone('vgg19'); "
                            "b.create_backbone('efficientnet-lite0'); dinstyle.eval.magenta.MagentaModel()"],
                           env=ENV, capture_output=True, text=True)
    log(f"settings {json.dumps(S)}; probe rc={probe.returncode}: {probe.stdout.strip()} {probe.stderr.strip()[-400:]}")
    if probe.returncode or (not TOY and "True" not in probe.stdout):
        return 2
    sections = []
    try:
        if os.environ.get("SKIP_PILOTS") == "1":
            import tomllib

            winner = {**common(), **tomllib.loads(Path(os.environ["WINNER"]).read_text())}
            if "model" in winner:  # a [model] table goes back into a config file for `dinstyle train`
                model_toml = WORK / "winner-model.toml"
                model_toml.write_text('arch = "din-mobilenet-vgg"\n[model]\n' + "".join(
                    f"{k} = {json.dumps(v)}\n" for k, v in winner.pop("model").items()))
                winner["config"] = str(model_toml)
            log(f"pilots skipped; winner from {os.environ['WINNER']}: {winner}")
        else:
            pilots = parse_pilots(os.environ.get("PILOTS", DEFAULT_PILOTS))
            procs = {f"pilot-{n}": start_train(f"pilot-{n}", "din-mobilenet-vgg", s, S["pilot_min"], S["workers"])
                     for n, s in pilots.items()}
            wait_all(procs, S["pilot_min"] * 60 + S["grace_s"], S["grace_s"] / 2)
            done = {n: WORK / f"pilot-{n}" / "model.safetensors" for n in pilots}
            done = {n: f for n, f in done.items() if f.is_file()}
            results = evaluate("eval-pilots", done, baselines=False) if done else []
            sections.append("## Pilots (din-mobilenet-vgg, equal wall-clock budget)\n\n" + table(results)
                            + "\n\n" + runs_table("pilot-"))
            name = pick(results) if results else next(iter(pilots))
            winner = {**common(), **pilots[name]}
            sections.append(f"Winner: **{name}** {json.dumps(winner)}")
            log(f"winner {name}: {winner}")
        write_toml(WORK / "winner.toml", winner, "settings chosen by tools/gpu_train.py pilots")
        shutil.copy2(WORK / "winner.toml", OUT / "winner.toml")
        for key in ("INIT_DIN", "INIT_ADAIN"):
            if os.environ.get(key):
                from dinstyle.io.tensorfiles import load_safetensors

                sections.append(f"{key}: {os.environ[key]} {json.dumps(load_safetensors(os.environ[key])[1].get('info'))}")
        minutes = max(0.05, (left() - S["eval_reserve_s"]) / 60)
        # AdaIN's encoder is its own VGG, and din-mobilenet-vgg's model settings (config=) do not apply to it.
        adain = {k: v for k, v in winner.items() if k not in ("style_encoder", "config")}
        procs = {"final-din": start_train("final-din", "din-mobilenet-vgg", winner, minutes, S["final_workers"],
                                          os.environ.get("INIT_DIN", "")),
                 "final-adain": start_train("final-adain", "adain", adain, minutes, S["final_workers"],
                                            os.environ.get("INIT_ADAIN", ""))}
        wait_all(procs, minutes * 60 + S["grace_s"] / 3, S["grace_s"] / 4)
        models = {label: WORK / run / "model.safetensors" for label, run in
                  (("din-mobilenet-vgg", "final-din"), ("adain", "final-adain"))}
        final = evaluate("eval-final", {k: v for k, v in models.items() if v.is_file()}, baselines=True)
        sections.insert(0, "## Final (equal budget, held-out pairs)\n\n" + table(final) + "\n\n" + runs_table("final-"))
    finally:
        pack(sections)
        log(f"done, {left():.0f} s of the budget left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
