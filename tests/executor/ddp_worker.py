"""Run under torchrun: trains the toy graph on 2 CPU processes (gloo) and saves what rank 0 sees."""
import sys

import torch

import nmod
from nmod.callbacks import EvaluatorCallback
from toy import build

out_path, per_rank_batch = sys.argv[1], int(sys.argv[2])
nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
data, mlp, loss = build(n=32, batch_size=per_rank_batch, shuffle=False)
seen = []
evaluator = EvaluatorCallback(
    [loss], user_iter_callback=lambda v, g: g.setdefault("losses", []).extend(v[loss.name]),
    user_epochs_done_callback=lambda g: {"n_batches": len(g["losses"])}, eval_step=3)
nf.train([loss], "adam", {"max_steps": 3, "lr": 0.01, "grad_norm_clip": 0.5}, callbacks=[evaluator])
pred = mlp(x=data()[0])
(preds,) = nf.infer([pred])
if nf.global_rank == 0:
    torch.save({"weights": mlp.state_dict(), "preds": torch.cat(preds), "world_size": nf.world_size,
                "eval": evaluator.results}, out_path)
