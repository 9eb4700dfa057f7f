#!/usr/bin/env bash
# bench/gpu_throughput.py on a GPU box that has PyTorch and transformers but no internet.
#
#   here, with a package index:      bash bench/gpu_box.sh wheels
#   there, in a copy of the tree:    bash bench/gpu_box.sh [gpu_throughput.py arguments]
#
# `wheels` downloads into wheels/ (git-ignored) the wheels of every dependency in pyproject.toml except
# torch and transformers, with their own dependencies, for the box's Python (PYVER, default 3.12) on x86-64
# Linux, plus setuptools to build evalkit there. SKIP="name ..." leaves out packages the box already has, for
# a smaller folder to carry (pip keeps a package the box has whenever its version fits).
# There, the script prints the machine, installs evalkit and what it lacks from wheels/ alone (pip install
# --no-index --find-links wheels -e .; if pip finds no consistent set among the box's packages and the
# wheels, it installs evalkit and the wheels of packages the box lacks without dependency checks, and says
# so), and runs the bench under a timeout (BENCH_TIMEOUT seconds, default 540, so that the whole call fits
# in 10 minutes). Exit status: the bench's (124 at the timeout); 3 when the install failed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-wheels}"

if [[ "${1:-}" == "wheels" ]]; then
    PYVER="${PYVER:-3.12}"
    mapfile -t deps < <("$PYTHON" -c '
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(d for d in deps if re.split(r"[<>=!~;\[ ]", d)[0].lower() not in ("torch", "transformers")))
')
    platforms=()
    for p in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 manylinux1; do
        platforms+=(--platform "${p}_x86_64")
    done
    mkdir -p "$WHEELS"
    "$PYTHON" -m pip download -q -d "$WHEELS" --only-binary=:all: --python-version "$PYVER" \
        --implementation cp "${platforms[@]}" "${deps[@]}" "setuptools>=68"
    for name in ${SKIP:-}; do  # wheel file names spell a project name lower-case with underscores
        stem="$(echo "$name" | tr '[:upper:]' '[:lower:]' | sed -E 's/[-_.]+/_/g')"
        find "$WHEELS" -maxdepth 1 -iname "${stem}-*.whl" -delete
    done
    echo "$WHEELS/: $(find "$WHEELS" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1), Python $PYVER"
    exit 0
fi

"$PYTHON" -c '
import platform, torch, transformers
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
print(f"box: Python {platform.python_version()}, torch {torch.__version__}, "
      f"transformers {transformers.__version__}, {gpu}")
'
if "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" --no-cache-dir -e .; then
    echo "gpu_box.sh: evalkit installed from $WHEELS/ with its dependencies"
else  # e.g. SKIP left out a package the box has at a version that evalkit's dependencies refuse
    echo "gpu_box.sh: that install failed (above); installing evalkit and the wheels of the packages" \
        "the box lacks, without dependency checks" >&2
    mapfile -t lacking < <("$PYTHON" -c '
import importlib.metadata, pathlib, sys
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    try:
        importlib.metadata.version(wheel.name.split("-")[0])
    except importlib.metadata.PackageNotFoundError:
        print(wheel)
' "$WHEELS")
    if ! { [[ ${#lacking[@]} -eq 0 ]] || "$PYTHON" -m pip install -q --no-index --no-deps "${lacking[@]}"; } ||
        ! "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" --no-deps -e .; then
        echo "gpu_box.sh: installing evalkit from $WHEELS/ failed (a wheel missing? see pip above)" >&2
        exit 3
    fi
fi
export PYTHONUNBUFFERED=1
exec timeout --kill-after=20 "${BENCH_TIMEOUT:-540}" "$PYTHON" bench/gpu_throughput.py "$@"
