"""The text-classification recipe end to end: the seed's Megatron flags, class balancing, the report
files, eval from a checkpoint, and two gloo processes against one."""
import re
import shutil

import numpy as np
import pytest

from nmod_nlp.metrics import classification_report
from recipe_runner import ROOT, megatron_flags, run_recipe, torchrun

RECIPE = ROOT / "examples" / "nlp" / "text_classification" / "text_classification_with_bert.py"
SAMPLE = ROOT / "collections" / "nmod_nlp" / "data" / "text_classification" / "samples"


def classify(args, cwd, launcher=(), timeout=600):
    result = run_recipe(RECIPE, args, cwd, launcher, timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def printed(stdout, when):
    line = next(line for line in stdout.splitlines() if line.startswith("Text classification " + when))
    return dict((k, float(v)) for k, v in re.findall(r"(\w+) (-?[\d.]+)", line.split(":", 1)[1]))


def test_seed_command_with_weighted_loss_writes_report_files(megatron, tmp_path):
    data = shutil.copytree(SAMPLE, tmp_path / "data")
    result = classify(["--data_dir", data, *megatron_flags(megatron), "--max_steps", "3", "--batch_size", "16",
                       "--class_balancing", "weighted_loss"], tmp_path)
    after = printed(result.stdout, "after training")
    assert set(after) == {"accuracy", "macro_f1", "micro_f1", "weighted_f1"}
    work = tmp_path / "work"
    lines = (work / "text_classification.txt").read_text().splitlines()
    labels, preds = (np.array(line.split("\t")[1].split(), dtype=int) for line in lines)
    report = classification_report(preds, labels, 3)
    assert after["accuracy"] == pytest.approx(report["accuracy"], abs=1e-4)
    assert after["macro_f1"] == pytest.approx(report["macro"]["f1"], abs=1e-4)
    assert "macro avg" in result.stdout  # the per-class report is printed
    table = (work / "confusion_matrix.tsv").read_text().splitlines()
    assert len(table) == 4 and sum(int(v) for row in table[1:] for v in row.split("\t")[1:]) == len(labels)
    assert (work / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")


def test_eval_from_checkpoint_with_two_processes_equals_one(megatron, tmp_path):
    data = shutil.copytree(SAMPLE, tmp_path / "data")
    flags = ["--data_dir", data, *megatron_flags(megatron)]
    classify(flags + ["--max_steps", "2", "--mode", "train"], tmp_path)
    evals = []
    for name, launcher in (("one", ()), ("two", torchrun(2))):
        (tmp_path / name).mkdir()
        evals.append(classify(flags + ["--mode", "eval", "--checkpoint_dir", tmp_path / "work" / "checkpoints"],
                              tmp_path / name, launcher))
    assert printed(evals[0].stdout, "eval") == printed(evals[1].stdout, "eval")
    assert evals[1].stdout.count("Text classification eval") == 1


def test_missing_data_dir_names_the_flag(tmp_path):
    result = run_recipe(RECIPE, ["--pretrained_model_name", "megatron-uncased"], tmp_path, timeout=120)
    assert result.returncode == 2 and "--data_dir is required" in result.stderr
