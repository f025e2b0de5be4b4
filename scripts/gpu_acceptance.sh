#!/usr/bin/env bash
# The GPU acceptance run, on an air-gapped CUDA machine (see docs/gpu_acceptance.md):
#     bash scripts/gpu_acceptance.sh [OUT_DIR]         # default: gpu_acceptance/
# Installs the wheels in scripts/gpu_wheels/gpu_wheels.tar.xz (made by scripts/fetch_gpu_wheels.sh) offline into the
# current Python, checks that r1video imports, then runs `r1video bench gpu`, which writes gpu_acceptance.json and
# gpu_acceptance.md to OUT_DIR. Set R1VIDEO_TINY=1 to run the tiny CPU version instead (what the tests run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-gpu_acceptance}"
python="${PYTHON:-python}"
archive="$here/gpu_wheels/gpu_wheels.tar.xz"
if [ ! -f "$archive" ]; then
    echo "missing $archive: run scripts/fetch_gpu_wheels.sh on a machine with PyPI access first" >&2
    exit 1
fi
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
tar -C "$wheels" -xJf "$archive"
# --no-deps: install exactly these files; the machine's torch, accelerate and peft stay as they are.
"$python" -m pip install --no-index --no-deps --disable-pip-version-check -q "$wheels"/*.whl
"$python" -m pip check || echo "(pip check lists requirements not met; the import check below is what counts)"
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$python" -c \
    "import torch, transformers, trl, r1video, r1video.trainer; print('r1video', r1video.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| trl', trl.__version__)"
tiny=()
if [ "${R1VIDEO_TINY:-0}" = 1 ]; then tiny=(--tiny); fi
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    "$python" -m r1video bench gpu "${tiny[@]}" --out "$out"
