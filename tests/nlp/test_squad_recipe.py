"""The SQuAD recipe end to end: the seed command on a tiny Megatron checkpoint, test mode, torchrun."""
import json

import pytest

from recipe_runner import ROOT, megatron_flags, run_recipe as run_script, torchrun

RECIPE = ROOT / "examples" / "nlp" / "question_answering" / "question_answering_squad.py"
SAMPLES = ROOT / "collections" / "nmod_nlp" / "data" / "squad" / "samples"


@pytest.fixture(scope="module")
def small_squad(tmp_path_factory):
    """The first articles of the shipped dev sample, so the recipe runs in seconds."""
    folder = tmp_path_factory.mktemp("squad")
    data = json.loads((SAMPLES / "dev-v1.1.json").read_text())
    data["data"] = data["data"][:3]
    path = folder / "dev-small.json"
    path.write_text(json.dumps(data))
    ids = {q["id"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]}
    return path, ids


def run_recipe(args, tmp_path, launcher=(), timeout=600):
    return run_script(RECIPE, args, tmp_path, launcher, timeout)


def seed_args(megatron, train, eval_):
    return ["--train_file", train, "--eval_file", eval_, *megatron_flags(megatron)]


def test_seed_command_runs_as_written_and_writes_predictions(megatron, small_squad, tmp_path):
    data, ids = small_squad
    result = run_recipe(seed_args(megatron, data, data) + ["--max_steps", "3", "--batch_size", "4",
                                                            "--max_seq_length", "128"], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "SQuAD after training: EM" in result.stdout
    predictions = json.loads((tmp_path / "work" / "predictions.json").read_text())
    assert set(predictions) == ids
    nbest = json.loads((tmp_path / "work" / "nbest_predictions.json").read_text())
    assert set(nbest) == ids and all(len(v) >= 1 for v in nbest.values())
    assert sorted(p.name for p in (tmp_path / "work" / "checkpoints").iterdir())[-1].startswith("step-")

    # --mode eval on the saved checkpoint reproduces the metrics printed after training
    after = next(line for line in result.stdout.splitlines() if "SQuAD after training" in line)
    args = ["--mode", "eval", "--eval_file", data, *megatron_flags(megatron), "--max_seq_length", "128",
            "--checkpoint_dir", tmp_path / "work" / "checkpoints"]
    (tmp_path / "eval").mkdir()
    evaluated = run_recipe(args, tmp_path / "eval")
    assert evaluated.returncode == 0, evaluated.stdout[-3000:] + evaluated.stderr[-3000:]
    line = next(line for line in evaluated.stdout.splitlines() if "SQuAD eval" in line)
    assert line.split(":", 1)[1] == after.split(":", 1)[1]


def test_test_mode_writes_prediction_files(megatron, small_squad, tmp_path):
    data, ids = small_squad
    args = ["--mode", "test", "--test_file", data, *megatron_flags(megatron), "--max_seq_length", "128"]
    result = run_recipe(args, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    predictions = json.loads((tmp_path / "work" / "predictions.json").read_text())
    assert set(predictions) == ids
    assert all(isinstance(v, str) for v in predictions.values())


def test_two_process_gloo_run(megatron, small_squad, tmp_path):
    data, ids = small_squad
    launcher = torchrun(2)
    result = run_recipe(seed_args(megatron, data, data) + ["--max_steps", "2", "--batch_size", "2",
                                                            "--max_seq_length", "128"], tmp_path, launcher)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("SQuAD after training") == 1  # rank 0 only
    assert set(json.loads((tmp_path / "work" / "predictions.json").read_text())) == ids


@pytest.mark.parametrize(
    "args, message",
    [
        (["--train_file", "/nope/train.json", "--eval_file", "/nope/dev.json"], "--train_file /nope/train.json"),
        (["--pretrained_model_name", "megatron-uncased", "--train_file", "{data}", "--eval_file", "{data}"],
         "--bert_config"),
        (["--mode", "test"], "--test_file"),
    ],
)
def test_bad_arguments_name_the_flag(args, message, small_squad, tmp_path):
    data, _ = small_squad
    result = run_recipe([a.format(data=data) for a in args], tmp_path, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr


def test_compile_flag_gives_the_same_predictions(megatron, small_squad, tmp_path):
    data, _ = small_squad
    args = ["--mode", "test", "--test_file", data, *megatron_flags(megatron), "--max_seq_length", "128", "--attention_impl", "padded"]
    predictions = []
    for extra in ([], ["--compile"]):
        (tmp_path / str(len(extra))).mkdir()
        result = run_recipe(args + extra, tmp_path / str(len(extra)))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        predictions.append(json.loads((tmp_path / str(len(extra)) / "work" / "predictions.json").read_text()))
    assert predictions[0] == predictions[1]
