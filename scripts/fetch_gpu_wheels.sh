#!/usr/bin/env bash
# Make scripts/gpu_wheels/gpu_wheels.tar.xz: the wheels of scripts/gpu_wheels.txt plus r1video's own, for the
# air-gapped GPU machine. Run anywhere with PyPI access (the target platform is named explicitly):
#     bash scripts/fetch_gpu_wheels.sh [DEST] [PYTHON_VERSION]      # defaults: scripts/gpu_wheels, 3.12
# Each wheel is re-zipped without compression (a wheel's RECORD hashes the files, not the zip, so it stays valid)
# and the set is packed in one tar.xz: 47 MiB instead of 74 MiB (measured, Python 3.12). Fails above 64 MiB.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/gpu_wheels}"
python_version="${2:-3.12}"
abi="cp${python_version/./}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grep -v '^#' "$here/gpu_wheels.txt" | grep -v '^$' > "$work/requirements.txt"
pip download --no-deps --python-version "$python_version" --implementation cp --abi "$abi" --abi abi3 --abi none \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform any --only-binary=:all: -r "$work/requirements.txt" -d "$work/wheels"
pip wheel --no-deps --no-build-isolation -w "$work/wheels" "$here/.."  # r1video itself (pure Python)
python - "$work/wheels" <<'PY'
import pathlib, sys, zipfile
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    stored = wheel.with_suffix(".stored")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_STORED)
    stored.replace(wheel)
PY
mkdir -p "$dest"
tar -C "$work/wheels" -cf - . | xz -6 -T0 > "$dest/gpu_wheels.tar.xz"
bytes=$(stat -c %s "$dest/gpu_wheels.tar.xz")
echo "$dest/gpu_wheels.tar.xz: $(ls "$work/wheels" | wc -l) wheels, $((bytes / 1048576)) MiB"
if [ "$bytes" -gt $((64 * 1048576)) ]; then echo "over the 64 MiB limit" >&2; exit 1; fi
