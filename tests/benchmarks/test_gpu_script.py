"""benchmarks/gpu on the CPU: run.sh's non-GPU parts, its exit status, and throughput.py's smoke mode."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / "benchmarks" / "gpu"
sys.path.insert(0, str(GPU))


def run_script(tmp_path, **env):
    """`bash benchmarks/gpu/run.sh` as if no GPU were there, without redoing the set-up."""
    env = {**os.environ, "OUT": str(tmp_path / "out"), "NMOD_GPU_FORCE_NO_CUDA": "1", "NMOD_GPU_SKIP_SETUP": "1",
           **({} if (ROOT / ".venv" / "bin" / "python").exists() else {"NMOD_GPU_PYTHON": sys.executable}), **env}
    return subprocess.run(["bash", str(GPU / "run.sh")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def test_run_sh_without_cuda_skips_the_gpu_steps_and_exits_0(tmp_path):
    result = run_script(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "==== pytest -m cuda: skipped: no CUDA" in out and "==== throughput: skipped: no CUDA" in out
    assert "torch " in out and "GPU: none" in out  # the versions step ran
    summary = (tmp_path / "out" / "summary.txt").read_text().splitlines()
    assert summary[-2:] == ["pytest -m cuda: skipped: no CUDA", "throughput: skipped: no CUDA"]
    assert any(line.startswith("versions: ok") for line in summary)
    assert "RESULT: ok" in out and (tmp_path / "out" / "run.log").is_file()


def test_run_sh_exits_non_zero_when_a_step_fails(tmp_path):
    result = run_script(tmp_path, NMOD_GPU_PYTHON=str(tmp_path / "no-python"))
    assert result.returncode == 1
    assert "python: MISSING" in result.stdout and "RESULT: FAILED" in result.stdout


def test_throughput_smoke_mode_prints_the_json_line_and_writes_the_files(tmp_path):
    cmd = [sys.executable, str(GPU / "throughput.py"), "--tiny", "--device", "cpu", "--out", str(tmp_path),
           "--sides", "nmod_bf16,hf_bert_dynamic_bf16"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"benchmark", "machine", "peak_tflops", "peak_source", "shape", "flops_formula", "batch_size", "steps",
            "data", "sides", "ratios", "goals", "complete"} <= set(report)
    assert report["complete"] and report["peak_tflops"] is None and report["machine"]["gpu"] is None
    sides = {s["side"]: s for s in report["sides"]}
    assert set(sides) == {"nmod_bf16", "hf_bert_dynamic_bf16"}
    for side in sides.values():
        assert side["error"] is None and side["not_run"] is None
        assert side["features"] == 2 * 4 and side["features_per_s"] > 0 and side["tokens_per_s"] > 0
        assert side["peak_memory_gib"] > 0 and side["tflops"] > 0 and side["mfu"] is None
    nmod, hf = sides["nmod_bf16"], sides["hf_bert_dynamic_bf16"]
    assert nmod["real_tokens"] == hf["real_tokens"]  # the same batches
    assert nmod["positions_computed"] == nmod["real_tokens"] < hf["positions_computed"]  # packed vs padded
    assert nmod["ratios"]["hf_bert_dynamic_bf16"] == pytest.approx(nmod["features_per_s"] / hf["features_per_s"])
    saved = json.loads((tmp_path / "throughput.json").read_text())
    assert saved["complete"] and [s["side"] for s in saved["sides"]] == ["nmod_bf16", "hf_bert_dynamic_bf16"]
    table = (tmp_path / "throughput.md").read_text()
    assert "| nmod_bf16 | bf16 | packed |" in table and "| goal | value | target | met |" in table


def test_flops_formula_and_peaks_by_gpu_name():
    import throughput as T

    p = 24 * (4 * 1024**2 + 2 * 1024 * 4096) + 2 * 1024
    assert T.LARGE.matmul_params == p == 301_991_936
    assert T.LARGE.training_flops([384, 100]) == 6 * p * 484 + 12 * 24 * 1024 * (384**2 + 100**2)
    assert T.LARGE.padded_vocab_size == 30592
    assert T.peak_for_gpu("NVIDIA H100 80GB HBM3")[0] == 989.4
    assert T.peak_for_gpu("NVIDIA H100 PCIe")[0] == 756.0
    assert T.peak_for_gpu("NVIDIA H200")[0] == 989.4
    assert T.peak_for_gpu("NVIDIA A100-SXM4-80GB")[0] == 312.0
    assert T.peak_for_gpu("NVIDIA GeForce RTX 4090")[0] is None
    names = [s.name for s in T.all_sides()]
    assert names[0] == "nmod_bf16" and names[5] == "nmod_bf16_compile" and names[-1] == "nmod_fp16_compile"
    assert len(names) == len(set(names)) == 12
