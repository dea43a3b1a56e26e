"""The joint intent/slot recipe end to end, as NeMo users type it: the seed's Megatron flags, class
balancing, per-label reports and prediction files, eval from a checkpoint, two gloo processes
against one, and inference from the trained run's folder."""
import re
import shutil

import numpy as np
import pytest

from nmod.core.config import read_yaml
from nmod_nlp.metrics import classification_report
from recipe_runner import ROOT, megatron_flags, run_recipe, torchrun

EXAMPLES = ROOT / "examples" / "nlp" / "intent_detection_slot_tagging"
RECIPE, INFER = EXAMPLES / "joint_intent_slot_with_bert.py", EXAMPLES / "joint_intent_slot_infer.py"
SAMPLE = ROOT / "collections" / "nmod_nlp" / "data" / "intent_slot" / "samples"


def ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def printed(stdout, when):
    line = next(line for line in stdout.splitlines() if line.startswith("Intent and slot " + when))
    return dict((k, float(v)) for k, v in re.findall(r"(\w+) (-?[\d.]+)", line.split(":", 1)[1]))


@pytest.fixture
def data(tmp_path):
    return shutil.copytree(SAMPLE, tmp_path / "data", ignore=shutil.ignore_patterns("*.py", "*.cache.pt"))


def test_seed_command_trains_both_heads_and_writes_reports(megatron, data, tmp_path):
    result = ok(run_recipe(RECIPE, ["--data_dir", data, *megatron_flags(megatron), "--max_steps", "3",
                                    "--batch_size", "16", "--class_balancing", "weighted_loss",
                                    "--intent_loss_weight", "0.6"], tmp_path))
    after = printed(result.stdout, "after training")
    assert {"intent_accuracy", "intent_macro_f1", "slot_accuracy", "slot_macro_f1", "slot_entity_f1"} <= set(after)
    work = tmp_path / "work"
    lines = (work / "intent_predictions.txt").read_text().splitlines()
    labels, preds = (np.array(line.split("\t")[1].split(), dtype=int) for line in lines)
    assert len(labels) == 40 and after["intent_accuracy"] == pytest.approx(
        classification_report(preds, labels, 4)["accuracy"], abs=1e-4)
    conll = [line.split() for line in (work / "slot_predictions.txt").read_text().splitlines() if line]
    queries = (data / "test.tsv").read_text().splitlines()[1:]
    assert len(conll) == sum(len(line.split("\t")[0].split()) for line in queries)  # a row per eval word
    assert "get_weather" in result.stdout and "macro avg" in result.stdout  # per-label reports
    assert (work / "dict.intents.csv").read_text() == (data / "dict.intents.csv").read_text()
    saved = read_yaml(work / "args.yaml")["arguments"]
    assert saved["intent_loss_weight"] == 0.6 and saved["eval_file_prefix"] == "test"


def test_eval_from_checkpoint_with_two_processes_equals_one_and_infer_uses_the_run_folder(megatron, data, tmp_path):
    flags = ["--data_dir", data, *megatron_flags(megatron)]
    ok(run_recipe(RECIPE, flags + ["--max_steps", "2", "--mode", "train"], tmp_path))
    evals = []
    for name, launcher in (("one", ()), ("two", torchrun(2))):
        (tmp_path / name).mkdir()
        evals.append(ok(run_recipe(RECIPE, flags + ["--mode", "eval", "--checkpoint_dir",
                                                    tmp_path / "work" / "checkpoints"], tmp_path / name, launcher)))
    assert printed(evals[0].stdout, "eval") == printed(evals[1].stdout, "eval")
    assert evals[1].stdout.count("Intent and slot eval") == 1
    assert ((tmp_path / "one" / "work" / "slot_predictions.txt").read_text()
            == (tmp_path / "two" / "work" / "slot_predictions.txt").read_text())
    infer = ok(run_recipe(INFER, ["--queries", "book a flight to rome tomorrow",
                                  "--queries", "play adele"], tmp_path))  # --work_dir: the trained run
    rows = [line for line in infer.stdout.splitlines() if line.startswith("Query: ")]
    assert len(rows) == 2
    intents = (data / "dict.intents.csv").read_text().split()
    assert all(re.search(r"intent: (\w+)", r).group(1) in intents for r in rows)
    assert re.search(r"slots: (\S+ ){5}\S+$", rows[0])  # one slot per word


@pytest.mark.parametrize("args, message", [
    (["--pretrained_model_name", "megatron-uncased"], "--data_dir is required"),
    (["--data_dir", "/nope"], "--data_dir /nope: no such file"),
    (["--intent_loss_weight", "1.5"], "--intent_loss_weight: must be at least 0.0 and at most 1.0"),
])
def test_bad_arguments_name_the_flag(args, message, tmp_path):
    result = run_recipe(RECIPE, args, tmp_path, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
