"""Two gloo processes on the same global batch give the same weights as one process."""
import os
import socket
import sys
from pathlib import Path

import torch

from nmod.testing import run_torchrun

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp_path, nproc, batch):
    out = tmp_path / f"out-{nproc}.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", str(HERE / "ddp_worker.py"), str(out), str(batch)]
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    result = run_torchrun(cmd, env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return torch.load(out)


def test_two_process_gloo_equals_one_process(tmp_path):
    single = run(tmp_path, 1, 8)
    double = run(tmp_path, 2, 4)
    assert single["world_size"] == 1 and double["world_size"] == 2
    for k, v in single["weights"].items():
        torch.testing.assert_close(double["weights"][k], v, rtol=1e-5, atol=1e-6)
    # inference gathered from both ranks comes back in dataset order, without duplicates
    assert double["preds"].shape == (32,)
    torch.testing.assert_close(double["preds"], single["preds"], rtol=1e-5, atol=1e-6)
    # evaluation saw every batch of both ranks once: 32 samples in batches of 4 per rank, or 8 on one
    assert double["eval"][0][1]["n_batches"] == 8 and single["eval"][0][1]["n_batches"] == 4
