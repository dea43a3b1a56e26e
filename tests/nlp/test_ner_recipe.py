"""The NER recipe end to end, as NeMo users type it: the seed's Megatron flags, predictions.conll that
conlleval scores to the logged number, eval from a checkpoint under one and two gloo processes,
inference from the run's folder alone, the IOB importer, and the MiniLM demo."""
import re
import shutil
import subprocess
import sys

import pytest

from nmod.core.config import read_yaml
from nmod_nlp.metrics import conlleval_lines
from recipe_runner import ROOT, megatron_flags, run_recipe, torchrun

FOLDER = ROOT / "examples" / "nlp" / "token_classification"
RECIPE = FOLDER / "token_classification.py"
INFER = FOLDER / "token_classification_infer.py"
IMPORT = FOLDER / "import_from_iob_format.py"
SAMPLE = ROOT / "collections" / "nmod_nlp" / "data" / "token_classification" / "samples"


def ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def printed(stdout, when):
    line = next(line for line in stdout.splitlines() if line.startswith("NER") and when in line)
    return dict((k, float(v)) for k, v in re.findall(r"(\w+) (-?[\d.]+)", line.split(":", 1)[1]))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A copy of the shipped sample (feature caches land beside it) with one malformed training line."""
    folder = shutil.copytree(SAMPLE, tmp_path_factory.mktemp("ner") / "data",
                             ignore=shutil.ignore_patterns("*.py", "*.cache.pt"))
    labels = (folder / "labels_train.txt").read_text().splitlines()
    labels[2] += " O"
    (folder / "labels_train.txt").write_text("\n".join(labels) + "\n")
    return folder


@pytest.fixture(scope="module")
def trained(megatron, data, tmp_path_factory):
    """A 2-step Megatron run on the sample: the seed command with NeMo's NER flags."""
    tmp_path = tmp_path_factory.mktemp("trained")
    result = ok(run_recipe(RECIPE, ["--data_dir", data, *megatron_flags(megatron), "--max_steps", "2",
                                    "--batch_size", "16", "--use_cache"], tmp_path))
    return result, tmp_path / "work"


def test_seed_command_writes_conll_predictions_scored_as_logged(trained, data):
    result, work = trained
    words = len((data / "text_train.txt").read_text().splitlines()[2].split())
    assert f"{data / 'labels_train.txt'}:3: {words} words in text_train.txt but {words + 1} labels" in result.stdout  # a warning, through nmod's handler
    after = printed(result.stdout, "after training")
    assert set(after) == {"accuracy", "macro_f1", "micro_f1", "weighted_f1", "entity_precision", "entity_recall",
                          "entity_f1"}
    assert re.search(r"^\[nmod .*\] entity_f1 \d+\.\d{2}$", result.stdout, re.M)
    conll = (work / "predictions.conll").read_text()
    sentences = conll.split("\n\n")[:-1]
    dev_text = (data / "text_dev.txt").read_text().splitlines()
    dev_labels = (data / "labels_dev.txt").read_text().splitlines()
    assert len(sentences) == len(dev_text)
    for block, words, gold in zip(sentences, dev_text, dev_labels):
        rows = [line.split(" ") for line in block.splitlines()]
        assert [r[0] for r in rows] == words.split() and [r[1] for r in rows] == gold.split()
    scored = conlleval_lines(conll.splitlines())
    assert after["entity_f1"] == pytest.approx(round(scored["f1"], 2), abs=0.006)
    assert (work / "label_ids.csv").read_text().splitlines() == [
        "O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER"]
    assert (work / "confusion_matrix.tsv").is_file()
    saved = read_yaml(work / "args.yaml")["arguments"]
    assert saved["pretrained_model_name"] == "megatron-uncased" and saved["ignore_extra_tokens"] is True
    assert list(data.glob("text_train.txt.token_classification-*.cache.pt"))  # --use_cache


