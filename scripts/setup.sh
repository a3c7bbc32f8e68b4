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
# Installing again is only needed when what we would install changed: the stamp records
# the requirements of the last install, so a restart (`make run`) costs no pip run.
# The dev install holds everything the plain one does.
STAMP="$VENV/.latent-studio-setup"
WANT="$(cat pyproject.toml; echo "$TORCH_SPEC")"
if [ -f "$STAMP" ] && [ -x "$VENV/bin/latent-studio" ] && [ "$(tail -n +2 "$STAMP")" = "$WANT" ]; then
    HAVE=$(head -n 1 "$STAMP")
    if [ "$HAVE" = "$EXTRAS" ] || [ "$HAVE" = dev ]; then
        exit 0
    fi
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" "$TORCH_SPEC"
"${PIP[@]}" -e ".[$EXTRAS]"
printf '%s\n%s' "$EXTRAS" "$WANT" > "$STAMP"
echo "Latent Studio installed in $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")'))"
