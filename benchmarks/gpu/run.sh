#!/usr/bin/env bash
# One command on a GPU machine: set-up, the CUDA tests, the throughput benchmark; < 8 min on one H100.
#
#   bash benchmarks/gpu/run.sh                          # bare machine, no internet needed
#   NMOD_GPU_SKIP_SETUP=1 bash benchmarks/gpu/run.sh    # reuse the venv from an earlier run
#
# Steps, each under `timeout` (and all of them under one deadline, NMOD_GPU_DEADLINE_S, default 480 s):
#   1. set-up: where nvidia-smi lists a GPU, a venv (build/gpu-venv) on the Python whose torch sees
#      it, plus the project and its test extras (benchmarks/gpu/setup_env.sh); without a GPU, the
#      README's CPU set-up (`make install`). Then the versions and the GPU are printed.
#   2. `pytest -m cuda tests/cuda`: packed vs padded attention, AMP levels and the loss scaler, NCCL
#      DDP, fused AdamW / apex, on the GPU.
#   3. benchmarks/gpu/throughput.py: nmod vs transformers on a Megatron BERT-large shape, with MFU.
#   4. a summary; the exit status is 1 if a step failed or timed out.
# Without a GPU, steps 2 and 3 print "skipped: no CUDA" (and no CUDA build of torch is installed).
#
# Environment: OUT (a folder: run.log, summary.txt, pytest-cuda.xml, throughput.json and .md go
# there), NMOD_GPU_SKIP_SETUP=1, NMOD_GPU_PYTHON (use this Python, no set-up), NMOD_GPU_VENV,
# NMOD_GPU_BASE_PYTHON and NMOD_GPU_TORCH_INDEX (see setup_env.sh), NMOD_GPU_FORCE_NO_CUDA=1 (act as
# if there were no GPU), NMOD_GPU_DEADLINE_S, NMOD_GPU_{SETUP,TEST,BENCH}_TIMEOUT (seconds),
# NMOD_GPU_BENCH_ARGS (more arguments for throughput.py).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

out="${OUT:-}"
tee_pid=""
if [ -n "$out" ]; then
    mkdir -p "$out"
    exec > >(tee -a "$out/run.log") 2>&1
    tee_pid=$!
fi

deadline="${NMOD_GPU_DEADLINE_S:-480}"
summary=()
failed=0

# run_step NAME LIMIT_S COMMAND...: runs it under timeout (never past the deadline), records the outcome.
run_step() {
    local name="$1" limit="$2"
    shift 2
    local left=$((deadline - SECONDS))
    if [ "$left" -lt "$limit" ]; then limit="$left"; fi
    if [ "$limit" -le 5 ]; then
        echo "==== $name: not run: the ${deadline}s deadline is used up"
        summary+=("$name: NOT RUN (deadline ${deadline}s used up)")
        failed=1
        return 0
    fi
    echo "==== $name (timeout ${limit}s): $*"
    local start=$SECONDS rc=0
    timeout --kill-after=15 "$limit" "$@" || rc=$?
    local took=$((SECONDS - start))
    if [ "$rc" -eq 0 ]; then
        summary+=("$name: ok (${took}s)")
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        summary+=("$name: TIMED OUT after ${limit}s")
        failed=1
    else
        summary+=("$name: FAILED (exit $rc, ${took}s)")
        failed=1
    fi
}

skip_step() {
    echo "==== $1: skipped: no CUDA"
    summary+=("$1: skipped: no CUDA")
}

finish() {
    echo
    echo "==== summary (${SECONDS}s in all)"
    printf '%s\n' "${summary[@]}"
    if [ -n "$out" ]; then printf '%s\n' "${summary[@]}" > "$out/summary.txt"; fi
    if [ "$failed" -ne 0 ]; then echo "RESULT: FAILED"; else echo "RESULT: ok"; fi
    if [ -n "$tee_pid" ]; then  # let tee write the last lines into run.log before the folder is read
        exec >&- 2>&-
        wait "$tee_pid" 2>/dev/null || true
    fi
    exit "$failed"
}

