#!/usr/bin/env bash
# One short session on a machine with a GPU: everything the project needs a GPU for, in one script that ends
# inside a time budget.
#
#   PHOTOS=path/to/photos OUT=path/to/out bash benchmarks/gpu_session.sh
#
# PHOTOS holds train/ and test/ subfolders of photographs (test/ is held out: never trained on, evaluated on).
# The phases run in order of what they are worth, each under what is left of BUDGET_S (default 560 s, so that
# the script ends inside a 10-minute limit): one that fails or runs out of time is reported and the next runs.
# The script writes into OUT (seven files at most, none in subfolders):
#   env.txt             the GPU, driver, torch and the commit it ran
#   at-scale-*.json     python -m rcl at-scale: the headline comparison on PHOTOS with its provenance, to be
#                       committed into book/at_scale/ (the book's At scale page shows it)
#   tests.txt           the tests that run on CUDA (the `device` fixture's cuda cases)
#   step.txt            benchmarks/pretrain_step.py: RCL-EMD against N2N with the same crops through the U-Net
#   flops.txt           benchmarks/flops.py: FLOPs, ms/step and share of the bf16 peak; then the engine's layout
#                       against the default one, torch.compile and CUDA graphs (interleaved)
#   more.txt            benchmarks/consistency_encoder.py (g_e folded against as loaded), evaluation.py and
#                       apply.py (a 4000×3000 photograph denoised tile by tile: time and peak memory)
#   log.txt             everything printed, with each phase's start and the seconds left
# STEPS (default 800 at the gpu profile) sets the pre-training steps of the at-scale runs and TEST_IMAGES (default
# 68, the size of the field's CBSD68) how many of test/'s photographs (the first by name) they are evaluated on: on
# one H200 the eight runs (the six headline ones, the copy-the-input control and SR's Oracle) take about 60 s per 300
# steps, and the evaluation of 68 photographs about 3 minutes (estimates from the measured step and evaluation
# times), so 800 steps leave the at-scale phase, which writes its file only at its end, a margin inside the budget;
# the paper's 20,000 steps take about an hour. The file records both.
# SEEDS (default 0) are the at-scale runs' pre-training seeds: one seed fits the budget, and gives no verdicts.
# DATA_NOTE says in words what PHOTOS are, recorded in the file (default: the folder's name and its counts).
# G_E (default random) is the consistency encoder: the paper's ImageNet ResNet-50 needs its weights file, which
# a machine without network lacks; G_E=imagenet with G_E_WEIGHTS=path/to/resnet50-11ad3fa6.pth uses it.
# RCL_COMMIT names the commit the tree was copied from where it has no git history (the results file records
# it). Pre-training runs go to RUNS (default: a folder under TMPDIR), never into OUT; it is removed once the at-scale
# run has succeeded, and kept otherwise, so that running the script again resumes. PROFILE=smoke checks the
# script itself on any machine in a few minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${PHOTOS:?set PHOTOS to a folder with train/ and test/ subfolders of photographs}"
: "${OUT:?set OUT to the folder for the results}"
PROFILE=${PROFILE:-gpu}
STEPS=${STEPS-$([ "$PROFILE" = gpu ] && echo 800)}  # other profiles: their own steps
TEST_IMAGES=${TEST_IMAGES:-68}
G_E=${G_E:-random}
BUDGET_S=${BUDGET_S:-560}
PY=${PY:-python3}
RUNS=${RUNS:-${TMPDIR:-/tmp}/rcl-gpu-session-runs}  # kept until the at-scale run succeeds: a rerun resumes
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD TQDM_DISABLE=1
[ -d "$PHOTOS/train" ] && [ -d "$PHOTOS/test" ] || { echo "PHOTOS=$PHOTOS needs train/ and test/ subfolders"; exit 2; }
[ "$PROFILE" != gpu ] || [ -n "$STEPS" ] || { echo "STEPS is empty: the gpu profile's 20,000 steps take an hour"; exit 2; }
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/log.txt") 2>&1
start=$SECONDS