def test_two_gloo_processes_evaluate_exactly_as_one(trained, data, tmp_path):
    _, work = trained
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    args = ["--data_dir", data, "--mode", "eval", "--checkpoint_dir", work / "checkpoints",
            "--batch_size", "7"]  # 60 dev sentences: uneven batches and shards
    flags = read_flags(work)
    one = ok(run_recipe(RECIPE, args + flags, tmp_path / "one"))
    two = ok(run_recipe(RECIPE, args + flags, tmp_path / "two", launcher=torchrun(2)))
    assert two.stdout.count("NER eval") == 1
    assert printed(one.stdout, "eval") == printed(two.stdout, "eval")
    assert (tmp_path / "one" / "work" / "predictions.conll").read_text() == \
        (tmp_path / "two" / "work" / "predictions.conll").read_text()
    assert printed(one.stdout, "eval") == printed(trained[0].stdout, "after training")


def read_flags(work):
    saved = read_yaml(work / "args.yaml")["arguments"]
    return ["--pretrained_model_name", saved["pretrained_model_name"], "--bert_config", saved["bert_config"],
            "--bert_checkpoint", saved["bert_checkpoint"], "--vocab_file", saved["vocab_file"], "--do_lower_case"]


def test_inference_from_the_run_folder_alone(trained, tmp_path):
    _, work = trained
    moved = shutil.copytree(work, tmp_path / "elsewhere")  # the run's folder, anywhere: nothing else needed
    result = ok(subprocess.run([sys.executable, str(INFER), "--checkpoint_dir", f"{moved}/checkpoints", "--queries",
                                "Angela Merkel visited Paris on Monday .", "hello"],
                               capture_output=True, text=True, timeout=300, cwd=tmp_path))
    lines = [line for line in result.stdout.splitlines() if line.startswith("Result: ")]
    assert len(lines) == 2
    words = lines[0][len("Result: "):].split(" ")
    assert [re.sub(r"\[.*\]$", "", w) for w in words] == "Angela Merkel visited Paris on Monday .".split()
    labels = set((tmp_path / "elsewhere" / "label_ids.csv").read_text().split())
    assert all(m in labels for m in re.findall(r"\[(.*?)\]", lines[0]))


def test_eval_without_a_checkpoint_names_the_flag(tmp_path, data):
    result = run_recipe(RECIPE, ["--data_dir", data, "--pretrained_model_name", "megatron-uncased", "--mode", "eval"],
                        tmp_path, timeout=120)
    assert result.returncode == 2 and "--mode eval needs --checkpoint_dir" in result.stderr, result.stderr


def test_importer_drops_docstart_and_trailing_spaces_and_splits_long_sentences(tmp_path):
    (tmp_path / "train.txt").write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\ncall NN I-NP O \n\n"
        "Peter NNP B-NP B-PER\nBlackburn NNP B-NP I-PER\n\n")
    result = ok(subprocess.run([sys.executable, str(IMPORT), "--data_file", str(tmp_path / "train.txt"),
                                "--max_length", "3"], capture_output=True, text=True, timeout=120))
    assert "wrote 3 sentences (6 words)" in result.stdout
    assert (tmp_path / "text_train.txt").read_text() == "EU rejects German\ncall\nPeter Blackburn\n"
    assert (tmp_path / "labels_train.txt").read_text() == "I-ORG O I-MISC\nO\nB-PER I-PER\n"


def test_demo_runs_with_no_arguments_and_the_entity_f1_rises(tmp_path):
    result = ok(run_recipe(RECIPE, [], tmp_path))
    before, after = printed(result.stdout, "before training"), printed(result.stdout, "after training")
    assert after["entity_f1"] > before["entity_f1"] + 30, (before, after)


def test_the_run_writes_a_model_folder_with_the_label_ids(trained):
    from nmod_nlp.model_folder import load_model_folder
    from nmod_nlp.modules.heads import TokenClassifier

    _, work = trained
    model = load_model_folder(work / "model")
    assert model.task == "ner" and model.labels["labels"] == (work / "label_ids.csv").read_text().split()
    assert isinstance(model["head"], TokenClassifier)
    assert model["head"].init_params["num_classes"] == len(model.labels["labels"])
