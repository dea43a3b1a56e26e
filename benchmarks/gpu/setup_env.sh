#!/usr/bin/env bash
# The set-up step of benchmarks/gpu/run.sh: makes the venv that run.sh then uses.
#
#   bash benchmarks/gpu/setup_env.sh cuda VENV   # a machine where nvidia-smi shows a GPU
#   bash benchmarks/gpu/setup_env.sh cpu         # the README's CPU set-up (`make install`: .venv, torch==2.13.0 CPU)
#
# cuda: the venv is layered on a Python whose torch already sees the GPU (NMOD_GPU_BASE_PYTHON, else
# `python3` or `python` on the PATH): a .pth file puts that Python's site-packages behind the venv's
# own, so the image's CUDA build of torch (and transformers, pytest, ...) is used as it is, offline.
# The project goes in editable with its test extras, resolved with --no-index: what the base lacks
# comes from benchmarks/gpu/wheels/ (ruamel.yaml, pure Python; no registry is needed). Only where no
# Python here has a CUDA torch is torch installed from the package registry (PyPI's Linux wheel is
# its CUDA build; NMOD_GPU_TORCH_INDEX=URL picks another index), then checked to see the GPU.
# cpu: never installs a CUDA build: `make install` puts the CPU wheel of torch in first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mode="${1:?usage: setup_env.sh cuda VENV | cpu}"

if [ "$mode" = cpu ]; then
    make -C "$root" install
    exit 0
fi
[ "$mode" = cuda ] || { echo "setup_env.sh: mode must be 'cuda' or 'cpu', got '$mode'" >&2; exit 2; }
venv="${2:?usage: setup_env.sh cuda VENV}"

sees_gpu() {  # sees_gpu PYTHON: its torch imports and finds a CUDA device
    timeout 120 "$1" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1
}

base=""
for candidate in ${NMOD_GPU_BASE_PYTHON:-} python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && sees_gpu "$candidate"; then
        base="$(command -v "$candidate")"
        break
    fi
done

rm -rf "$venv"
if [ -n "$base" ]; then
    echo "set-up: layering $venv on $base, whose torch sees the GPU"
    # --without-pip: the base's own pip is reachable through the .pth (ensurepip may be missing there).
    "$base" -m venv --without-pip "$venv"
    site_dir="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    "$base" -c 'import site, sysconfig
paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
print("\n".join(dict.fromkeys(paths)))' > "$site_dir/_nmod_gpu_base.pth"
    if ! "$venv/bin/python" -m pip install -q --no-index --find-links "$here/wheels" --no-build-isolation \
            -e "$root[test]"; then
        echo "set-up: resolving the project and its test extras offline failed (above); installing the project" \
             "alone (--no-deps) and the shipped wheels; the import check below says what is still missing"
        "$venv/bin/python" -m pip install -q --no-index --no-deps --no-build-isolation -e "$root"
        "$venv/bin/python" -m pip install -q --no-index --no-deps "$here"/wheels/*.whl
    fi
else
    echo "set-up: no Python here has a torch that sees the GPU; installing torch from the package registry"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q ${NMOD_GPU_TORCH_INDEX:+--index-url "$NMOD_GPU_TORCH_INDEX"} "torch>=2.2,<3"
    if ! sees_gpu "$venv/bin/python"; then
        echo "set-up: the torch installed ($("$venv/bin/python" -c 'import torch; print(torch.__version__)')) does" \
             "not see the GPU; nvidia-smi says:" >&2
        nvidia-smi 2>&1 | head -5 >&2 || true
        echo "set-up: its CUDA build does not match the driver: set NMOD_GPU_TORCH_INDEX to an index with a" \
             "matching build, or NMOD_GPU_BASE_PYTHON to a Python whose torch sees the GPU" >&2
        exit 1
    fi
    "$venv/bin/python" -m pip install -q --find-links "$here/wheels" -e "$root[test]"
fi
"$venv/bin/python" -c "import nmod, nmod_nlp, transformers, pytest, torch; assert torch.cuda.is_available()"
echo "set-up: $venv ready"
