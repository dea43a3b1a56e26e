"""NeuralModuleFactory: the user's entry point, with NeMo 0.11's signature so scripts port easily."""
from __future__ import annotations

import collections
import logging
import os
import random
import sys
from enum import Enum
from typing import Any, List, Optional, Sequence

from .core.deployment import DeploymentFormat

__all__ = ["NeuralModuleFactory", "DeviceType", "Backend", "DeploymentFormat"]

logger = logging.getLogger("nmod")


class DeviceType(Enum):
    CPU = "cpu"
    GPU = "gpu"
    AllGpu = "all_gpu"


class Backend(Enum):
    PyTorch = "pytorch"


class NeuralModuleFactory:
    """Sets up the device, precision, process group, seeds and logging, then runs actions on graphs.

    Args:
        local_rank: this process's GPU index under torchrun (read from LOCAL_RANK when None).
        optimization_level: "O0" fp32, "O1" autocast, "O2" half weights + fp32 master, "O3" pure half.
        placement: DeviceType or "cpu"/"gpu"; None picks the GPU when there is one.
        random_seed: seeds python, numpy and torch; also the data order (default 0).
        log_dir: where logs (and TensorBoard events) go; created if missing. None: nothing is written
            until `open_log_dir` is called (a recipe checks its inputs first, then opens the run folder).
        checkpoint_dir: default folder for CheckpointCallback and `infer(checkpoint_dir=...)`.
        create_tb_writer: make a TensorBoard SummaryWriter in log_dir/tensorboard (needs `tensorboard`).
        amp_dtype: "float16" or "bfloat16" for O1-O3 (default: fp16 on CUDA, bf16 on the CPU).
        progress_bar: tqdm bar on training loops; None shows it on rank 0 when stderr is a TTY.
        keep_cpu_memory: on a CPU, serve tensors up to 1 GiB from malloc's heap rather than from a fresh
            mmap each step (`nmod.backends.pytorch.host_memory`: fp32 MiniLM training steps 1.06-1.12x
            faster); the process keeps its peak memory. `NMOD_KEEP_CPU_MEMORY=0` turns it off as False does.
    """

    def __init__(
        self,
        local_rank: Optional[int] = None,
        optimization_level: str = "O0",
        placement: Any = None,
        random_seed: Optional[int] = None,
        log_dir: Optional[str] = None,
        checkpoint_dir: Optional[str] = None,
        create_tb_writer: bool = False,
        backend: Backend = Backend.PyTorch,
        amp_dtype: Optional[str] = None,
        progress_bar: Optional[bool] = None,
        cudnn_benchmark: bool = False,
        keep_cpu_memory: bool = True,
    ):
        import numpy as np
        import torch

        from nmod.backends.pytorch import host_memory
        from nmod.backends.pytorch.actions import PtActions
        from nmod.backends.pytorch.distributed import init_distributed
        from nmod.backends.pytorch.precision import Precision

        if backend is not Backend.PyTorch:
            raise ValueError(f"Only the PyTorch backend exists, got {backend}")
        self.device = _pick_device(placement, local_rank)
        self.dist = init_distributed(local_rank, self.device.type)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.backends.cudnn.benchmark = cudnn_benchmark
        self.seed = 0 if random_seed is None else int(random_seed)
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        dtype = {None: None, "float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16,
                 "bf16": torch.bfloat16}
        if amp_dtype not in dtype:
            raise ValueError(f"amp_dtype must be one of {[k for k in dtype if k]}, got {amp_dtype!r}")
        self.precision = Precision(optimization_level, self.device, dtype[amp_dtype])
        self.log_dir = None
        self.checkpoint_dir = checkpoint_dir
        self.tb_writer = None
        _setup_logging(self.dist.is_main)
        self._actions = PtActions(self.device, self.precision, self.dist, self.seed, None, progress_bar)
        if log_dir is not None or create_tb_writer:
            self.open_log_dir(log_dir, create_tb_writer)
        heap = self.device.type == "cpu" and keep_cpu_memory and host_memory.keep_large_blocks()
        if self.dist.is_main:
            logger.info(f"nmod: device {self.device}, {self.dist.world_size} process(es), "
                        f"{optimization_level} ({self.precision.dtype if optimization_level != 'O0' else 'float32'})"
                        + (", CPU tensors up to 1 GiB from the heap (keep_cpu_memory)" if heap else ""))

    def open_log_dir(self, log_dir: Optional[str], create_tb_writer: bool = False,
                     tensorboard: str = "required") -> None:
        """Start writing the logs to ``log_dir/nmod.log`` (lines logged since the factory was made
        included) and, with ``create_tb_writer``, TensorBoard events to ``log_dir/tensorboard``.

        ``tensorboard="optional"`` skips TensorBoard with one log line when it is not installed
        (the recipes' default); ``"required"`` raises ImportError then. Only rank 0 writes.
        """
        self.log_dir = log_dir
        if self.dist.is_main and log_dir is not None:
            os.makedirs(log_dir, exist_ok=True)
            _log_to_file(os.path.join(log_dir, "nmod.log"))
        if create_tb_writer and self.dist.is_main and self.tb_writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                if tensorboard == "required":
                    raise ImportError("create_tb_writer=True needs TensorBoard: pip install tensorboard") from None
                logger.info("TensorBoard is not installed (pip install tensorboard): no event files are written")
            else:
                self.tb_writer = SummaryWriter(log_dir=os.path.join(log_dir or "runs", "tensorboard"))
        self._actions.tb_writer = self.tb_writer

    @property
    def world_size(self) -> int:
        return self.dist.world_size

    @property
    def global_rank(self) -> int:
        return self.dist.rank

    @property
    def local_rank(self) -> int:
        return self.dist.local_rank

    @property
    def optim_level(self) -> str:
        return self.precision.opt_level

    @property
    def actions(self):
        return self._actions

    def train(self, tensors_to_optimize=None, optimizer="adam", optimization_params=None, callbacks=None,
              lr_policy=None, batches_per_step: int = 1, stop_on_nan_loss: bool = False, training_graph=None) -> None:
        """See `nmod.backends.pytorch.PtActions.train` and docs/training.md; `training_graph` (a
        `NeuralGraph`) trains on its loss outputs when `tensors_to_optimize` is not given."""
        self._actions.train(tensors_to_optimize, optimizer=optimizer, optimization_params=optimization_params,
                            callbacks=callbacks, lr_policy=lr_policy, batches_per_step=batches_per_step,
                            stop_on_nan_loss=stop_on_nan_loss, training_graph=training_graph)

    def eval(self, callbacks: Sequence[Any], checkpoint_dir: Optional[str] = None) -> None:
        self._actions.eval(callbacks, checkpoint_dir)

    def infer(self, tensors, checkpoint_dir: Optional[str] = None, *, cache: bool = False, use_cache: bool = False,
              offload_to_cpu: bool = True) -> List[List[Any]]:
        """See `nmod.actions.Actions.infer`: `cache=True` keeps the batches, `use_cache=True` reads them;
        `tensors` may be a `NeuralGraph` (its outputs)."""
        return self._actions.infer(tensors, checkpoint_dir, cache=cache, use_cache=use_cache,
                                   offload_to_cpu=offload_to_cpu)

    def deployment_export(self, module, output: str, d_format: DeploymentFormat = DeploymentFormat.AUTO,
                          input_example: Any = None, output_example: Any = None) -> str:
        """Export a module, or a graph (a `Graph` or the tensors it ends in), for deployment: TorchScript
        and ONNX traced on `input_example` (a dict {port: tensor} or a tuple in port order) with dynamic
        batch and time axes; PYTORCH writes weights + YAML config. See `nmod.backends.pytorch.export`
        and docs/inference_export.md."""
        from nmod.backends.pytorch.export import deployment_export

        return str(deployment_export(module, output, d_format, input_example, output_example))


