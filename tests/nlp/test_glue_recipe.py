"""The GLUE recipe end to end, as NeMo users type it: the seed's Megatron flags, every kind of task,
test-mode submission files, eval from a checkpoint, and two gloo processes against one."""
import re
import shutil

import numpy as np
import pytest

from nmod.core.config import read_yaml
from nmod_nlp.metrics import glue_metrics
from recipe_runner import ROOT, megatron_flags, run_recipe, torchrun

RECIPE = ROOT / "examples" / "nlp" / "glue_benchmark" / "glue_benchmark_with_bert.py"
SAMPLES = ROOT / "collections" / "nmod_nlp" / "data" / "glue" / "samples"


def glue(args, cwd, launcher=(), timeout=600):
    result = run_recipe(RECIPE, args, cwd, launcher, timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def sample(tmp_path, folder):
    """A copy of a shipped sample folder, so feature caches land in tmp_path."""
    return shutil.copytree(SAMPLES / folder, tmp_path / folder)


def read_labels_and_preds(path):
    lines = path.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["labels", "preds"]
    return [np.array(line.split("\t")[1].split(), dtype=float) for line in lines]


def printed(stdout, when):
    line = next(line for line in stdout.splitlines() if line.startswith("GLUE") and when in line)
    return dict((k, float(v)) for k, v in re.findall(r"(\w+) (-?[\d.]+)", line.split(":", 1)[1]))


def test_seed_command_on_mrpc_writes_nemo_files_and_metrics_that_match_them(megatron, tmp_path):
    data = sample(tmp_path, "MRPC")
    result = glue(["--data_dir", data, "--task_name", "mrpc", *megatron_flags(megatron), "--max_steps", "2",
                   "--batch_size", "4"], tmp_path)
    after = printed(result.stdout, "after training")
    assert set(after) == {"acc", "f1", "acc_and_f1"}
    labels, preds = read_labels_and_preds(tmp_path / "work" / "mrpc.txt")
    assert len(labels) == 20  # every dev row, in file order
    expected = glue_metrics("mrpc", preds.astype(int), labels.astype(int))
    assert after == pytest.approx({k: round(v, 4) for k, v in expected.items()}, abs=1e-4)
    assert re.search(r"^\[nmod .*\] acc \d\.\d{4}$", result.stdout, re.M)  # one log line per metric
    saved = read_yaml(tmp_path / "work" / "args.yaml")["arguments"]
    assert saved["task_name"] == "mrpc" and saved["pretrained_model_name"] == "megatron-uncased"


def test_mnli_reports_matched_and_mismatched_apart(megatron, tmp_path):
    data = sample(tmp_path, "MNLI")
    result = glue(["--data_dir", data, "--task_name", "MNLI", *megatron_flags(megatron), "--max_steps", "1"],
                  tmp_path)
    after = printed(result.stdout, "after training")
    assert set(after) == {"acc", "mismatched_acc"}
    for name in ("mnli.txt", "mnli-mm.txt"):
        labels, _ = read_labels_and_preds(tmp_path / "work" / name)
        assert len(labels) == 12


def test_sts_b_is_regression_with_pearson_and_spearman(megatron, tmp_path):
    data = sample(tmp_path, "STS-B")
    result = glue(["--data_dir", data, "--task_name", "sts-b", *megatron_flags(megatron), "--max_steps", "2"],
                  tmp_path)
    after = printed(result.stdout, "after training")
    assert set(after) == {"pearson", "spearmanr", "corr"}
    labels, preds = read_labels_and_preds(tmp_path / "work" / "sts-b.txt")
    assert labels.min() >= 0 and labels.max() <= 5 and not np.all(preds == preds.round())  # real-valued scores


def test_test_mode_writes_the_glue_submission_file(megatron, tmp_path):
    data = sample(tmp_path, "SST-2")
    glue(["--data_dir", data, "--task_name", "sst-2", *megatron_flags(megatron), "--mode", "test"], tmp_path)
    rows = [line.split("\t") for line in (tmp_path / "work" / "SST-2.tsv").read_text().splitlines()]
    assert rows[0] == ["index", "prediction"] and len(rows) == 21
    test_ids = [line.split("\t")[0] for line in (data / "test.tsv").read_text().splitlines()[1:]]
    assert [r[0] for r in rows[1:]] == test_ids and {r[1] for r in rows[1:]} <= {"0", "1"}


def test_two_gloo_processes_evaluate_exactly_as_one(megatron, tmp_path):
    data = sample(tmp_path, "CoLA")
    args = ["--data_dir", data, "--task_name", "cola", *megatron_flags(megatron), "--mode", "eval"]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = glue(args, tmp_path / "one")
    two = glue(args, tmp_path / "two", launcher=torchrun(2))
    assert two.stdout.count("GLUE cola eval") == 1  # rank 0 prints
    assert printed(one.stdout, "eval") == printed(two.stdout, "eval")
    assert (tmp_path / "one" / "work" / "cola.txt").read_text() == (tmp_path / "two" / "work" / "cola.txt").read_text()


def test_eval_mode_from_a_checkpoint_reproduces_the_metrics_after_training(megatron, tmp_path):
    data = sample(tmp_path, "SST-2")
    flags = ["--data_dir", data, "--task_name", "sst-2", *megatron_flags(megatron)]
    trained = glue(flags + ["--max_steps", "3", "--batch_size", "16"], tmp_path)
    (tmp_path / "eval").mkdir()
    evaluated = glue(flags + ["--mode", "eval", "--checkpoint_dir", tmp_path / "work" / "checkpoints"],
                     tmp_path / "eval")
    assert printed(evaluated.stdout, "eval") == printed(trained.stdout, "after training")


@pytest.mark.parametrize("args, message", [
    (["--pretrained_model_name", "megatron-uncased"], "--data_dir and --task_name are required"),
    (["--data_dir", "/nope", "--task_name", "rte"], "--data_dir /nope: no such file"),
    (["--task_name", "squad"], "--task_name"),
])
def test_bad_arguments_name_the_flag(args, message, tmp_path):
    result = run_recipe(RECIPE, args, tmp_path, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
