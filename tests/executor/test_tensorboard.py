"""TensorBoard for real: two gloo processes train the toy graph with a loss logger and an evaluator; the
event files, read back with TensorBoard's own reader, hold the loss, the learning rate and each metric at
the right step numbers, written by rank 0 only.

Run as a script (under torch.distributed.run) this file is the worker; under pytest it is the test.
"""
import os
import socket
import sys
from pathlib import Path

import pytest
import torch

from nmod.testing import run_torchrun

HERE = Path(__file__).parent
PEAK_LR, MAX_STEPS, LOG_EVERY, EVAL_EVERY = 0.01, 6, 2, 3


def lr_policy():
    from nmod.optim.lr_policies import WarmupAnnealing

    return WarmupAnnealing(total_steps=MAX_STEPS, warmup_steps=2)


def worker(log_dir: str) -> None:
    from torch.utils.tensorboard import SummaryWriter

    import nmod
    from nmod.callbacks import EvaluatorCallback, SimpleLossLoggerCallback
    from toy import build

    nf = nmod.NeuralModuleFactory(random_seed=0, log_dir=log_dir, create_tb_writer=True, progress_bar=False)
    assert (nf.tb_writer is not None) == (nf.global_rank == 0)
    data, mlp, loss = build(n=32, batch_size=4, shuffle=False)

    def iter_callback(values, global_vars):
        global_vars.setdefault("losses", []).extend(float(v) for v in values[loss.name])

    def epochs_done(global_vars):
        losses = global_vars["losses"]
        return {"mse": sum(losses) / len(losses), "n_batches": len(losses)}

    # The factory's writer (rank 0 only) reaches these through the training state.
    logger = SimpleLossLoggerCallback([loss], print_func=lambda v: None, step_freq=LOG_EVERY)
    evaluator = EvaluatorCallback([loss], iter_callback, epochs_done, eval_step=EVAL_EVERY, eval_at_start=True)
    # A writer on every rank, given to the callbacks: they still write on rank 0 only.
    own = SummaryWriter(log_dir=os.path.join(log_dir, f"rank{nf.global_rank}"))
    own_logger = SimpleLossLoggerCallback([loss], print_func=lambda v: None, step_freq=LOG_EVERY, tb_writer=own,
                                          get_tb_values=lambda v: [("train_loss", v[0])])
    own_evaluator = EvaluatorCallback([loss], iter_callback, epochs_done, eval_step=EVAL_EVERY, tb_writer=own)
    nf.train([loss], "sgd", {"max_steps": MAX_STEPS, "lr": PEAK_LR}, lr_policy=lr_policy(),
             callbacks=[logger, evaluator, own_logger, own_evaluator])
    own.close()
    if nf.tb_writer is not None:
        nf.tb_writer.close()
    torch.save({"history": logger.history, "eval": evaluator.results, "epochs": nf.actions.state.epoch},
               os.path.join(log_dir, f"seen-rank{nf.global_rank}.pt"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scalars(folder: Path) -> dict:
    """{tag: [(step, value), ...]} as TensorBoard reads the folder's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    pytest.importorskip("tensorboard")
    log_dir = tmp_path_factory.mktemp("tb")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", __file__, str(log_dir)]
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    result = run_torchrun(cmd, env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return log_dir, torch.load(log_dir / "seen-rank0.pt")


def test_loss_lr_and_metrics_arrive_at_their_steps(two_process_run):
    log_dir, seen = two_process_run
    found = scalars(log_dir / "tensorboard")
    assert set(found) == {"loss", "lr", "eval/mse", "eval/n_batches"}

    logged_steps = list(range(LOG_EVERY, MAX_STEPS + 1, LOG_EVERY))
    assert [step for step, _ in seen["history"]] == logged_steps
    assert [step for step, _ in found["loss"]] == logged_steps
    for (step, value), (_, history) in zip(found["loss"], seen["history"]):
        assert value == pytest.approx(history[0], rel=1e-6)

    # the lr a logged step was taken with: the policy at the step count before it
    policy = lr_policy()
    assert [step for step, _ in found["lr"]] == logged_steps
    expected = [policy(PEAK_LR, step - 1, (step - 1) // 4) for step in logged_steps]  # 4 steps per epoch
    assert [value for _, value in found["lr"]] == pytest.approx(expected, rel=1e-6)
    assert len(set(expected)) == len(expected)  # the steps could not be told apart otherwise

    eval_steps = [0, *range(EVAL_EVERY, MAX_STEPS + 1, EVAL_EVERY)]  # eval_at_start, then every 3 steps
    assert [step for step, _ in found["eval/mse"]] == eval_steps
    assert [step for step, _ in seen["eval"]] == eval_steps
    for (_, value), (_, metrics) in zip(found["eval/mse"], seen["eval"]):
        assert value == pytest.approx(metrics["mse"], rel=1e-6)
    assert [value for _, value in found["eval/n_batches"]] == [8.0] * len(eval_steps)  # both ranks' batches


def test_only_rank_0_writes(two_process_run):
    log_dir, _ = two_process_run
    assert len(list((log_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert set(scalars(log_dir / "rank0")) == {"train_loss", "lr", "eval/mse", "eval/n_batches"}
    assert scalars(log_dir / "rank1") == {}  # the writer existed on rank 1, the callbacks left it empty


if __name__ == "__main__":
    worker(sys.argv[1])
