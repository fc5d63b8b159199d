#!/usr/bin/env bash
# One short session on a machine with a GPU: everything the project needs a GPU for, in one script.
#
#   PHOTOS=path/to/photos OUT=path/to/out bash benchmarks/gpu_session.sh
#
# PHOTOS holds train/ and test/ subfolders of photographs (test/ is held out: never trained on, evaluated on). The
# script writes into OUT:
#   env.txt             the GPU, driver, torch and the commit it ran
#   flops.txt           benchmarks/flops.py at the gpu profile: FLOPs, ms/step, share of the bf16 peak, and
#                       the engine's layout against the default one and against torch.compile (interleaved)
#   step.txt            benchmarks/pretrain_step.py: RCL-EMD against N2N with the same crops through the U-Net
#   evaluation.txt      benchmarks/evaluation.py: the evaluation's forward pass in both layouts
#   g_e.txt             benchmarks/consistency_encoder.py: g_e with its BatchNorms folded against g_e as loaded
#   at-scale-*.json     python -m rcl at-scale: the headline comparison on PHOTOS with its provenance, to be
#                       committed into book/at_scale/ (the book's At scale page shows it)
#   log.txt             everything printed
# STEPS (default 1500) sets the pre-training steps of the at-scale run: the paper's 20,000 take about an hour
# for the six runs on one H200, so a short session runs fewer, and the file records how many. G_E (default
# random) is the consistency encoder: the paper's ImageNet ResNet-50 needs its weights file, which a machine
# without network lacks; G_E=imagenet with G_E_WEIGHTS=path/to/resnet50-11ad3fa6.pth uses it. PROFILE=smoke
# checks the script itself on any machine in a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PHOTOS:?set PHOTOS to a folder with train/ and test/ subfolders of photographs}"
: "${OUT:?set OUT to the folder for the results}"
PROFILE=${PROFILE:-gpu}
STEPS=${STEPS:-1500}
G_E=${G_E:-random}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD TQDM_DISABLE=1
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1

{
    date -u +%FT%TZ
    git rev-parse HEAD 2>/dev/null || echo "commit unknown"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} | tee "$OUT/env.txt"

methods="n2n rcl-emd consistency"
$PY benchmarks/flops.py --profile "$PROFILE" --methods $methods --steps 10 | tee "$OUT/flops.txt"
$PY benchmarks/flops.py --profile "$PROFILE" --methods $methods --steps 10 --compare-layouts --compile \
    | tee -a "$OUT/flops.txt"
$PY benchmarks/pretrain_step.py --profile "$PROFILE" --methods rcl-emd n2n --steps 20 \
    --set dataset=folder data_dir="$PHOTOS" g_e=random | tee "$OUT/step.txt"
$PY benchmarks/evaluation.py --profile "$PROFILE" --size 512 | tee "$OUT/evaluation.txt"
$PY benchmarks/consistency_encoder.py --profile "$PROFILE" | tee "$OUT/g_e.txt"

sets=(--set dataset=folder --set "data_dir=$PHOTOS" --set "steps=$STEPS" --set "g_e=$G_E"
      --set "runs_dir=$OUT/runs")
if [ -n "${G_E_WEIGHTS:-}" ]; then sets+=(--set "g_e_weights=$G_E_WEIGHTS"); fi
$PY -m rcl at-scale --profile "$PROFILE" "${sets[@]}" \
    --out "$OUT/at-scale-$PROFILE-$(date -u +%Y%m%dT%H%M%SZ).json" --quiet
rm -rf "$OUT/runs"  # the runs stay behind: only the small results file comes back
ls -l "$OUT"
