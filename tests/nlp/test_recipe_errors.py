"""nmod's own errors reach the command line as one line (`error: ...`, exit 2), as argparse's do."""
import json

import pytest

from nmod.core import ConfigError
from nmod_nlp import recipe
from recipe_runner import ROOT, VOCAB, run_recipe

SQUAD = ROOT / "examples" / "nlp" / "question_answering" / "question_answering_squad.py"
GLUE = ROOT / "examples" / "nlp" / "glue_benchmark" / "glue_benchmark_with_bert.py"


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def megatron_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden-size": 32, "num-attention-heads": 2, "num-layers": 2, "max-seq-length": 64}))
    return path


def test_a_data_format_error_is_one_line(tmp_path):
    bad = tmp_path / "train.json"
    bad.write_text('{"version": "1.1", "data": [}')
    result = run_recipe(SQUAD, ["--train_file", bad, "--eval_file", bad], tmp_path, timeout=300)
    assert_one_line_error(result, f"{bad}:1:")


def test_an_empty_glue_file_is_one_line_before_training(tmp_path):
    data = tmp_path / "RTE"
    data.mkdir()
    (data / "train.tsv").write_text("")
    (data / "dev.tsv").write_text("")
    result = run_recipe(GLUE, ["--data_dir", data, "--task_name", "rte"], tmp_path, timeout=300)
    assert_one_line_error(result, "train.tsv")


def rte_files(tmp_path):
    """The files an RTE run reads, present (their contents are never reached)."""
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / name).write_text("")
    return tmp_path


def test_a_configuration_error_is_one_line(tmp_path):
    result = run_recipe(GLUE, ["--data_dir", rte_files(tmp_path), "--task_name", "rte", "--pretrained_model_name",
                               "megatron-uncased"], tmp_path, timeout=300)
    assert_one_line_error(result, "--bert_config", "--bert_checkpoint")


def test_a_damaged_encoder_checkpoint_is_one_line(tmp_path):
    checkpoint = tmp_path / "model_optim_rng.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    dev = ROOT / "collections" / "nmod_nlp" / "data" / "squad" / "samples" / "dev-v1.1.json"
    result = run_recipe(SQUAD, ["--mode", "eval", "--eval_file", dev, "--pretrained_model_name", "megatron-uncased",
                                "--bert_config", megatron_config(tmp_path), "--bert_checkpoint", checkpoint,
                                "--vocab_file", VOCAB], tmp_path, timeout=300)
    assert_one_line_error(result, str(checkpoint))


def test_a_bad_flag_is_argparse_s_one_line(tmp_path):
    result = run_recipe(SQUAD, ["--max_steps", "-5"], tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: argument --max_steps: expected a positive int or -1 (not set), got '-5'" in result.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(how, tmp_path, monkeypatch):
    args = ["--data_dir", rte_files(tmp_path), "--task_name", "rte", "--pretrained_model_name", "megatron-uncased"]
    if how == "flag":
        args.append("--debug")
    else:
        monkeypatch.setenv("NMOD_DEBUG", "1")
    result = run_recipe(GLUE, args, tmp_path, timeout=300)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_run_leaves_other_exceptions_alone(monkeypatch, capsys):
    monkeypatch.delenv("NMOD_DEBUG", raising=False)

    def broken():
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        recipe.run(broken, argv=[])

    def misconfigured():
        raise ConfigError("no vocab size")

    with pytest.raises(SystemExit) as exit_info:
        recipe.run(misconfigured, argv=[])
    assert exit_info.value.code == 2 and capsys.readouterr().err == "error: no vocab size\n"
