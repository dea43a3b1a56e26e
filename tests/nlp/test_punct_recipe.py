"""The punctuation and capitalization recipe end to end, as NeMo users type it: the seed's Megatron
flags, both heads' reports and label-id files, eval from a checkpoint, two gloo processes against
one, and inference from the trained run's folder."""
import re
import shutil

import pytest

from nmod.core.config import read_yaml
from nmod_nlp.data.token_classification import read_label_ids
from nmod_nlp.model_folder import load_model_folder
from recipe_runner import ROOT, megatron_flags, run_recipe, torchrun

EXAMPLES = ROOT / "examples" / "nlp" / "punctuation_capitalization"
RECIPE, INFER = EXAMPLES / "punctuation_capitalization.py", EXAMPLES / "punctuation_capitalization_infer.py"
SAMPLE = ROOT / "collections" / "nmod_nlp" / "data" / "punctuation_capitalization" / "samples"


def ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def printed(stdout, when):
    line = next(line for line in stdout.splitlines() if line.startswith("Punctuation and capitalization " + when))
    return dict((k, float(v)) for k, v in re.findall(r"(\w+) (-?[\d.]+)", line.split(":", 1)[1]))


@pytest.fixture
def data(tmp_path):
    return shutil.copytree(SAMPLE, tmp_path / "data", ignore=shutil.ignore_patterns("*.py", "*.cache.pt"))


def test_seed_command_trains_two_heads_with_nemos_flags(megatron, data, tmp_path):
    result = ok(run_recipe(RECIPE, ["--data_dir", data, *megatron_flags(megatron), "--max_steps", "3",
                                    "--batch_size", "16", "--punct_num_fc_layers", "3", "--capit_num_fc_layers", "2",
                                    "--punct_loss_weight", "0.5", "--use_weighted_loss_punct"], tmp_path))
    after = printed(result.stdout, "after training")
    assert {f"{h}_{m}" for h in ("punct", "capit") for m in ("accuracy", "macro_f1")} <= set(after)
    work = tmp_path / "work"
    assert list(read_label_ids(work / "punct_label_ids.csv")) == ["O", ",", ".", "?"]
    assert list(read_label_ids(work / "capit_label_ids.csv")) == ["O", "U"]
    words = sum(len(line.split()) for line in (data / "text_dev.txt").read_text().splitlines())
    for head in ("punct", "capit"):
        rows = [line.split() for line in (work / f"{head}_predictions.txt").read_text().splitlines() if line]
        assert len(rows) == words  # one `word gold predicted` row per dev word
    assert result.stdout.count("macro avg") >= 2  # a report per head
    saved = read_yaml(work / "args.yaml")["arguments"]
    assert saved["punct_num_fc_layers"] == 3 and saved["pretrained_model_name"] == "megatron-uncased"


@pytest.mark.parametrize("flags, layers", [
    ([], (1, 1)),  # the default, --head linear: one Linear per head, as transformers' token classifiers
    (["--head", "mlp"], (3, 2)),  # NeMo 0.11's MLPs
    (["--head", "mlp", "--punct_num_fc_layers", "1"], (1, 2)),
])
def test_head_flag_sets_both_heads_layers_and_the_run_records_them(flags, layers, megatron, data, tmp_path):
    ok(run_recipe(RECIPE, ["--data_dir", data, *megatron_flags(megatron), "--max_steps", "1", "--mode", "train",
                           *flags], tmp_path))
    saved = read_yaml(tmp_path / "work" / "args.yaml")["arguments"]
    assert (saved["punct_num_fc_layers"], saved["capit_num_fc_layers"]) == layers
    head = load_model_folder(tmp_path / "work" / "model")["head"]
    assert (head.punct_mlp.layers, head.capit_mlp.layers) == tuple(2 * n - 1 for n in layers)  # Linear (ReLU Linear)*


def test_eval_from_checkpoint_with_two_processes_equals_one_and_infer_uses_the_run_folder(megatron, data, tmp_path):
    flags = ["--data_dir", data, *megatron_flags(megatron)]
    ok(run_recipe(RECIPE, flags + ["--max_steps", "2", "--mode", "train"], tmp_path))
    evals = []
    for name, launcher in (("one", ()), ("two", torchrun(2))):
        (tmp_path / name).mkdir()
        evals.append(ok(run_recipe(RECIPE, flags + ["--mode", "eval", "--checkpoint_dir",
                                                    tmp_path / "work" / "checkpoints"], tmp_path / name, launcher)))
    assert printed(evals[0].stdout, "eval") == printed(evals[1].stdout, "eval")
    assert evals[1].stdout.count("Punctuation and capitalization eval") == 1
    for head in ("punct", "capit"):
        assert ((tmp_path / "one" / "work" / f"{head}_predictions.txt").read_text()
                == (tmp_path / "two" / "work" / f"{head}_predictions.txt").read_text())
    infer = ok(run_recipe(INFER, ["--queries", "how are you", "--queries", "we met anna in paris"], tmp_path))
    combined = [line[len("Combined: "):] for line in infer.stdout.splitlines() if line.startswith("Combined: ")]
    assert len(combined) == 2
    for query, text in zip(["how are you", "we met anna in paris"], combined):  # the words survive, in order
        assert re.sub(r"[,.?]", "", text).lower().split() == query.split()


def test_eval_mode_without_the_runs_label_ids_names_the_problem(megatron, data, tmp_path):
    (tmp_path / "ckpt" / "step-00000001").mkdir(parents=True)  # a checkpoint folder, without its run's label ids
    (tmp_path / "ckpt" / "step-00000001" / "manifest.json").write_text("{}")
    result = run_recipe(RECIPE, ["--data_dir", data, *megatron_flags(megatron), "--mode", "eval",
                                 "--checkpoint_dir", tmp_path / "ckpt"], tmp_path, timeout=120)
    assert result.returncode == 2 and "punct_label_ids.csv" in result.stderr, result.stderr
