"""The CUDA tests: marked `cuda`, skipped where torch sees no GPU, so `make test` and CI are unchanged.

    pytest -m cuda tests/cuda                            # on a GPU machine (benchmarks/gpu/run.sh runs it)
    NMOD_CUDA_TESTS_ON_CPU=1 pytest -m cuda tests/cuda   # a dry run of the tests' own logic on the CPU

The dry run checks that the tests are written right (tolerances, graphs, workers); what is CUDA's
own (nested-tensor SDPA kernels, NCCL, torch's fused CUDA AdamW) is only exercised on a GPU.
"""
import os
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "benchmarks" / "gpu"))  # sample_vocab: a vocabulary from the SQuAD sample
sys.path.insert(0, str(HERE.parent / "executor"))  # toy.py: the executor tests' tiny regression graph

DRY_RUN_ON_CPU = os.environ.get("NMOD_CUDA_TESTS_ON_CPU") == "1"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available() or DRY_RUN_ON_CPU:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture
def device() -> torch.device:
    """The GPU; the CPU only in the dry run."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
