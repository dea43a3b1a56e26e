"""Executor behaviour on a tiny graph: accumulation, resume, precision, bad input, NaN handling."""

import inspect
import logging

import pytest
import torch

import nmod
from nmod.backends.pytorch import checkpoint as ckpt
from nmod.actions import Actions
from nmod.backends.pytorch.actions import NaNLossError, PtActions
from nmod.backends.pytorch.precision import DynamicLossScaler
from nmod.callbacks import Callback, CheckpointCallback, EvaluatorCallback, SimpleLossLoggerCallback
from nmod.core import Graph, GraphError
from nmod.optim import get_lr_policy
from nmod_nlp.modules.dropout import Dropout
from toy import ToyData, ToyMLP, ToyMSE, build


def factory(**kw):
    return nmod.NeuralModuleFactory(random_seed=0, progress_bar=False, **kw)


def weights(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_batches_per_step_matches_bigger_batch():
    nf = factory()
    _, mlp_a, loss_a = build(n=32, batch_size=8, shuffle=False)
    nf.train([loss_a], "sgd", {"max_steps": 3, "lr": 0.05})
    _, mlp_b, loss_b = build(n=32, batch_size=2, shuffle=False)
    nf.train([loss_b], "sgd", {"max_steps": 3, "lr": 0.05}, batches_per_step=4)
    for k, v in weights(mlp_a).items():
        torch.testing.assert_close(weights(mlp_b)[k], v, rtol=1e-5, atol=1e-6)
    # and training really moved the weights
    _, fresh, _ = build(n=32, batch_size=8, shuffle=False)
    assert not torch.equal(weights(fresh)["fc1.weight"], weights(mlp_a)["fc1.weight"])


class StopAt(Callback):
    class Killed(Exception):
        pass

    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            raise StopAt.Killed()


def run_with_resume(tmp_path, kill_at=None, lr_policy="WarmupAnnealing", extra_callbacks=(),
                    dropout_cls=torch.nn.Dropout):
    nf = factory()
    _, mlp, loss = build(n=24, batch_size=4, shuffle=True, dropout=0.3, dropout_cls=dropout_cls)
    callbacks = [CheckpointCallback(str(tmp_path), step_freq=4), *extra_callbacks]
    if kill_at:
        callbacks.append(StopAt(kill_at))
    nf.train([loss], "adam_w", {"num_epochs": 3, "lr": 1e-2, "weight_decay": 0.01, "grad_norm_clip": 1.0},
             callbacks=callbacks, lr_policy=lr_policy, batches_per_step=1)
    return mlp


@pytest.mark.parametrize("dropout_cls", [torch.nn.Dropout, Dropout], ids=["torch", "nmod_nlp"])
def test_kill_and_resume_matches_uninterrupted_bit_for_bit(tmp_path, dropout_cls):
    """Also with nmod_nlp's Dropout, whose CPU masks come from 64-bit draws of the same generator."""
    reference = run_with_resume(tmp_path / "ref", dropout_cls=dropout_cls)
    with pytest.raises(StopAt.Killed):  # mid-epoch 2 (6 steps/epoch), last checkpoint at 8
        run_with_resume(tmp_path / "run", kill_at=10, dropout_cls=dropout_cls)
    assert ckpt.latest_checkpoint(tmp_path / "run").name == "step-00000008"
    torch.manual_seed(1234)  # a different RNG state before resuming must not matter
    resumed = run_with_resume(tmp_path / "run", dropout_cls=dropout_cls)
    for k, v in weights(reference).items():
        assert torch.equal(weights(resumed)[k], v), k


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    nf = factory()
    _, mlp, loss = build()
    nf.train([loss], "adam", {"max_steps": 2, "lr": 1e-2}, callbacks=[CheckpointCallback(str(tmp_path), step_freq=1)])
    good = ckpt.latest_checkpoint(tmp_path)
    calls = {"n": 0}
    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError):
        nf.train([loss], "adam", {"max_steps": 3, "lr": 1e-2}, callbacks=[CheckpointCallback(str(tmp_path), step_freq=1)])
    monkeypatch.setattr(torch, "save", real_save)
    assert ckpt.latest_checkpoint(tmp_path) == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001", "step-00000002"]


def test_mismatched_checkpoint_folder_is_refused_before_training(tmp_path):
    nf = factory()
    _, mlp, loss = build()
    nf.train([loss], "adam", {"max_steps": 1, "lr": 1e-2}, callbacks=[CheckpointCallback(str(tmp_path))])
    data, _, _ = build()
    x, y = data()
    other = ToyMLP(hidden=8, name="OtherMLP")
    loss2 = ToyMSE(name="OtherLoss")(pred=other(x=x), y=y)
    before = weights(other)
    with pytest.raises(ckpt.CheckpointMismatchError, match=r"OtherMLP(.|\n)*fc1.weight: \(16, 4\) vs \(8, 4\)"):
        nf.train([loss2], "adam", {"max_steps": 1, "lr": 1e-2}, callbacks=[CheckpointCallback(str(tmp_path))])
    assert all(torch.equal(v, weights(other)[k]) for k, v in before.items())