# phase FILE SECONDS COMMAND...: run COMMAND, its output added to OUT/FILE (- for log.txt alone), under a
# timeout of what is left of the budget; skipped (and said so) when less than SECONDS are left. A failure is
# reported, never fatal; the status is the command's (1 if skipped).
phase() {
    local file=$OUT/$1 need=$2 left=$((BUDGET_S - (SECONDS - start)))
    shift 2
    [ "$file" = "$OUT/-" ] && file=/dev/null
    if ((left < need)); then
        echo "## skipped: $* ($left s left, it needs about $need s)" | tee -a "$file"
        return 1
    fi
    echo "## $* ($left s left)"
    timeout --signal=INT --kill-after=10 $((left > 21 ? left - 20 : 1)) "$@" 2>&1 | tee -a "$file"  # never 0: no limit
    local rc=${PIPESTATUS[0]}
    ((rc == 0)) || echo "## failed or out of time (exit $rc): $*" | tee -a "$file"
    return "$rc"
}

{
    date -u +%FT%TZ
    git rev-parse HEAD 2>/dev/null || echo "commit ${RCL_COMMIT:-unknown} (no git history here)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
    $PY -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', \
torch.cuda.is_available())"
    $PY -c "import importlib.metadata as m; print(' '.join(f'{p} {m.version(p)}' for p in ('numpy', 'pandas', \
'scipy', 'torchvision', 'torchmetrics')))" 2>&1 | tail -n 1
    echo "PROFILE=$PROFILE STEPS=$STEPS TEST_IMAGES=$TEST_IMAGES G_E=$G_E BUDGET_S=$BUDGET_S"
} | tee "$OUT/env.txt"

# 1. The at-scale results: the one thing here that nothing else can give the book.
held_out="$RUNS/held-out"
rm -rf "$held_out" && mkdir -p "$held_out"
find "$PHOTOS/test" -maxdepth 1 -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.tif' \
    -o -iname '*.tiff' -o -iname '*.bmp' \) | LC_ALL=C sort | head -n "$TEST_IMAGES" \
    | while read -r f; do cp -p "$f" "$held_out/"; done
sets=(--set dataset=folder --set "data_dir=$PHOTOS" --set "g_e=$G_E" --set "runs_dir=$RUNS")
if [ -n "$STEPS" ]; then sets+=(--set "steps=$STEPS"); fi
if [ -n "${G_E_WEIGHTS:-}" ]; then sets+=(--set "g_e_weights=$G_E_WEIGHTS"); fi
note=${DATA_NOTE:-"$(basename "$(cd "$PHOTOS" && pwd)"): $(find "$PHOTOS/train" -maxdepth 1 -type f | wc -l) files in train/; held out, the first $(ls "$held_out" | wc -l) of test/ by name"}
if phase - 60 $PY -m rcl at-scale --profile "$PROFILE" --seeds ${SEEDS:-0} "${sets[@]}" --test-dir "$held_out" \
    --data-note "$note" \
    --out "$OUT/at-scale-$PROFILE-$(date -u +%Y%m%dT%H%M%SZ).json" --quiet; then
    rm -rf "$RUNS"  # only the small results file comes back
fi

# 2. The code's CUDA paths, tested (each test's cuda case).
if $PY -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    phase tests.txt 45 $PY -m pytest -q -p no:cacheprovider -k cuda tests/test_evaluate.py tests/test_distances.py \
        tests/test_noise.py tests/test_train.py tests/test_methods_dense.py
fi

# 3. Speed: RCL-EMD against N2N (the goal is within 1.5×), the rate against the peak, then what else might pay.
phase step.txt 40 $PY benchmarks/pretrain_step.py --profile "$PROFILE" --methods rcl-emd n2n --steps 20 \
    --set dataset=folder data_dir="$PHOTOS" g_e=random
phase flops.txt 40 $PY benchmarks/flops.py --profile "$PROFILE" --methods n2n rcl-emd consistency --steps 10
phase more.txt 30 $PY benchmarks/consistency_encoder.py --profile "$PROFILE"
phase more.txt 20 $PY benchmarks/evaluation.py --profile "$PROFILE" --size 512
apply_size=(); [ "$PROFILE" = smoke ] && apply_size=(--width 400 --height 300)  # the smoke check on a CPU: small
phase more.txt 30 $PY benchmarks/apply.py --profile "$PROFILE" "${apply_size[@]}"
phase flops.txt 90 $PY benchmarks/flops.py --profile "$PROFILE" --methods n2n rcl-emd --steps 10 \
    --compare-layouts --compile  # n2n first: a row is printed per method, and rcl-emd's cold compiles take longest

echo "## done in $((SECONDS - start)) s of $BUDGET_S"
ls -l "$OUT"
sleep 1  # log.txt's tee writes the last lines
