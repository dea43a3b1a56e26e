"""Run under torchrun with one process: nmod's DDP path on NCCL, forced on for a world of one.

nmod wraps the graph in DistributedDataParallel only when WORLD_SIZE > 1, and NCCL refuses two ranks
on one GPU, so a one-GPU machine can run DDP only as a world of one: the process group is NCCL's and
the executor's context is told it is distributed, so it wraps the graph in DDP (device_ids, gradient
all-reduce through NCCL buckets), all-reduces the loss and the stop flag, uses no_sync under
gradient accumulation and gathers inference results with all_gather_object.
"""
import sys

import torch
import torch.distributed as dist

import nmod
from nmod.backends.pytorch.distributed import DistributedContext
from nmod.callbacks import Callback
from toy import build


class WorldOfOne(DistributedContext):
    @property
    def enabled(self) -> bool:
        return True


class Wrapped(Callback):
    def __init__(self):
        self.types = set()

    def on_step_end(self, state):
        self.types.add(type(state.actions._run.model).__name__)


out_path = sys.argv[1]
cuda = torch.cuda.is_available()  # gloo on the CPU: the tests' dry run only
nf = nmod.NeuralModuleFactory(placement="gpu" if cuda else "cpu", random_seed=0, progress_bar=False)
assert nf.world_size == 1
dist.init_process_group("nccl" if cuda else "gloo", rank=0, world_size=1, device_id=nf.device if cuda else None)
nf.dist = nf.actions.dist = WorldOfOne(rank=0, local_rank=0, world_size=1)
data, mlp, loss = build(n=32, batch_size=4, shuffle=True)
seen = Wrapped()
nf.train([loss], "adam", {"max_steps": 6, "lr": 0.01, "grad_norm_clip": 0.5}, callbacks=[seen], batches_per_step=2)
(preds,) = nf.infer([mlp(x=data()[0])])
torch.save({"weights": {k: v.cpu() for k, v in mlp.state_dict().items()}, "preds": torch.cat(preds).cpu(),
            "backend": dist.get_backend(), "wrapped": sorted(seen.types)}, out_path)
dist.destroy_process_group()
