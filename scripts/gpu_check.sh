#!/usr/bin/env bash
# Issue 18's GPU check in one command, for a machine with a CUDA GPU (docs/BENCHMARKS.md
# says how to prepare it): pytest -m gpu, the 256 px side by side with the NVlabs reference
# (when ./reference holds it), an end-to-end job through the real server, the mixed-precision
# stability runs, and the generator and training benchmarks; under 8 minutes in all.
# Writes $OUT/gpu_check.json (figures) and $OUT/gpu_check.log (everything printed).
#
#   bash scripts/gpu_check.sh                      # the full check on the GPU
#   bash scripts/gpu_check.sh --device cpu --tiny  # the same sections in seconds on a CPU
#   bash scripts/gpu_check.sh --only side_by_side --budget 240   # a rerun of part of it
# Extra arguments go to benchmarks/gpu_check.py (--help lists them).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
# The project runs from the checkout (no install); wheels unpacked into PYTHONPATH come first.
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
export PYTHONUNBUFFERED=1
# The reference builds its CUDA kernels here at first use; the log shows whether they compiled.
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-/tmp/torch-extensions}"
PY="${PYTHON:-python3}"
# REFERENCE_DIR: where the unpacked reference is (default ./reference; empty: none).
REFERENCE_DIR="${REFERENCE_DIR-reference}"
REFERENCE=()
if [ -n "$REFERENCE_DIR" ] && [ -f "$REFERENCE_DIR/training/networks.py" ]; then
    REFERENCE=(--reference "$REFERENCE_DIR")
else
    echo "no reference in '${REFERENCE_DIR}': the side by side is skipped (docs/BENCHMARKS.md says how to fetch it)"
fi
"$PY" benchmarks/gpu_check.py --out "$OUT" ${REFERENCE[@]+"${REFERENCE[@]}"} "$@"
status=$?
echo "gpu_check exit $status; results in $OUT"
exit $status