def _pick_device(placement: Any, local_rank: Optional[int]):
    import torch

    if isinstance(placement, DeviceType):
        placement = placement.value
    if placement in (None, "auto"):
        placement = "gpu" if torch.cuda.is_available() else "cpu"
    if placement == "cpu":
        return torch.device("cpu")
    if placement in ("gpu", "cuda", "all_gpu"):
        if not torch.cuda.is_available():
            raise RuntimeError("placement='gpu' but CUDA is not available; use placement='cpu'")
        return torch.device("cuda", local_rank or 0)
    raise ValueError(f"placement must be DeviceType.CPU/GPU or 'cpu'/'gpu', got {placement!r}")


def _setup_logging(is_main: bool) -> None:
    """Rank 0 logs at INFO; other ranks only warnings and errors, so output is not repeated N times.

    One handler prints to stdout; another keeps the lines until a log file is opened (``_log_to_file``),
    so ``nmod.log`` also holds what was logged while a recipe checked its inputs. A log file an earlier
    factory of this process opened gets no more lines.
    """
    root = logging.getLogger("nmod")
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    if not any(getattr(h, "_nmod", None) == "stdout" for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(FORMATTER)
        handler._nmod = "stdout"
        root.addHandler(handler)
        root.propagate = False
    # A new factory is a new run: an earlier run's log file (same process, a notebook say) stops here.
    for old in [h for h in root.handlers if getattr(h, "_nmod", None) in ("file", "buffer")]:
        root.removeHandler(old)
        old.close()
    root.addHandler(_StartupLines())


def _log_to_file(path: str) -> None:
    """Log to ``path`` from now on, after the lines kept since start-up; a previous log file is closed."""
    root = logging.getLogger("nmod")
    handler = logging.FileHandler(path)
    handler.setFormatter(FORMATTER)
    handler._nmod = "file"
    for old in [h for h in root.handlers if getattr(h, "_nmod", None) in ("file", "buffer")]:
        if isinstance(old, _StartupLines):
            for record in old.lines:
                handler.handle(record)
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)


class _StartupLines(logging.Handler):
    """The last lines logged before any log file is open, for the file that opens later."""

    _nmod = "buffer"

    def __init__(self, keep: int = 10_000):
        super().__init__()
        self.lines: collections.deque = collections.deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record)


FORMATTER = logging.Formatter("[nmod %(asctime)s %(levelname)s] %(message)s", "%H:%M:%S")