cuda=0
if [ "${NMOD_GPU_FORCE_NO_CUDA:-0}" != 1 ] && command -v nvidia-smi >/dev/null 2>&1 \
        && timeout 30 nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    cuda=1
fi
echo "benchmarks/gpu/run.sh in $root: $([ "$cuda" = 1 ] && echo "GPU found by nvidia-smi" || echo "no GPU (no CUDA)")"

# ---- 1. set-up ----------------------------------------------------------------------------------------
if [ -n "${NMOD_GPU_PYTHON:-}" ]; then
    py="$NMOD_GPU_PYTHON"
    summary+=("set-up: skipped (NMOD_GPU_PYTHON=$py)")
else
    if [ "$cuda" = 1 ]; then venv="${NMOD_GPU_VENV:-build/gpu-venv}"; else venv="${NMOD_GPU_VENV:-.venv}"; fi
    py="$venv/bin/python"
    if [ "${NMOD_GPU_SKIP_SETUP:-0}" = 1 ] && [ -x "$py" ]; then
        summary+=("set-up: skipped (NMOD_GPU_SKIP_SETUP=1, $venv exists)")
    elif [ "$cuda" = 1 ]; then
        run_step "set-up (cuda venv $venv)" "${NMOD_GPU_SETUP_TIMEOUT:-150}" bash "$here/setup_env.sh" cuda "$venv"
    else
        if [ "$venv" != .venv ]; then echo "without a GPU the set-up is the README's: .venv ($venv ignored)"; fi
        py=".venv/bin/python"
        run_step "set-up (README's CPU set-up, make install)" "${NMOD_GPU_SETUP_TIMEOUT:-900}" bash "$here/setup_env.sh" cpu
    fi
fi
if ! [ -x "$py" ] && ! command -v "$py" >/dev/null 2>&1; then
    echo "no Python at $py: the set-up failed (above)"
    summary+=("python: MISSING ($py)")
    failed=1
    finish
fi

run_step "versions" 120 "$py" - <<'EOF'
import platform, sys
import torch, transformers
import nmod
from nmod.optim import apex_available
print(f"python {platform.python_version()} ({sys.executable})")
nccl = "-"
if torch.cuda.is_available():
    try:
        v = torch.cuda.nccl.version()
        nccl = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception as err:  # a torch built without NCCL
        nccl = f"unavailable ({err})"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, NCCL {nccl}")
print(f"transformers {transformers.__version__}; nmod {nmod.__version__}; NVIDIA apex: "
      f"{'imports' if apex_available() else 'not importable'}")
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"GPU {i}: {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.1f} GiB, "
              f"{p.multi_processor_count} multiprocessors")
else:
    print("GPU: none (torch.cuda.is_available() is False)")
EOF
if [ "$cuda" = 1 ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
    if ! timeout 120 "$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        echo "nvidia-smi lists a GPU but the torch of $py does not see it: the GPU steps cannot run"
        summary+=("torch sees the GPU: NO ($py)")
        failed=1
        cuda=0
    fi
fi

# ---- 2. the CUDA tests ----------------------------------------------------------------------------------
if [ "$cuda" = 1 ]; then
    run_step "pytest -m cuda" "${NMOD_GPU_TEST_TIMEOUT:-200}" "$py" -m pytest -m cuda tests/cuda -q -rs \
        -p no:cacheprovider ${out:+--junitxml "$out/pytest-cuda.xml"}
else
    skip_step "pytest -m cuda"
fi

# ---- 3. throughput --------------------------------------------------------------------------------------
if [ "$cuda" = 1 ]; then
    bench_limit="${NMOD_GPU_BENCH_TIMEOUT:-300}"
    left=$((deadline - SECONDS))
    if [ "$left" -lt "$bench_limit" ]; then bench_limit="$left"; fi
    # No side starts in the last 75 s, so that the JSON and the table are written before the timeout.
    # shellcheck disable=SC2086
    run_step "throughput" "$bench_limit" "$py" benchmarks/gpu/throughput.py --time_budget_s "$((bench_limit - 75))" \
        ${out:+--out "$out"} ${NMOD_GPU_BENCH_ARGS:-}
else
    skip_step "throughput"
fi

finish
