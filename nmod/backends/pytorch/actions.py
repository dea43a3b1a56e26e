"""PtActions: the PyTorch executor. Plans a graph once, then trains, evaluates or infers it."""
from __future__ import annotations

import contextlib
import gc
import itertools
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch.utils.data import DataLoader, DistributedSampler

from nmod.actions import Actions, graph_tensors, validate_optimization_params
from nmod.callbacks import Callback, CheckpointCallback, EvaluatorCallback, TrainingState
from nmod.core import Graph, GraphError, NmTensor, run_calls
from nmod.core.errors import CheckpointError, MissingFileError
from nmod.log import get_logger
from nmod.optim import LRPolicy, get_optimizer
from nmod.optim.lr_policies import bind_lr_policy
from nmod.progress import progress
from nmod.types import LossType

from . import checkpoint as ckpt
from .distributed import DistributedContext
from .module import DataLayerNM, TrainableNM
from .precision import DynamicLossScaler, Precision

__all__ = ["PtActions", "GraphRunner", "TrainingRun", "NaNLossError"]

logger = get_logger(__name__)


class NaNLossError(RuntimeError):
    """The loss became NaN/inf and `stop_on_nan_loss` was set."""


class GraphRunner(torch.nn.Module):
    """Runs a planned graph on one batch; one nn.Module so DDP and AMP wrap the whole pipeline."""

    def __init__(self, graph: Graph):
        super().__init__()
        self.graph = graph
        sources = graph.sources
        if len(sources) != 1 or not isinstance(sources[0].module, DataLayerNM):
            found = [f"{graph.label(c)} ({type(c.module).__name__})" for c in sources]
            raise GraphError(f"A graph needs exactly one data layer as its source; found {found}")
        self.data_call = sources[0]
        self.data_layer: DataLayerNM = sources[0].module
        self.trainable = [m for m in graph.modules if isinstance(m, TrainableNM)]
        # Registered as children so .to(), .parameters() and DDP see every module exactly once.
        self.modules_by_name = torch.nn.ModuleDict({_key(m.name): m for m in self.trainable})
        self._steps = [c for c in graph.calls if c is not self.data_call]

    def forward(self, batch: Sequence[torch.Tensor], wanted: Sequence[NmTensor]) -> List[torch.Tensor]:
        ports = list(self.data_layer.output_ports)
        if len(batch) != len(ports):
            raise ValueError(f"{self.data_layer.name} yielded {len(batch)} values for ports {ports}")
        values: Dict[tuple, Any] = {(self.data_call.uid, p): v for p, v in zip(ports, batch)}
        run_calls(self._steps, values, lambda module, kwargs: module(**kwargs))
        return [values[(t.call.uid, t.port)] for t in wanted]


def _key(name: str) -> str:
    return name.replace(".", "_")


@dataclass
class TrainingRun:
    """The objects of the active `train()` call and how it steps; checkpoints save and restore it.
    `state` is the one record of where the run is, the object callbacks are given."""

    state: TrainingState
    runner: GraphRunner  # the whole graph as one nn.Module
    model: torch.nn.Module  # what the forward pass calls: `runner`, or DDP wrapped around it
    optimizer: torch.optim.Optimizer
    scaler: DynamicLossScaler  # fp16 loss scaling; does nothing at other precisions
    model_params: List[torch.nn.Parameter]  # the trainable weights the forward pass computes with
    # "Master" weights: fp32 copies of half-precision weights (O2) that the optimizer updates and that are
    # copied back after each step; at every other level they are `model_params` themselves.
    master_params: List[torch.nn.Parameter]
    losses: List[NmTensor]  # their sum is minimised
    wanted: List[NmTensor]  # `losses`, then the tensors callbacks asked for
    peak_lr: float
    lr_policy: Optional[Callable[[float, int, int], float]]  # lr = lr_policy(peak_lr, step, epoch); None: peak_lr
    grad_norm_clip: Optional[float]
    stop_on_nan_loss: bool
    batches_per_step: int
    total_steps: int  # optimizer steps in the whole run, counted once by the executor
    num_epochs: float  # math.inf when `max_steps` bounds the run

    @property
    def has_master_copy(self) -> bool:
        return self.master_params is not self.model_params

    def zero_grad(self) -> None:
        """Drop every gradient (None, not zero-filled): the model's and the master copies'."""
        for p in self.model_params + (self.master_params if self.has_master_copy else []):
            p.grad = None


