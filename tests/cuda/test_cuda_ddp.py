"""A one-process NCCL DDP run equals the non-distributed run on the GPU (weights and inference)."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nmod
from toy import build

pytestmark = pytest.mark.cuda
HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_process_nccl_ddp_equals_no_ddp(tmp_path, device):
    out = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", str(HERE / "ddp_nccl_worker.py"), str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "executor"),
                                                         os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ddp = torch.load(out)
    assert ddp["backend"] == ("nccl" if device.type == "cuda" else "gloo")  # gloo: the dry run on the CPU
    assert ddp["wrapped"] == ["DistributedDataParallel"]

    nf = nmod.NeuralModuleFactory(placement=device.type, random_seed=0, progress_bar=False)
    data, mlp, loss = build(n=32, batch_size=4, shuffle=True)
    nf.train([loss], "adam", {"max_steps": 6, "lr": 0.01, "grad_norm_clip": 0.5}, batches_per_step=2)
    (preds,) = nf.infer([mlp(x=data()[0])])
    for name, value in mlp.state_dict().items():
        torch.testing.assert_close(ddp["weights"][name], value.cpu(), rtol=1e-6, atol=1e-7, msg=name)
    torch.testing.assert_close(ddp["preds"], torch.cat(preds).cpu(), rtol=1e-6, atol=1e-7)
    # and training moved the weights
    _, fresh, _ = build(n=32, batch_size=4, shuffle=True)
    assert not torch.equal(fresh.state_dict()["fc1.weight"], mlp.state_dict()["fc1.weight"].cpu())
