#!/usr/bin/env bash
# The GPU check in one command: textimg's training step on a GPU, against diffusers, and where
# its memory goes. Run from anywhere; every section prints its own table and wall time, and a
# failing section says so and the next one runs.
#
#   benchmarks/gpu_check.sh            # on a GPU machine (~10 min on one H100)
#   benchmarks/gpu_check.sh --toy      # the same sections at CPU size, in seconds (tested)
#
# Sections:
#   1. fused attention: tests/test_gpu_layout.py's CUDA test (math fallback forbidden)
#   2. textimg vs a parameter-matched diffusers UNet2DConditionModel for base64, base and sr,
#      both eager (as the earlier measurements), batch 32, 10 timed steps
#   3. batch sweep with torch.compile: base64 and sr, measured peak beside the --dry-run estimate
#   4. bf16 vs fp32 loss parity of the tiny recipe on the device
#   5. textimg train --dry-run for the three recipes (what the estimates say for this GPU)
# PYTHON picks the interpreter (default python3); GPU_MEMORY the dry run's memory (80GB).

set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PYTHON=${PYTHON:-python3}
GPU_MEMORY=${GPU_MEMORY:-80GB}

if [[ "${1:-}" == "--toy" ]]; then
    DEVICE=cpu RECIPES=(tiny tiny-sr) BATCH=2 STEPS=1 PARITY=4 PARITY_BATCH=4 COMPILE=auto
    SWEEPS=("tiny 2 4")
else
    DEVICE=cuda RECIPES=(base64 base sr) BATCH=32 STEPS=10 PARITY=300 PARITY_BATCH=16 COMPILE=on
    SWEEPS=("base64 128 256 512" "sr 16 32 48")
fi

section() {
    local title=$1
    shift
    echo
    echo "## $title"
    local started=$SECONDS
    "$@"
    local status=$?
    [[ $status -eq 0 ]] || echo "(section failed with exit status $status)"
    echo "(${title}: $((SECONDS - started)) s)"
}

echo "# textimg GPU check on $DEVICE"
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if ! "$PYTHON" -c "import diffusers" 2>/dev/null; then
    echo "diffusers is not installed: the diffusers baseline rows are skipped (pip install diffusers)"
fi

if [[ "$DEVICE" == cuda ]]; then
    section "fused attention kernels" "$PYTHON" -m pytest -q -p no:cacheprovider \
        tests/test_gpu_layout.py -k cuda
fi
section "textimg vs diffusers, eager" "$PYTHON" benchmarks/train.py --device "$DEVICE" \
    --recipes "${RECIPES[@]}" --batch-size "$BATCH" --steps "$STEPS" --compile off
for sweep in "${SWEEPS[@]}"; do
    read -r recipe batches <<<"$sweep"
    # shellcheck disable=SC2086  # the batch sizes are separate arguments
    section "batch sweep, $recipe" "$PYTHON" benchmarks/train.py --device "$DEVICE" \
        --recipes "$recipe" --sweep $batches --steps "$STEPS" --compile "$COMPILE"
done
section "bf16 vs fp32 loss parity" "$PYTHON" benchmarks/train.py --device "$DEVICE" \
    --parity "$PARITY" --batch-size "$PARITY_BATCH"
for recipe in "${RECIPES[@]}"; do
    section "dry run, $recipe" "$PYTHON" -m textimg train "$recipe" --dry-run \
        --gpu-memory "$GPU_MEMORY"
done
