"""Evaluating what training produced: from a checkpoint holding more modules than the eval graph, and the final weights."""
import pytest
import torch

import nmod
from nmod.backends.pytorch.checkpoint import CheckpointMismatchError, load_latest
from nmod.callbacks import CheckpointCallback
from nmod.testing import ToyEncoder
from toy import ToyData, ToyMLP, build


def test_infer_loads_a_checkpoint_that_also_holds_the_loss_module(tmp_path):
    nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
    data, mlp, loss = build()
    nf.train([loss], "adam", {"max_steps": 3, "lr": 0.01},
             callbacks=[CheckpointCallback(str(tmp_path), step_freq=3)])
    trained = {k: v.clone() for k, v in mlp.state_dict().items()}

    torch.manual_seed(123)
    fresh = ToyMLP()  # other weights, and another auto-generated name than the saved one
    x, _ = ToyData(shuffle=False)()
    (preds,) = nf.infer([fresh(x=x)], checkpoint_dir=str(tmp_path))
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, trained[key]), key
    mlp.eval()
    expected = mlp(x=ToyData(shuffle=False).dataset.tensors[0])
    assert torch.allclose(torch.cat(preds), expected.detach())


def test_a_graph_module_missing_from_the_checkpoint_is_still_an_error(tmp_path):
    nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
    _, _, loss = build()
    nf.train([loss], "adam", {"max_steps": 1, "lr": 0.01}, callbacks=[CheckpointCallback(str(tmp_path), step_freq=1)])
    with pytest.raises(CheckpointMismatchError, match=r"modules not in the checkpoint \['ToyEncoder'\]"):
        load_latest(tmp_path, [ToyMLP(), ToyEncoder(name="ToyEncoder")])
    with pytest.raises(CheckpointMismatchError, match="does not fit"):
        load_latest(tmp_path, [ToyMLP(hidden=8)])


def test_an_evaluator_also_scores_the_final_weights_of_a_run_shorter_than_its_period():
    from nmod.callbacks import EvaluatorCallback

    nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
    _, _, loss = build()
    counted = EvaluatorCallback([loss], lambda v, g: g.setdefault("n", []).extend(v[loss.name]),
                                lambda g: {"batches": len(g["n"])}, eval_step=100, eval_at_start=True)
    nf.train([loss], "adam", {"max_steps": 3, "lr": 0.01}, callbacks=[counted])
    assert [step for step, _ in counted.results] == [0, 3]
    on_period = EvaluatorCallback([loss], lambda v, g: None, lambda g: {}, eval_step=3)
    nf.train([loss], "adam", {"max_steps": 3, "lr": 0.01}, callbacks=[on_period])
    assert [step for step, _ in on_period.results] == [3]  # the last evaluation was already at the end
