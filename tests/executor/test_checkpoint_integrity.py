"""Checkpoints that survive bit rot: recorded hashes, fallback to the newest intact folder, failed writes."""
import errno
import hashlib
import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch

import nmod
from nmod.backends.pytorch import checkpoint as ckpt
from nmod.backends.pytorch import serialization
from nmod.callbacks import Callback, CheckpointCallback
from nmod.core.errors import CheckpointError, NmodError
from nmod.testing import run_torchrun
from test_train import StopAt, nmod_warnings, run_with_resume, weights  # noqa: F401 (nmod_warnings is a fixture)
from toy import ToyData, ToyMLP, build

HERE = Path(__file__).parent


def module_file(folder: Path, class_name: str) -> Path:
    """The weights file of the module of class `class_name` in checkpoint `folder`."""
    modules = ckpt.read_manifest(folder)["modules"]
    (name,) = [n for n, cls in modules.items() if cls.endswith("." + class_name)]
    return folder / f"{name}.pt"


def module_digests(folder: Path) -> list:
    """The weights files' sizes and hashes in graph order (their names hold auto-generated module names).

    `trainer.pt` is left out: equal contents can pickle to other bytes (a dict key memoised or not).
    """
    files = ckpt.read_manifest(folder)["files"]
    return [digest for name, digest in files.items() if name != ckpt.TRAINER]


def test_the_manifest_records_each_files_size_and_sha256_as_written(tmp_path):
    nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
    _, _, loss = build()
    nf.train([loss], "adam", {"max_steps": 2, "lr": 1e-2}, callbacks=[CheckpointCallback(str(tmp_path), step_freq=1)])
    path = ckpt.latest_checkpoint(tmp_path)
    manifest = ckpt.read_manifest(path)
    assert manifest["format"] == ckpt.FORMAT == "nmod-checkpoint-2"
    written = sorted(p.name for p in path.iterdir() if p.name != ckpt.MANIFEST)
    assert sorted(manifest["files"]) == written and "trainer.pt" in written and len(written) == 3
    for name, recorded in manifest["files"].items():
        data = (path / name).read_bytes()
        assert recorded == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    assert ckpt.verify_checkpoint(path) == []


def test_hashing_writer_sees_exactly_the_bytes_torch_save_writes(tmp_path):
    obj = {"w": torch.randn(300, 70), "b": torch.arange(5), "nested": [torch.ones(3, dtype=torch.bfloat16)]}
    digest = serialization.save_hashed(obj, tmp_path / "x.pt")
    data = (tmp_path / "x.pt").read_bytes()
    assert digest == serialization.FileDigest(len(data), hashlib.sha256(data).hexdigest())
    assert digest == serialization.file_digest(tmp_path / "x.pt")
    assert torch.equal(torch.load(tmp_path / "x.pt")["w"], obj["w"])


def truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def flip_one_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))


def delete(file: Path) -> None:
    file.unlink()


@pytest.mark.parametrize("damage, victim, problem", [
    (truncate, "ToyMLP", "truncated to"),
    (flip_one_byte, "ToyMLP", "altered: its SHA-256"),
    (flip_one_byte, "trainer.pt", "altered: its SHA-256"),
    (delete, "trainer.pt", "missing"),
    (delete, "manifest.json", "missing"),
])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one_and_resumes_exactly(
        tmp_path, nmod_warnings, damage, victim, problem):  # noqa: F811
    reference = run_with_resume(tmp_path / "ref")  # 18 steps, checkpoints every 4
    with pytest.raises(StopAt.Killed):
        run_with_resume(tmp_path / "run", kill_at=10)  # checkpoints at 4 and 8
    newest = tmp_path / "run" / "step-00000008"
    file = module_file(newest, victim) if victim.startswith("Toy") else newest / victim
    damage(file)
    (found,) = ckpt.verify_checkpoint(newest)
    assert found.file == file.name and found.what.startswith(problem)

    torch.manual_seed(1234)
    resumed = run_with_resume(tmp_path / "run")

    (warning,) = [m for m in nmod_warnings if "damaged" in m]
    assert str(newest) in warning and file.name in warning and problem in warning
    assert f"using {tmp_path / 'run' / 'step-00000004'}, the newest intact checkpoint" in warning
    for k, v in weights(reference).items():
        assert torch.equal(weights(resumed)[k], v), k
    # the damaged folder was written again when the run got there: its weights byte for byte the reference's
    assert ckpt.verify_checkpoint(newest) == []
    assert module_digests(newest) == module_digests(tmp_path / "ref" / "step-00000008")


