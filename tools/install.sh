#!/usr/bin/env bash
# Install mmcyc and its whole OpenMMLab stack on a fresh CPU machine.
#
#   bash tools/install.sh            # into ./.venv (created if absent)
#   VENV=/path/to/env bash tools/install.sh
#   VENV=none bash tools/install.sh  # into the Python that is active now
#
# The order matters (see requirements/*.txt for why each pin is what it is):
#   1. torch (CPU wheel), setuptools < 82 and numpy 2.3 -- mmcv's build imports torch;
#   2. mmcv 2.1.0 built from source against that torch (6-34 minutes on 2 cores the
#      first time; pip caches the wheel, so later installs take about a minute);
#   3. mmengine, mmsegmentation, mmpretrain, pydensecrf2 and the rest; torchvision without its
#      dependencies (see tools/patch_torchvision.py);
#   4. mmcyc itself, editable, then `pip check`.
# On a GPU machine install the CUDA torch/torchvision pair you need first and run
# with SKIP_TORCH=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ "$VENV" != "none" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        echo "[mmcyc install] creating virtual environment $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    PY="$VENV/bin/python"
else
    PY="$(command -v "$PYTHON")"
fi
PIP=("$PY" -m pip install --disable-pip-version-check)

step() { echo "[mmcyc install] $(date +%H:%M:%S) $*"; }

step "1/4 torch, setuptools, numpy"
if [ "${SKIP_TORCH:-0}" = "1" ]; then
    "${PIP[@]}" $(grep -v -E '^(torch|#)' requirements/build.txt)
else
    "${PIP[@]}" -r requirements/build.txt
fi

step "2/4 mmcv 2.1.0 from source (first build 6-34 min on 2 cores, cached afterwards)"
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
    step "    mmcv 2.1.0 with ops already installed"
else
    MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-2}" \
        "${PIP[@]}" --no-build-isolation -r requirements/mmcv.txt
fi

step "3/4 mmengine, mmsegmentation, mmpretrain, test tools, dense CRF"
"${PIP[@]}" -r requirements/runtime.txt -r requirements/tests.txt -r requirements/optional.txt
if [ "${SKIP_TORCH:-0}" != "1" ]; then
    # The registry has only a CUDA build of torchvision; install it without pulling
    # another torch and make its fake-op registrations tolerate a CPU torch.
    "${PIP[@]}" --no-deps -r requirements/torchvision.txt
    "$PY" tools/patch_torchvision.py
fi

step "4/4 mmcyc (editable)"
"${PIP[@]}" --no-deps --no-build-isolation -e .
"$PY" -m pip check
"$PY" -c "import mmcyc, mmseg, mmpretrain.models; print('mmcyc', mmcyc.__version__, 'ready')"