class PtActions(Actions):
    """Created by `NeuralModuleFactory`; holds the device, precision and process-group context."""

    def __init__(self, device: torch.device, precision: Precision, dist_ctx: DistributedContext,
                 seed: int = 0, tb_writer: Any = None, progress_bar: Optional[bool] = None):
        self.device = device
        self.precision = precision
        self.dist = dist_ctx
        self.seed = seed
        self.tb_writer = tb_writer
        self.progress_bar = progress_bar
        self._run: Optional[TrainingRun] = None  # set while train() runs
        self.state: Optional[TrainingState] = None  # the current run's `run.state`, kept once train() returns
        self._infer_cache: Dict[int, _CachedBatches] = {}  # id(data layer) -> its batches

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    # ------------------------------------------------------------------------------------------
    # data
    def _batches(self, data_layer: DataLayerNM, epoch: int, shuffle: bool, for_training: bool) -> List[List[int]]:
        """This rank's batches of indices for `epoch`; a pure function of (seed, epoch, rank)."""
        custom = data_layer.batch_sampler(epoch, self.dist.rank, self.dist.world_size, self.seed) if for_training else None
        if custom is not None:
            return [list(b) for b in custom]
        n = len(data_layer)
        if for_training:
            sampler = DistributedSampler(range(n), num_replicas=self.dist.world_size, rank=self.dist.rank,
                                         shuffle=shuffle, seed=self.seed, drop_last=False)
            sampler.set_epoch(epoch)
            indices = list(sampler)
        else:  # contiguous shards, no padding: gathered results come back in dataset order, no duplicates
            per = math.ceil(n / self.dist.world_size)
            indices = list(range(self.dist.rank * per, min(n, (self.dist.rank + 1) * per)))
        bs = data_layer.batch_size
        return [indices[i:i + bs] for i in range(0, len(indices), bs)]

    def _loader(self, data_layer: DataLayerNM, batches: List[List[int]]) -> DataLoader:
        kwargs = {"collate_fn": data_layer.collate_fn} if data_layer.collate_fn is not None else {}
        # Its own generator: creating an iterator would otherwise draw from the global RNG, and a
        # resumed run would then see other dropout masks than an uninterrupted one.
        return DataLoader(data_layer.dataset, batch_sampler=batches, num_workers=0,
                          pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(self.seed),
                          **kwargs)

    def _to_device(self, batch) -> list:
        # O3 runs without autocast: floating inputs must match the half weights.
        half = self.precision.dtype if self.precision.half_weights and not self.precision.autocast_enabled else None
        return [
            (b.to(self.device, dtype=half, non_blocking=True) if half is not None and b.is_floating_point()
             else b.to(self.device, non_blocking=True)) if torch.is_tensor(b) else b
            for b in batch
        ]

    # ------------------------------------------------------------------------------------------
    # train
    def train(self, tensors_to_optimize=None, optimizer="adam", optimization_params=None, callbacks=None,
              lr_policy=None, batches_per_step: int = 1, stop_on_nan_loss: bool = False, training_graph=None) -> None:
        # 1. check every argument before anything is built or any weight changes
        params = validate_optimization_params(optimization_params)
        losses = _check_losses(graph_tensors(tensors_to_optimize, training_graph, losses=True))
        callbacks = _check_callbacks(callbacks)
        if not isinstance(batches_per_step, int) or batches_per_step < 1:
            raise ValueError(f"batches_per_step must be a positive int, got {batches_per_step!r}")
        if lr_policy is not None and not (isinstance(lr_policy, str) or callable(lr_policy)):
            raise TypeError(f"lr_policy must be an LRPolicy or a policy name, got {type(lr_policy).__name__}")

        # 2. the graph as one module, its trainable weights, the optimizer over them
        wanted = losses + [t for cb in callbacks for t in cb.tensors if all(t is not l for l in losses)]
        runner = self._runner(wanted)
        model_params, master_params, named_master = self._setup_params(runner)
        if isinstance(optimizer, torch.optim.Optimizer):
            opt = optimizer
        else:
            opt = get_optimizer(optimizer, named_master, lr=params["lr"], weight_decay=params.get("weight_decay", 0.0),
                                **{k: params[k] for k in ("betas", "eps", "momentum") if k in params})
        model = runner
        if self.dist.enabled:
            model = torch.nn.parallel.DistributedDataParallel(
                runner, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        # 3. the run's length, counted here and nowhere else; a policy waiting for it (a name, or a
        #    DeferredLRPolicy from get_lr_policy without total_steps) is bound to it
        total_steps, num_epochs = self._count_steps(runner.data_layer, params, batches_per_step)
        lr_policy = bind_lr_policy(lr_policy, total_steps)

        state = TrainingState(actions=self, is_main=self.is_main, tb_writer=self.tb_writer, lr=params["lr"],
                              total_steps=total_steps)
        run = TrainingRun(
            state=state, runner=runner, model=model, optimizer=opt, scaler=DynamicLossScaler(enabled=self.precision.loss_scaling),
            model_params=model_params, master_params=master_params, losses=losses, wanted=wanted,
            peak_lr=params["lr"], lr_policy=lr_policy, grad_norm_clip=params.get("grad_norm_clip"),
            stop_on_nan_loss=stop_on_nan_loss, batches_per_step=batches_per_step,
            total_steps=total_steps, num_epochs=num_epochs)
        self.state, self._run = state, run
        try:
            # 4. resume from the latest checkpoint, if any, before any other callback sees the state
            for cb in callbacks:
                if isinstance(cb, CheckpointCallback):
                    cb.restore(self)
            runner.train()
            for cb in callbacks:
                cb.on_train_start(state)
            # 5. the loop: epochs of steps, each step `batches_per_step` micro-batches
            self._train_loop(run, callbacks)
            for cb in callbacks:
                cb.on_train_end(state)
        finally:
            self._run = None  # the optimizer's state is freed once training ends
            if self.dist.enabled:  # DDP's reducer sits in reference cycles: free it (and its gloo work) now
                del run, model
                gc.collect()

    def _runner(self, tensors: Sequence[NmTensor]) -> GraphRunner:
        """The graph computing ``tensors`` as one module, on the device, in the precision's weight dtype."""
        runner = GraphRunner(Graph(list(tensors))).to(self.device)
        if self.precision.half_weights:
            runner.to(self.precision.dtype)
        return runner

    def _setup_params(self, runner: GraphRunner):
        """(model params, master params, named master params for the optimizer's weight-decay groups)."""
        named = [(n, p) for n, p in runner.named_parameters() if p.requires_grad]
        if not named:
            raise GraphError("Nothing to train: every module in the graph is frozen or has no weights")
        if self.precision.master_weights:
            named_master = [(n, p.detach().clone().float().requires_grad_(True)) for n, p in named]
        else:
            named_master = named
        model_params = [p for _, p in named]
        master_params = [p for _, p in named_master] if self.precision.master_weights else model_params
        return model_params, master_params, named_master

    def _count_steps(self, data_layer: DataLayerNM, params: dict, batches_per_step: int) -> tuple[int, float]:
        """(optimizer steps in the run, epochs): `max_steps`, or `num_epochs` times the steps in an epoch."""
        batches = len(self._batches(data_layer, 0, data_layer.shuffle, True))
        steps_per_epoch = math.ceil(batches / batches_per_step)
        if steps_per_epoch == 0:
            raise ValueError(f"Data layer '{data_layer.name}' yields no batches on rank {self.dist.rank}")
        if params.get("max_steps") is not None:
            return params["max_steps"], math.inf
        return params["num_epochs"] * steps_per_epoch, params["num_epochs"]

    def _train_loop(self, run: TrainingRun, callbacks: List[Callback]) -> None:
        state = run.state
        data_layer = run.runner.data_layer
        bar = self._progress(run.total_steps, state.step)
        t_start = time.time()

        def steps_left() -> bool:
            return state.step < run.total_steps and not state.should_stop

        try:
            while steps_left() and state.epoch < run.num_epochs:
                batches = self._batches(data_layer, state.epoch, data_layer.shuffle, True)
                loader = iter(self._loader(data_layer, batches[state.batch_in_epoch:]))  # resumes mid-epoch
                while steps_left():
                    group = list(itertools.islice(loader, run.batches_per_step))
                    if not group:
                        break  # this epoch's data is used up
                    self._train_step(run, group)
                    state.batch_in_epoch += len(group)
                    state.step += 1
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{state.loss:.4f}", lr=f"{state.lr:.2e}")
                    for cb in callbacks:
                        cb.on_step_end(state)
                    state.should_stop = self._stop_on_every_rank(state.should_stop)
                    run.runner.train()  # a callback may have evaluated the shared modules
                if state.batch_in_epoch >= len(batches):
                    for cb in callbacks:
                        cb.on_epoch_end(state)
                    state.epoch += 1
                    state.batch_in_epoch = 0
        finally:
            if bar is not None:
                bar.close()
        if self.is_main:
            logger.info(f"Training done: {state.step} steps, {state.epoch} epochs, {time.time() - t_start:.1f}s")

    def _train_step(self, run: TrainingRun, group: List[list]) -> None:
        """One optimizer update from `group`, this step's micro-batches (gradient accumulation)."""
        state = run.state

        # 1. the learning rate: a pure function of the step count, so a resumed run gets the same one
        state.lr = run.lr_policy(run.peak_lr, state.step, state.epoch) if run.lr_policy is not None else run.peak_lr
        for g in run.optimizer.param_groups:
            g["lr"] = state.lr

        # 2. drop the previous step's gradients: the one place they are cleared
        run.zero_grad()

        # 3. forward and backward over each micro-batch: gradients add up, the loss is averaged on the device
        step_loss = torch.zeros((), device=self.device)
        for i, batch in enumerate(group):
            accumulate_only = self.dist.enabled and i < len(group) - 1  # DDP all-reduces in the last backward only
            with run.model.no_sync() if accumulate_only else contextlib.nullcontext():
                with self.precision.autocast():
                    outputs = run.model(self._to_device(batch), run.wanted)
                    loss = sum(outputs[: len(run.losses)])
                (loss.float() * (run.scaler.scale / len(group))).backward()
            step_loss += loss.detach().float() / len(group)
        state.values = {t: v.detach() if torch.is_tensor(v) else v for t, v in zip(run.wanted, outputs)}

        # 4. the loss, averaged over ranks so that every rank agrees on whether it is finite
        if self.dist.enabled:
            torch.distributed.all_reduce(step_loss)  # note: an all-reduce over all ranks
            step_loss /= self.dist.world_size
        state.loss = float(step_loss)  # note: this is a CPU-GPU sync point (the only one at fp32 and bf16)
        if not math.isfinite(state.loss):
            if run.stop_on_nan_loss:
                raise NaNLossError(f"Loss is {state.loss} at step {state.step} (epoch {state.epoch}); stopping "
                                   "because stop_on_nan_loss=True")
            logger.warning(f"step {state.step}: loss is {state.loss}, step skipped (set stop_on_nan_loss=True to stop)")
            return

        # 5. O2: the fp32 master weights take the half-precision gradients
        if run.has_master_copy:
            for master, p in zip(run.master_params, run.model_params):
                master.grad = None if p.grad is None else p.grad.detach().float()

        # 6. fp16: unscale the gradients; an overflow skips the step. DDP has already averaged the
        #    gradients, so every rank finds the same overflow without another all-reduce.
        #    note: this is a CPU-GPU sync point when fp16 loss scaling is on
        grads_finite = run.scaler.unscale_and_check(run.master_params)

        # 7. clip, update, and copy the updated master weights back into the model
        if grads_finite:
            if run.grad_norm_clip:
                torch.nn.utils.clip_grad_norm_(run.master_params, run.grad_norm_clip)  # stays on the device
            run.optimizer.step()
            if run.has_master_copy:
                with torch.no_grad():
                    for master, p in zip(run.master_params, run.model_params):
                        p.copy_(master.to(p.dtype))
        run.scaler.update(grads_finite, state.step)

    def _stop_on_every_rank(self, stop: bool) -> bool:
        """True on every rank once one rank's callbacks asked to stop, so that all ranks stop at one step.

        note: an all-reduce and a CPU-GPU sync point when distributed; nothing to do on one process.
        """
        if not self.dist.enabled:
            return stop
        flag = torch.tensor([1.0 if stop else 0.0], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def _progress(self, total: float, initial: int):
        show = self.progress_bar
        if show is None:
            show = self.is_main and sys.stderr.isatty()
        if not show or not self.is_main or total == math.inf:
            return None
        from tqdm.auto import tqdm
        return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)

    # ------------------------------------------------------------------------------------------
    # checkpoints
    def _active_run(self, what: str) -> TrainingRun:
        if self._run is None:
            raise RuntimeError(f"{what} are only available while training (inside train(), e.g. from a callback)")
        return self._run

    def _trainer_state(self, run: TrainingRun) -> ckpt.TrainerState:
        s = run.state
        return ckpt.TrainerState(
            step=s.step, epoch=s.epoch, batch_in_epoch=s.batch_in_epoch, optimizer=run.optimizer.state_dict(),
            scaler=run.scaler.state_dict(), master=[p.detach() for p in run.master_params] if run.has_master_copy else [],
            lr_policy=run.lr_policy.state_dict() if isinstance(run.lr_policy, LRPolicy) else None,
            rng=ckpt.rng_state(), world_size=self.dist.world_size, seed=self.seed)

    def save_checkpoint(self, folder: str, keep: int) -> None:
        """Rank 0 writes `folder/step-XXXXXXXX/`; a failed write stops every rank (CheckpointWriteError)."""
        run = self._active_run("checkpoints")
        error: Optional[BaseException] = None
        if self.is_main:
            modules, classes = ckpt.module_files(run.runner.trainable)
            try:
                path = ckpt.save_checkpoint(folder, step=run.state.step, modules=modules, module_classes=classes,
                                            trainer_state=self._trainer_state(run), keep=keep)
                logger.info(f"Saved checkpoint {path}")
            except Exception as e:  # raised below, once the other ranks know to stop too
                error = e
        # note: an all-reduce when distributed (it is the barrier that keeps ranks together here)
        saved_everywhere = self.dist.all_true(error is None, self.device)
        if error is not None:
            raise error
        if not saved_everywhere:
            raise ckpt.CheckpointWriteError(
                f"Rank 0 could not write checkpoint step-{run.state.step:08d} in {folder} (its log has the "
                "reason); training stops on every rank, and the earlier checkpoints are intact.")

    def restore_checkpoint(self, folder: Optional[str], required: bool = False) -> bool:
        """Resume from the newest intact checkpoint in `folder` (damaged newer ones are skipped, with a warning)."""
        run = self._active_run("checkpoints")
        path = ckpt.newest_intact_checkpoint(folder) if folder else None
        if self.dist.enabled:  # a file system that differs between nodes would resume ranks from different steps
            chosen = self.dist.gather_objects(None if path is None else path.name)
            if len(set(chosen)) > 1:
                raise CheckpointError(
                    f"Ranks found different newest intact checkpoints in {folder}: "
                    + ", ".join(f"rank {r}: {c or 'none'}" for r, c in enumerate(chosen))
                    + ". Every rank must see the same files (a shared folder, fully synced).")
        if path is None:
            if required:
                raise MissingFileError(f"No checkpoint (step-*/manifest.json) in {folder}")
            return False
        ckpt.load_module_weights(path, *ckpt.module_files(run.runner.trainable))
        t = ckpt.load_trainer_state(path)
        if t.world_size != self.dist.world_size:
            logger.warning(f"{path} was written with {t.world_size} processes, resuming with "
                           f"{self.dist.world_size}: the data order will differ from an uninterrupted run")
        run.optimizer.load_state_dict(t.optimizer)
        run.scaler.load_state_dict(t.scaler)
        if isinstance(run.lr_policy, LRPolicy) and t.lr_policy is not None:
            run.lr_policy.load_state_dict(t.lr_policy)  # warns when the run's length or settings changed
        if t.master:
            with torch.no_grad():
                for master, saved in zip(run.master_params, t.master):
                    master.copy_(saved)
        s = run.state
        s.step, s.epoch, s.batch_in_epoch = t.step, t.epoch, t.batch_in_epoch
        ckpt.set_rng_state(t.rng)
        if self.is_main:
            logger.info(f"Resumed from {path} at step {s.step}, epoch {s.epoch}")
        return True

    # ------------------------------------------------------------------------------------------
    # eval / infer
    @torch.no_grad()
    def iterate_eval(self, tensors: Sequence[NmTensor]) -> Iterator[Dict[str, List[Any]]]:
        """Yield, per batch index, `{tensor.name: [value from each rank]}` (for EvaluatorCallback)."""
        runner = self._runner(tensors)
        was_training = [m.training for m in runner.trainable]
        runner.eval()
        try:
            batches = self._batches(runner.data_layer, 0, False, False)
            counts = self.dist.gather_objects(len(batches))
            loader = iter(self._loader(runner.data_layer, batches))
            for _ in progress(range(max(counts)), desc="eval", unit="batches", enabled=self.is_main):
                batch = next(loader, None)
                values = None
                if batch is not None:
                    with self.precision.autocast():
                        outs = runner(self._to_device(batch), tensors)
                    values = [o.detach().float().cpu() if torch.is_tensor(o) and o.is_floating_point()
                              else (o.cpu() if torch.is_tensor(o) else o) for o in outs]
                gathered = [v for v in self.dist.gather_objects(values) if v is not None]
                yield {t.name: [g[i] for g in gathered] for i, t in enumerate(tensors)}
        finally:
            for m, was in zip(runner.trainable, was_training):
                m.train(was)

    def eval(self, callbacks: Sequence[EvaluatorCallback], checkpoint_dir: Optional[str] = None) -> None:
        for cb in callbacks:
            if not isinstance(cb, EvaluatorCallback):
                raise TypeError(f"eval() takes EvaluatorCallbacks, got {type(cb).__name__}")
            if checkpoint_dir is not None:
                ckpt.load_latest(checkpoint_dir, GraphRunner(Graph(cb.eval_tensors)).trainable)
            cb.run(self, step=self.state.step if self.state else 0, tb_writer=self.tb_writer)

    @torch.no_grad()
    def infer(self, tensors, checkpoint_dir=None, *, cache: bool = False, use_cache: bool = False,
              offload_to_cpu: bool = True) -> List[List[Any]]:
        tensors = graph_tensors(tensors)  # a NeuralGraph: its outputs
        if cache and use_cache:
            raise ValueError("infer(cache=True, use_cache=True): cache=True loads and keeps the batches, "
                             "use_cache=True reads kept ones; pass one of them")
        runner = self._runner(tensors)
        if checkpoint_dir is not None:
            ckpt.load_latest(checkpoint_dir, runner.trainable)
        dl = runner.data_layer
        if use_cache:
            kept = self._infer_cache.get(id(dl))
            if kept is None or kept.data_layer is not dl:
                raise ValueError(f"infer(use_cache=True): no batches of data layer '{dl.name}' are kept; "
                                 "call infer(..., cache=True) over it first")
            data = kept.batches
        else:
            data = list(self._loader(dl, self._batches(dl, 0, False, False)))
            if cache:
                self._infer_cache[id(dl)] = _CachedBatches(dl, data)
        was_training = [m.training for m in runner.trainable]
        runner.eval()
        try:
            results: List[List[Any]] = [[] for _ in tensors]
            for batch in progress(data, desc="infer", unit="batches", enabled=self.is_main):
                with self.precision.autocast():
                    outs = runner(self._to_device(batch), tensors)
                for i, o in enumerate(outs):
                    results[i].append(o.cpu() if offload_to_cpu and torch.is_tensor(o) else o)
        finally:
            for m, was in zip(runner.trainable, was_training):
                m.train(was)
        if self.dist.enabled:
            per_rank = self.dist.gather_objects([[r.cpu() if torch.is_tensor(r) else r for r in res] for res in results])
            results = [[b for rank_res in per_rank for b in rank_res[i]] for i in range(len(tensors))]
        return results


@dataclass
class _CachedBatches:
    """A data layer's eval batches kept by `infer(cache=True)`; the layer is held so its id stays its own."""

    data_layer: DataLayerNM
    batches: List[Any]


def _check_callbacks(callbacks) -> List[Callback]:
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be nmod.callbacks.Callback instances, got {type(cb).__name__}")
    return callbacks


def _check_losses(tensors) -> List[NmTensor]:
    if isinstance(tensors, NmTensor):
        tensors = [tensors]
    tensors = list(tensors)
    if not tensors:
        raise GraphError("tensors_to_optimize is empty: pass the loss tensor(s) to minimise")
    for t in tensors:
        if not isinstance(t, NmTensor):
            raise GraphError(f"tensors_to_optimize must be graph tensors (NmTensor), got {type(t).__name__}")
        if not isinstance(t.ntype.elements_type, LossType) or t.ntype.axes is not None:
            raise GraphError(f"{t.name} is {t.ntype}; tensors_to_optimize must be scalar LossType tensors "
                             "(NeuralType(None, LossType()))")
    return tensors