def test_eval_and_infer_fall_back_too(tmp_path, nmod_warnings):  # noqa: F811
    nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
    _, mlp, loss = build()
    nf.train([loss], "adam", {"max_steps": 4, "lr": 1e-2}, callbacks=[CheckpointCallback(str(tmp_path), step_freq=2)])
    at_step_2 = torch.load(module_file(tmp_path / "step-00000002", "ToyMLP"))
    truncate(module_file(tmp_path / "step-00000004", "ToyMLP"))

    fresh = ToyMLP()
    x, _ = ToyData(shuffle=False)()
    nf.infer([fresh(x=x)], checkpoint_dir=str(tmp_path))
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, at_step_2[k]), k
    assert [m for m in nmod_warnings if "step-00000004 is damaged" in m and "step-00000002" in m]


def test_no_intact_checkpoint_is_an_error_that_lists_what_was_found(tmp_path):
    nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
    _, mlp, loss = build()
    nf.train([loss], "adam", {"max_steps": 2, "lr": 1e-2}, callbacks=[CheckpointCallback(str(tmp_path), step_freq=1)])
    truncate(module_file(tmp_path / "step-00000002", "ToyMLP"))
    (tmp_path / "step-00000001" / "trainer.pt").unlink()
    before = weights(mlp)
    with pytest.raises(ckpt.CheckpointDamagedError) as info:
        nf.train([loss], "adam", {"max_steps": 3, "lr": 1e-2}, callbacks=[CheckpointCallback(str(tmp_path))])
    message = str(info.value)
    assert message.startswith(f"No intact checkpoint in {tmp_path}: ")
    assert "step-00000002 is damaged (" in message and "truncated to" in message
    assert "step-00000001 is damaged (trainer.pt: missing)" in message
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, NmodError)
    assert all(torch.equal(v, weights(mlp)[k]) for k, v in before.items())  # nothing was trained or loaded
    with pytest.raises(ckpt.CheckpointDamagedError):
        ckpt.load_latest(tmp_path, [ToyMLP()])


class FullDisk:
    """Stands in for `open` in serialization: files whose writes fail with ENOSPC once `budget` bytes are used."""

    def __init__(self, budget: int):
        self.left = budget

    def __call__(self, path, mode="r", *args, **kwargs):
        return _FileOnAFullDisk(open(path, mode, *args, **kwargs), self)