def test_unsafe_checkpoint_refused_with_opt_in_hint(tmp_path):
    from nmod.backends.pytorch import UnsafeCheckpointError, load_weights

    from toy import Opaque

    torch.save({"obj": Opaque()}, tmp_path / "bad.pt")
    with pytest.raises(UnsafeCheckpointError, match="allow_unsafe=True"):
        load_weights(tmp_path / "bad.pt")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "adamax"}, "adamax"),
        ({"lr_policy": "NoSuchPolicy"}, "NoSuchPolicy"),
        ({"lr_policy": get_lr_policy("CosineAnnealing", warmup_steps=5)}, "does not fit this run of 2 steps"),
        ({"optimization_params": {"max_steps": 2}}, "lr"),
        ({"optimization_params": {"max_steps": 2, "num_epochs": 1, "lr": 0.1}}, "both"),
        ({"optimization_params": {"lr": 0.1}}, "neither"),
        ({"optimization_params": {"lr": 0.1, "max_steps": 2, "momentun": 0.9}}, "momentun"),
        ({"batches_per_step": 0}, "batches_per_step"),
    ],
)
def test_bad_train_arguments_fail_before_training(kwargs, match):
    nf = factory()
    _, mlp, loss = build()
    before = weights(mlp)
    args = {"optimizer": "sgd", "optimization_params": {"max_steps": 2, "lr": 0.1}, **kwargs}
    with pytest.raises((ValueError, KeyError), match=match):
        nf.train([loss], **args)
    assert all(torch.equal(v, weights(mlp)[k]) for k, v in before.items())


def test_loss_must_be_scalar_loss_type():
    nf = factory()
    data, mlp, _ = build()
    pred = mlp(x=data()[0])
    with pytest.raises(GraphError, match="LossType"):
        nf.train([pred], "sgd", {"max_steps": 1, "lr": 0.1})


class Poison(ToyMSE):
    def __init__(self, bad_steps=(1,), name=None):
        super().__init__(name=name)
        self.bad_steps, self.calls = set(bad_steps), 0

    def forward(self, pred, y):
        loss = super().forward(pred, y)
        self.calls += 1
        return loss * float("nan") if self.calls - 1 in self.bad_steps else loss


def test_nan_loss_skips_step_or_stops():
    nf = factory()
    data, mlp, _ = build()
    x, y = data()
    loss = Poison(bad_steps=[0])(pred=mlp(x=x), y=y)
    before = weights(mlp)
    nf.train([loss], "sgd", {"max_steps": 1, "lr": 0.1})
    assert all(torch.equal(v, weights(mlp)[k]) for k, v in before.items())  # skipped, not applied
    nf.train([loss], "sgd", {"max_steps": 1, "lr": 0.1})
    assert not torch.equal(before["fc1.weight"], weights(mlp)["fc1.weight"])  # a finite step applies
    loss2 = Poison(bad_steps=[1])(pred=mlp(x=x), y=y)
    with pytest.raises(NaNLossError, match="step 1"):
        nf.train([loss2], "sgd", {"max_steps": 3, "lr": 0.1}, stop_on_nan_loss=True)


def mean_loss(nf, loss):
    return sum(float(v) for v in nf.infer([loss])[0]) / len(nf.infer([loss])[0])


@pytest.mark.parametrize("level", ["O1", "O2", "O3"])
def test_bf16_levels_train_to_lower_loss(level):
    nf = factory(optimization_level=level)
    _, mlp, loss = build(n=64, batch_size=8)
    start = mean_loss(nf, loss)
    nf.train([loss], "adam", {"num_epochs": 10, "lr": 1e-2})
    assert mean_loss(nf, loss) < 0.5 * start
    assert mlp.fc1.weight.dtype == (torch.bfloat16 if level in ("O2", "O3") else torch.float32)


def test_loss_scaler_skips_overflow_and_halves():
    scaler = DynamicLossScaler(init_scale=1024.0, growth_interval=2)
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.tensor([1.0, float("inf")])
    assert not scaler.unscale_and_check([p])
    scaler.update(False, step=0)
    assert scaler.scale == 512.0 and scaler.skipped_steps == 1
    p.grad = torch.tensor([512.0, 1024.0])
    assert scaler.unscale_and_check([p])
    torch.testing.assert_close(p.grad, torch.tensor([1.0, 2.0]))
    scaler.update(True, 1)
    scaler.update(True, 2)
    assert scaler.scale == 1024.0


def test_loss_logger_history_and_infer_order():
    nf = factory()
    data, mlp, loss = build(n=16, batch_size=4, shuffle=False)
    logger = SimpleLossLoggerCallback([loss], print_func=lambda v: None, step_freq=2)
    nf.train([loss], "sgd", {"max_steps": 4, "lr": 0.01}, callbacks=[logger])
    assert [s for s, _ in logger.history] == [2, 4]
    pred = mlp(x=data()[0])
    (preds,) = nf.infer([pred])
    with torch.no_grad():
        expected = mlp(x=data.dataset.tensors[0])
    torch.testing.assert_close(torch.cat(preds), expected)


