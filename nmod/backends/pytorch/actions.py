"""PtActions: the PyTorch executor. Plans a graph once, then trains, evaluates or infers it."""
from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch.utils.data import DataLoader, DistributedSampler

from nmod.actions import Actions, validate_optimization_params
from nmod.callbacks import Callback, CheckpointCallback, EvaluatorCallback, TrainingState
from nmod.core import Graph, GraphError, NmTensor
from nmod.core.config import class_path
from nmod.types import LossType

from . import checkpoint as ckpt
from .distributed import DistributedContext
from .module import DataLayerNM, TrainableNM
from .precision import DynamicLossScaler, Precision

__all__ = ["PtActions", "GraphRunner", "NaNLossError"]

logger = logging.getLogger("nmod")


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
        for call in self._steps:
            kwargs = {p: values[(t.call.uid, t.port)] for p, t in call.inputs.items()}
            out = call.module(**kwargs)
            names = list(call.module.output_ports)
            outs = out if len(names) > 1 else (out,)
            values.update({(call.uid, n): v for n, v in zip(names, outs)})
        return [values[(t.call.uid, t.port)] for t in wanted]


def _key(name: str) -> str:
    return name.replace(".", "_")


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
        self.state: Optional[TrainingState] = None
        self._train: Optional[dict] = None  # runner, optimizer, scaler, ... of the active train()
        self._infer_cache: Dict[int, list] = {}

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
    def train(self, tensors_to_optimize, optimizer="adam", optimization_params=None, callbacks=None,
              lr_policy=None, batches_per_step: int = 1, stop_on_nan_loss: bool = False) -> None:
        from nmod.optim import get_lr_policy, get_optimizer  # the optimizer registry lives in nmod.optim

        params = validate_optimization_params(optimization_params)
        losses = _check_losses(tensors_to_optimize)
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be nmod.callbacks.Callback instances, got {type(cb).__name__}")
        if not isinstance(batches_per_step, int) or batches_per_step < 1:
            raise ValueError(f"batches_per_step must be a positive int, got {batches_per_step!r}")

        extra = [t for cb in callbacks for t in cb.tensors if all(t is not l for l in losses)]
        wanted = losses + extra
        graph = Graph(wanted)
        runner = GraphRunner(graph).to(self.device)
        data_layer = runner.data_layer
        if self.precision.half_weights:
            runner.to(self.precision.dtype)
        trainable = [(n, p) for n, p in runner.named_parameters() if p.requires_grad]
        if not trainable:
            raise GraphError("Nothing to train: every module in the graph is frozen or has no weights")
        if self.precision.master_weights:
            master = [(n, p.detach().clone().float().requires_grad_(True)) for n, p in trainable]
        else:
            master = trainable
        opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else get_optimizer(
            optimizer, master, lr=params["lr"], weight_decay=params.get("weight_decay", 0.0),
            **{k: params[k] for k in ("betas", "eps", "momentum") if k in params})
        model = runner
        if self.dist.enabled:
            model = torch.nn.parallel.DistributedDataParallel(
                runner, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        steps_per_epoch = math.ceil(len(self._batches(data_layer, 0, data_layer.shuffle, True)) / batches_per_step)
        if steps_per_epoch == 0:
            raise ValueError(f"Data layer '{data_layer.name}' yields no batches on rank {self.dist.rank}")
        if "max_steps" in params and params.get("max_steps") is not None:
            total_steps, num_epochs = params["max_steps"], math.inf
        else:
            num_epochs = params["num_epochs"]
            total_steps = num_epochs * steps_per_epoch
        if isinstance(lr_policy, str):
            lr_policy = get_lr_policy(lr_policy, total_steps=total_steps)

        scaler = DynamicLossScaler(enabled=self.precision.loss_scaling)
        self.state = TrainingState(actions=self, is_main=self.is_main, tb_writer=self.tb_writer, lr=params["lr"])
        self._train = {"runner": runner, "optimizer": opt, "scaler": scaler, "graph": graph,
                       "master": master, "trainable": trainable}
        for cb in callbacks:
            if isinstance(cb, CheckpointCallback):
                cb.restore(self)
        state = self.state
        runner.train()
        for cb in callbacks:
            cb.on_train_start(state)

        clip = params.get("grad_norm_clip")
        bar = self._progress(total_steps, state.step)
        t_start = time.time()
        try:
            while state.step < total_steps and state.epoch < num_epochs and not state.should_stop:
                batches = self._batches(data_layer, state.epoch, data_layer.shuffle, True)
                loader = iter(self._loader(data_layer, batches[state.batch_in_epoch:]))
                while state.step < total_steps and not state.should_stop:
                    group = [b for _, b in zip(range(batches_per_step), loader)]
                    if not group:
                        break
                    self._train_step(model, runner, group, wanted, losses, opt, scaler, lr_policy, params,
                                     clip, stop_on_nan_loss)
                    state.batch_in_epoch += len(group)
                    state.step += 1
                    if bar is not None:
                        bar.update(1)
                        if state.loss is not None:
                            bar.set_postfix(loss=f"{state.loss:.4f}", lr=f"{state.lr:.2e}")
                    for cb in callbacks:
                        cb.on_step_end(state)
                    state.should_stop = not self.dist.all_true(not state.should_stop, self.device)
                    runner.train()
                if state.batch_in_epoch >= len(batches):
                    for cb in callbacks:
                        cb.on_epoch_end(state)
                    state.epoch += 1
                    state.batch_in_epoch = 0
        finally:
            if bar is not None:
                bar.close()
        for cb in callbacks:
            cb.on_train_end(state)
        if self.is_main:
            logger.info(f"Training done: {state.step} steps, {state.epoch} epochs, {time.time() - t_start:.1f}s")

    def _train_step(self, model, runner, group, wanted, losses, opt, scaler, lr_policy, params, clip, stop_on_nan):
        state = self.state
        lr = lr_policy(params["lr"], state.step, state.epoch) if lr_policy is not None else params["lr"]
        for g in opt.param_groups:
            g["lr"] = lr
        state.lr = lr
        opt.zero_grad(set_to_none=True)
        trainable = [p for _, p in self._train["trainable"]]
        for p in trainable:
            p.grad = None
        finite, loss_sum, outputs = True, 0.0, None
        for i, batch in enumerate(group):
            batch = self._to_device(batch)
            last = i == len(group) - 1
            sync = model.no_sync() if (self.dist.enabled and not last) else _null()
            with sync:
                with self.precision.autocast():
                    outputs = model(batch, wanted)
                    loss = sum(outputs[: len(losses)])
                finite = finite and bool(torch.isfinite(loss.detach()))
                (loss.float() * (scaler.scale / len(group))).backward()
            loss_sum += float(loss.detach()) / len(group)
        finite = self.dist.all_true(finite, self.device)
        state.loss = loss_sum
        state.values = {t: v.detach() if torch.is_tensor(v) else v for t, v in zip(wanted, outputs)}
        if not finite:
            if stop_on_nan:
                raise NaNLossError(f"Loss is {loss_sum} at step {state.step} (epoch {state.epoch}); stopping "
                                   "because stop_on_nan_loss=True")
            logger.warning(f"step {state.step}: loss is {loss_sum}, step skipped (set stop_on_nan_loss=True to stop)")
            opt.zero_grad(set_to_none=True)
            return
        master = self._train["master"]
        if self.precision.master_weights:
            for (_, m), p in zip(master, trainable):
                m.grad = None if p.grad is None else p.grad.detach().float()
        params_to_step = [p for _, p in master]
        ok = scaler.unscale_and_check(params_to_step)
        ok = self.dist.all_true(ok, self.device)
        if ok:
            if clip:
                torch.nn.utils.clip_grad_norm_(params_to_step, clip)
            opt.step()
            if self.precision.master_weights:
                with torch.no_grad():
                    for (_, m), p in zip(master, trainable):
                        p.copy_(m.to(p.dtype))
        scaler.update(ok, state.step)

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
    def _checkpoint_modules(self) -> tuple[Dict[str, torch.nn.Module], Dict[str, str]]:
        runner: GraphRunner = self._train["runner"]
        files = ckpt.module_file_names([m.name for m in runner.trainable])
        modules = {files[m.name]: m for m in runner.trainable}
        classes = {files[m.name]: class_path(type(m)) for m in runner.trainable}
        return modules, classes

    def _trainer_state(self) -> dict:
        s = self.state
        return {"step": s.step, "epoch": s.epoch, "batch_in_epoch": s.batch_in_epoch,
                "optimizer": self._train["optimizer"].state_dict(), "scaler": self._train["scaler"].state_dict(),
                "master": [p.detach() for _, p in self._train["master"]] if self.precision.master_weights else [],
                "rng": ckpt.rng_state(), "world_size": self.dist.world_size, "seed": self.seed}

    def save_checkpoint(self, folder: str, keep: int) -> None:
        if self._train is None:
            raise RuntimeError("save_checkpoint is only available while training")
        if self.is_main:
            modules, classes = self._checkpoint_modules()
            path = ckpt.save_checkpoint(folder, self.state.step, modules, classes, self._trainer_state(), keep)
            logger.info(f"Saved checkpoint {path}")
        self.dist.barrier()

    def restore_checkpoint(self, folder: Optional[str], required: bool = False) -> bool:
        path = ckpt.latest_checkpoint(folder) if folder else None
        if path is None:
            if required:
                raise FileNotFoundError(f"No complete checkpoint (step-*/manifest.json) in {folder}")
            return False
        modules, classes = self._checkpoint_modules()
        ckpt.load_module_weights(path, modules, classes)
        t = ckpt.load_trainer_state(path)
        if t["world_size"] != self.dist.world_size:
            logger.warning(f"{path} was written with {t['world_size']} processes, resuming with "
                           f"{self.dist.world_size}: the data order will differ from an uninterrupted run")
        self._train["optimizer"].load_state_dict(t["optimizer"])
        self._train["scaler"].load_state_dict(t["scaler"])
        if t["master"]:
            with torch.no_grad():
                for (_, m), saved in zip(self._train["master"], t["master"]):
                    m.copy_(saved)
        s = self.state
        s.step, s.epoch, s.batch_in_epoch = t["step"], t["epoch"], t["batch_in_epoch"]
        ckpt.set_rng_state(t["rng"])
        if self.is_main:
            logger.info(f"Resumed from {path} at step {s.step}, epoch {s.epoch}")
        return True

    # ------------------------------------------------------------------------------------------
    # eval / infer
    def _eval_runner(self, tensors: Sequence[NmTensor]) -> GraphRunner:
        runner = GraphRunner(Graph(list(tensors))).to(self.device)
        if self.precision.half_weights:
            runner.to(self.precision.dtype)
        return runner

    @torch.no_grad()
    def iterate_eval(self, tensors: Sequence[NmTensor]) -> Iterator[Dict[str, List[Any]]]:
        """Yield, per batch index, `{tensor.name: [value from each rank]}` (for EvaluatorCallback)."""
        runner = self._eval_runner(tensors)
        was_training = [m.training for m in runner.trainable]
        runner.eval()
        try:
            batches = self._batches(runner.data_layer, 0, False, False)
            counts = self.dist.gather_objects(len(batches))
            loader = iter(self._loader(runner.data_layer, batches))
            for _ in range(max(counts)):
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
    def infer(self, tensors, checkpoint_dir=None, cache: bool = False, offload_to_cpu: bool = True,
              use_cache: bool = False) -> List[List[Any]]:
        tensors = list(tensors)
        runner = self._eval_runner(tensors)
        if checkpoint_dir is not None:
            ckpt.load_latest(checkpoint_dir, runner.trainable)
        was_training = [m.training for m in runner.trainable]
        runner.eval()
        dl = runner.data_layer
        try:
            if use_cache and id(dl) in self._infer_cache:
                data = self._infer_cache[id(dl)]
            else:
                data = list(self._loader(dl, self._batches(dl, 0, False, False)))
                if cache:
                    self._infer_cache[id(dl)] = data
            results: List[List[Any]] = [[] for _ in tensors]
            for batch in data:
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


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
