#!/usr/bin/env bash
# Deformable-DIN comparison on a GPU machine, one command (see docs/DEFORMABLE.md):
#   1. checks the torchvision fast path against the pure-PyTorch layer on the GPU, times the layer;
#   2. trains din-mobilenet-vgg, din-mobilenet-vgg-deform and adain with the SAME budget (steps, batch, size, seed,
#      data, losses, lr);
#   3. measures stroke placement on synthetic non-natural contents with held-out styles, saves the
#      side-by-side picture, and profiles the content-path cost.
#
# Before (on the CPU machine): .venv/bin/python tools/make_carry.py      # builds .carry/ (data + weights)
# Run (device tool, repo root, carry .carry): bash benchmarks/deform_gpu.sh
#   Reports go to $OUT (the device tool's output folder; default out/deform); training runs to $RUNS
#   (default runs/deform), of which logs and configs are copied to $OUT, models only with KEEP_MODELS=1.
# Settings by environment: STEPS (1500) BATCH (8) SIZE (256) ARCHS ("din-mobilenet-vgg din-mobilenet-vgg-deform adain")
#   MAX_MIN (safety stop per model, 2; a model that stops early shows its step count in the table).
#   One device command may run 10 minutes: with less, train in two calls (ARCHS=...) and skip nothing else.
set -euo pipefail
OUT=${OUT:-out/deform}
STEPS=${STEPS:-1500}
BATCH=${BATCH:-8}
SIZE=${SIZE:-256}
MAX_MIN=${MAX_MIN:-2}
RUNS=${RUNS:-runs/deform}
ARCHS=${ARCHS:-"din-mobilenet-vgg din-mobilenet-vgg-deform adain"}
DATA=${DATA:-.carry/data}
PY=${PYTHON:-python}
export PYTHONPATH=".carry/site:src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
[ -d "$DATA/train/content" ] || { echo "deform_gpu: $DATA/train missing: run tools/make_carry.py first" >&2; exit 2; }

echo "== layer: torchvision agreement and speed"
"$PY" benchmarks/deform_layer.py --sizes "${LAYER_SIZES:-512,1024}" --batch 1 | tee "$OUT/layer_speed.md"
if "$PY" -c "import pytest" 2>/dev/null; then
  "$PY" -m pytest -q tests/test_deform.py 2>&1 | tail -3 | tee "$OUT/tests.txt"
fi

models=()
for arch in $ARCHS; do
  echo "== train $arch ($STEPS steps, batch $BATCH, ${SIZE}px)"
  "$PY" -m dinstyle train --arch "$arch" --content "$DATA/train/content" --style "$DATA/train/style" \
    --steps "$STEPS" --batch-size "$BATCH" --size "$SIZE" --seed 0 --max-minutes "$MAX_MIN" \
    --run "$RUNS/$arch" --sample-every 0 --checkpoint-every 0 --no-progress 2>&1 | tail -5
  mkdir -p "$OUT/runs/$arch"
  cp "$RUNS/$arch/log.jsonl" "$RUNS/$arch/config.toml" "$OUT/runs/$arch/" 2>/dev/null || true
  [ "${KEEP_MODELS:-0}" = 1 ] && cp "$RUNS/$arch/model.safetensors" "$OUT/runs/$arch/"
  models+=(--model "$arch=$RUNS/$arch/model.safetensors")
done

echo "== stroke placement"
"$PY" benchmarks/stroke_placement.py "${models[@]}" --style "$DATA/holdout/style" --max-styles 8 \
  --per-kind 2 --size 256 --json-out "$OUT/stroke_placement.json" --grid "$OUT/deformable.png" --grid-rows 4 \
  | tee "$OUT/stroke_placement.md"

echo "== profile"
"$PY" -m dinstyle profile --model din-mobilenet-vgg --model din-mobilenet-vgg-deform --model adain --sizes 512,1024 \
  | tee "$OUT/profile.md"