class _FileOnAFullDisk:
    def __init__(self, file, disk: FullDisk):
        self.file, self.disk = file, disk

    def write(self, data):
        n = memoryview(data).nbytes
        if n > self.disk.left:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.disk.left -= n
        return self.file.write(data)

    def __getattr__(self, name):  # flush, fileno, close
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def test_disk_full_during_a_save_keeps_every_earlier_checkpoint_and_stops_training(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
    _, _, loss = build()
    # keep one checkpoint: the second save would prune the first, if pruning came before the new one is complete
    callbacks = [CheckpointCallback(str(run_dir), step_freq=1, checkpoints_to_keep=1)]
    first_size = {}

    class DiskFillsUp(Callback):
        def on_step_end(self, state):  # once step 1 is saved, its size tells how far into step 2 to fail
            if state.step == 1 and not first_size:
                files = ckpt.read_manifest(run_dir / "step-00000001")["files"]
                first_size["n"] = sum(f["size"] for f in files.values())
                monkeypatch.setattr(serialization, "open", FullDisk(first_size["n"] // 2), raising=False)

    with pytest.raises(ckpt.CheckpointWriteError) as info:
        nf.train([loss], "adam", {"max_steps": 3, "lr": 1e-2}, callbacks=[*callbacks, DiskFillsUp()])
    monkeypatch.undo()

    error = info.value
    assert isinstance(error, CheckpointError) and isinstance(error, OSError) and error.errno == errno.ENOSPC
    message = str(error)
    assert message.startswith(f"Could not write checkpoint {run_dir / 'step-00000002'}: ")
    assert "[Errno 28] No space left on device (writing trainer.pt)" in message
    assert f"the earlier checkpoints in {run_dir} are intact (newest: step-00000001) and none was pruned" in message
    assert sorted(p.name for p in run_dir.iterdir()) == ["step-00000001"]  # no temp folder left behind
    assert ckpt.verify_checkpoint(run_dir / "step-00000001") == []

    # with space again, the run resumes from step 1 and ends where an uninterrupted run does
    nf.train([loss], "adam", {"max_steps": 3, "lr": 1e-2}, callbacks=callbacks)
    _, ref_mlp, ref_loss = build()
    nmod.NeuralModuleFactory(random_seed=0, progress_bar=False).train(
        [ref_loss], "adam", {"max_steps": 3, "lr": 1e-2},
        callbacks=[CheckpointCallback(str(tmp_path / "ref"), step_freq=1, checkpoints_to_keep=1)])
    assert sorted(p.name for p in run_dir.iterdir()) == ["step-00000003"]
    assert module_digests(run_dir / "step-00000003") == module_digests(tmp_path / "ref" / "step-00000003")


def test_pruning_waits_for_the_new_checkpoint_to_read_back_intact(tmp_path, monkeypatch):
    nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
    _, _, loss = build()
    callbacks = [CheckpointCallback(str(tmp_path), step_freq=1, checkpoints_to_keep=1)]
    nf.train([loss], "adam", {"max_steps": 1, "lr": 1e-2}, callbacks=callbacks)
    real_verify = ckpt.verify_checkpoint

    def short_read_back(path, hashes=True):
        if hashes:  # the resume's check, before training
            return real_verify(path, hashes)
        # the check after the rename: what was just hashed while written is not hashed again
        return [ckpt.CheckpointProblem("trainer.pt", "truncated to 0 bytes, the manifest records 1234")]

    monkeypatch.setattr(ckpt, "verify_checkpoint", short_read_back)
    with pytest.raises(ckpt.CheckpointWriteError, match=r"step-00000002: it reads back damaged \(trainer.pt: trunc"):
        nf.train([loss], "adam", {"max_steps": 2, "lr": 1e-2}, callbacks=callbacks)
    monkeypatch.setattr(ckpt, "verify_checkpoint", real_verify)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]
    assert ckpt.verify_checkpoint(tmp_path / "step-00000001") == []


def downgrade_to_first_format(folder: Path) -> None:
    manifest = ckpt.read_manifest(folder)
    del manifest["files"]
    manifest["format"] = "nmod-checkpoint-1"
    (folder / ckpt.MANIFEST).write_text(json.dumps(manifest, indent=2))


def test_first_format_checkpoints_still_load_and_are_checked_by_their_zip_crcs(tmp_path, nmod_warnings):  # noqa: F811
    nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
    _, mlp, loss = build()
    nf.train([loss], "adam", {"max_steps": 2, "lr": 1e-2}, callbacks=[CheckpointCallback(str(tmp_path), step_freq=1)])
    for step in (1, 2):
        downgrade_to_first_format(tmp_path / f"step-0000000{step}")
    assert ckpt.verify_checkpoint(tmp_path / "step-00000002") == []
    assert ckpt.newest_intact_checkpoint(tmp_path) == tmp_path / "step-00000002"

    weights_file = module_file(tmp_path / "step-00000002", "ToyMLP")
    data = bytearray(weights_file.read_bytes())
    at = data.find(torch.load(weights_file)["fc1.weight"].numpy().tobytes())
    data[at + 5] ^= 0x01  # inside a tensor's bytes: the archive still opens, its CRC-32 catches the change
    weights_file.write_bytes(bytes(data))
    (problem,) = ckpt.verify_checkpoint(tmp_path / "step-00000002")
    assert "CRC" in str(problem)
    truncate(tmp_path / "step-00000002" / "trainer.pt")
    assert [p.file for p in ckpt.verify_checkpoint(tmp_path / "step-00000002")][-1] == "trainer.pt"
    at_step_1 = torch.load(module_file(tmp_path / "step-00000001", "ToyMLP"))
    fresh = ToyMLP()
    ckpt.load_latest(tmp_path, [fresh])
    assert all(torch.equal(v, at_step_1[k]) for k, v in fresh.state_dict().items())
    assert [m for m in nmod_warnings if "step-00000002 is damaged" in m]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_write_on_rank_0_stops_every_rank(tmp_path):
    """Two gloo processes: rank 0's disk fills up at the second save; no rank waits forever for it."""
    worker = tmp_path / "worker.py"
    worker.write_text(f"""
import errno, sys
import nmod
from nmod.backends.pytorch import checkpoint as ckpt, serialization
from nmod.callbacks import Callback, CheckpointCallback
from toy import build

class DiskFull(Callback):
    def on_step_end(self, state):
        if state.step == 1 and state.is_main:
            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")
            serialization.HashingWriter.write = write

nf = nmod.NeuralModuleFactory(random_seed=0, progress_bar=False)
_, _, loss = build(n=32, batch_size=4)
try:
    nf.train([loss], "adam", {{"max_steps": 3, "lr": 0.01}},
             callbacks=[CheckpointCallback({str(tmp_path / "ckpt")!r}, step_freq=1), DiskFull()])
except ckpt.CheckpointWriteError as e:
    print(f"rank {{nf.global_rank}}: {{e}}", flush=True)
    sys.exit(0)
sys.exit(f"rank {{nf.global_rank}} kept training")
""")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", str(worker)]
    env = {**os.environ, "PYTHONPATH": str(HERE), "OMP_NUM_THREADS": "1"}
    result = run_torchrun(cmd, env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "rank 0: Could not write checkpoint" in result.stdout and "No space left on device" in result.stdout
    assert "rank 1: Rank 0 could not write checkpoint step-00000002" in result.stdout and "intact." in result.stdout
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step-00000001"]