def test_eval_results_are_keyed_by_the_names_the_graph_prints():
    nf = factory()
    eval_data, train_data = ToyData(n=8, name="eval_data"), ToyData(n=16, name="train_data")
    mlp, mse = ToyMLP(name="mlp"), ToyMSE(name="mse")
    x, y = eval_data()
    eval_pred = mlp(x=x)  # wired for evaluation first, as the SQuAD recipe does
    eval_loss = mse(pred=eval_pred, y=y)
    x, y = train_data()
    train_loss = mse(pred=mlp(x=x), y=y)
    assert (eval_pred.name, eval_loss.name, train_loss.name) == ("mlp.pred", "mse.loss", "mse#1.loss")
    keys = []
    evaluator = EvaluatorCallback([eval_pred, eval_loss], eval_at_start=True, eval_step=1,
                                  user_iter_callback=lambda values, g: keys.append(list(values)),
                                  user_epochs_done_callback=lambda g: {})
    nf.train([train_loss], "sgd", {"max_steps": 1, "lr": 0.01}, callbacks=[evaluator])
    assert keys == [["mlp.pred", "mse.loss"]] * 4  # 2 batches, before and after the step
    assert [Graph([eval_pred, eval_loss]).tensor_name(t) for t in (eval_pred, eval_loss)] == keys[0]
    train_graph = Graph([train_loss])
    assert train_graph.tensor_name(train_loss) == train_loss.name and "pred<-mlp#1.pred" in train_graph.summary()


def test_infer_keeps_batches_with_cache_and_reads_them_with_use_cache():
    nf = factory()
    data, mlp, _ = build(n=8, batch_size=4, shuffle=False)
    pred = mlp(x=data()[0])
    with pytest.raises(ValueError, match=r"no batches of data layer .* are kept; call infer\(\.\.\., cache=True\)"):
        nf.infer([pred], use_cache=True)
    with pytest.raises(ValueError, match="pass one of them"):
        nf.infer([pred], cache=True, use_cache=True)
    (first,) = nf.infer([pred], cache=True)
    data.dataset.tensors[0].zero_()  # the data changes: only a call that loads it again sees that
    (kept,) = nf.infer([pred], use_cache=True)
    (loaded,) = nf.infer([pred])
    assert torch.equal(torch.cat(kept), torch.cat(first))
    assert not torch.equal(torch.cat(loaded), torch.cat(first))


def test_infer_has_one_signature_in_the_interface_the_executor_and_the_factory():
    def signature(f):
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    assert signature(PtActions.infer) == signature(Actions.infer) == signature(nmod.NeuralModuleFactory.infer)
    assert [p for p, kind, _ in signature(Actions.infer) if kind is inspect.Parameter.KEYWORD_ONLY] == [
        "cache", "use_cache", "offload_to_cpu"]


class LearningRates(Callback):
    def __init__(self):
        self.by_step, self.total_steps = {}, None

    def on_step_end(self, state):
        self.by_step[state.step] = state.lr
        self.total_steps = state.total_steps


@pytest.fixture
def nmod_warnings():
    """Warnings logged to 'nmod' (the factory stops that logger propagating, so caplog misses them)."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("nmod").addHandler(handler)
    yield records
    logging.getLogger("nmod").removeHandler(handler)


def test_a_deferred_lr_policy_is_bound_to_the_runs_own_step_count_and_resumes_exactly(tmp_path, nmod_warnings):
    # 24 samples in batches of 4 for 3 epochs: 18 steps, counted by the executor only.
    explicit = LearningRates()
    reference = run_with_resume(tmp_path / "ref", lr_policy=get_lr_policy("WarmupAnnealing", total_steps=18,
                                warmup_ratio=0.25), extra_callbacks=[explicit])
    assert explicit.total_steps == 18 and len(explicit.by_step) == 18
    deferred = get_lr_policy("WarmupAnnealing", warmup_ratio=0.25)
    before, after = LearningRates(), LearningRates()
    with pytest.raises(StopAt.Killed):
        run_with_resume(tmp_path / "run", kill_at=10, lr_policy=deferred, extra_callbacks=[before])
    resumed = run_with_resume(tmp_path / "run", lr_policy=deferred, extra_callbacks=[after])
    assert not [m for m in nmod_warnings if "LR policy differs" in m]
    assert sorted(after.by_step) == list(range(9, 19))  # resumed from the checkpoint at step 8
    assert {**before.by_step, **after.by_step} == explicit.by_step
    for k, v in weights(reference).items():
        assert torch.equal(weights(resumed)[k], v), k


def test_resuming_with_another_lr_schedule_is_reported(tmp_path, nmod_warnings):
    run_with_resume(tmp_path, lr_policy=get_lr_policy("WarmupAnnealing", warmup_ratio=0.25))
    assert not nmod_warnings
    run_with_resume(tmp_path, lr_policy=get_lr_policy("WarmupAnnealing", warmup_ratio=0.5))
    assert [m for m in nmod_warnings if "LR policy differs from the checkpoint's" in m]
