#!/usr/bin/env bash
# Create ./.venv and install Latent Studio into it (editable), with torch pinned.
#   scripts/setup.sh            the server + CLI, plus bpy to build the Blender extension zip
#   scripts/setup.sh --dev      the same plus the test tools
# TORCH_SPEC overrides the torch requirement (default torch==2.13.0: pip takes the CPU
# wheel where one is provided locally; an unpinned torch would pull GBs of CUDA packages).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=blender
[ "${1:-}" = "--dev" ] && EXTRAS=dev

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" "$TORCH_SPEC"
"${PIP[@]}" -e ".[$EXTRAS]"
echo "Latent Studio installed in $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")'))"
