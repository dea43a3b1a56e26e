"""Fine-tune SQuAD a few steps on the tiny Megatron checkpoint, then answer from work_dir/model alone."""
import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

from nmod.core.errors import ConfigError, DataFormatError
from nmod_nlp import recipe
from nmod_nlp.inference import QuestionAnswerer, _InMemorySquadDataset, squad_data
from nmod_nlp.model_folder import load_model_folder, save_model_folder

from recipe_runner import ROOT, VOCAB, run_recipe

TRAIN = ROOT / "examples" / "nlp" / "question_answering" / "question_answering_squad.py"
INFER = ROOT / "examples" / "nlp" / "question_answering" / "question_answering_infer.py"
SAMPLES = ROOT / "collections" / "nmod_nlp" / "data" / "squad" / "samples"
MAX_SEQ_LENGTH, DOC_STRIDE = 96, 32  # short windows: every sample context is cut into several


@pytest.fixture(scope="module")
def trained(megatron, tmp_path_factory):
    """A 2-step SQuAD run whose Megatron config and checkpoint are then moved out of reach."""
    root = tmp_path_factory.mktemp("qa")
    encoder_files = root / "megatron"
    encoder_files.mkdir()
    config = shutil.copy(megatron["config"], encoder_files / "config.json")
    checkpoint = shutil.copy(megatron["checkpoint"], encoder_files / "model_optim_rng.pt")
    data = json.loads((SAMPLES / "dev-v1.1.json").read_text())
    data["data"] = data["data"][:2]
    dev = root / "dev.json"
    dev.write_text(json.dumps(data))
    args = ["--train_file", dev, "--eval_file", dev, "--pretrained_model_name", "megatron-uncased",
            "--bert_config", config, "--bert_checkpoint", checkpoint, "--vocab_file", VOCAB, "--do_lower_case",
            "--max_steps", "2", "--batch_size", "4", "--lr", "1e-3", "--max_seq_length", MAX_SEQ_LENGTH,
            "--doc_stride", DOC_STRIDE, "--eval_step_freq", "2"]  # predictions.json from the trained weights
    result = run_recipe(TRAIN, args, root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    encoder_files.rename(root / "moved-away")  # the folder must not need them
    contexts = {q["id"]: p["context"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]}
    questions = {q["id"]: q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]}
    return {"model": root / "work" / "model", "work": root / "work", "dev": dev, "contexts": contexts,
            "questions": questions, "root": root}


def infer(*args, cwd):
    cmd = [sys.executable, str(INFER), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_the_folder_records_the_run(trained):
    model = load_model_folder(trained["model"])
    assert model.task == "squad" and set(model.modules) == {"encoder", "qa_head"}
    assert model.extra["max_seq_length"] == MAX_SEQ_LENGTH and model.extra["doc_stride"] == DOC_STRIDE
    assert str(trained["root"]) not in (trained["model"] / "model.yaml").read_text()
    assert (trained["work"] / "qa_head.pt").is_file()  # NeMo's head file is still written


def test_infer_script_gives_the_recipes_own_predictions_from_the_folder_alone(trained):
    result = infer("--model_dir", trained["model"], "--input_file", trained["dev"], "--batch_size", 4,
                   cwd=trained["root"])
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    predictions = json.loads((trained["work"] / "predictions.json").read_text())
    assert [r["id"] for r in lines] == list(trained["contexts"])  # one line per question, in file order
    for r in lines:
        assert set(r) == {"id", "answer", "start", "end", "score"}
        assert trained["contexts"][r["id"]][r["start"]:r["end"]] == r["answer"] != ""
        assert 0 < r["score"] <= 1
        assert r["answer"] == predictions[r["id"]], r["id"]


def test_one_question_on_the_command_line(trained):
    qid = next(iter(trained["contexts"]))
    context = trained["contexts"][qid]
    result = infer("--model_dir", trained["model"], "--question", trained["questions"][qid], "--context", context,
                   cwd=trained["root"])
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.splitlines()
    r = json.loads(line)
    assert context[r["start"]:r["end"]] == r["answer"]
    assert r["answer"] == json.loads((trained["work"] / "predictions.json").read_text())[qid]


def test_python_api_windows_a_long_context_and_gives_a_valid_span(trained):
    qa = QuestionAnswerer.from_model_dir(trained["model"])
    assert qa.settings["max_seq_length"] == MAX_SEQ_LENGTH and qa.settings["doc_stride"] == DOC_STRIDE
    context = " ".join(trained["contexts"].values())  # far longer than one window
    question = "Who founded the society?"
    windows = _InMemorySquadDataset(squad_data([{"question": question, "context": context}]), qa.tokenizer,
                                    MAX_SEQ_LENGTH, DOC_STRIDE, 64)
    assert len(windows) > 5 and max(windows.lengths) <= MAX_SEQ_LENGTH
    answer = qa(question, context)
    assert set(answer) == {"answer", "start", "end", "score"}
    assert answer["answer"] and context[answer["start"]:answer["end"]] == answer["answer"]
    assert qa(question, context) == answer  # deterministic: eval mode, no dropout
    many = qa.answer([{"id": "a", "question": question, "context": context},
                      {"question": "Where?", "context": "Here."}])
    assert [m["id"] for m in many] == ["a", "1"] and many[0]["answer"] == answer["answer"]


def test_a_v2_model_may_answer_nothing(trained):
    qa = QuestionAnswerer.from_model_dir(trained["model"], version_2_with_negative=True,
                                         null_score_diff_threshold=-1e9)  # the null answer always wins
    r = qa("Who?", "Nobody is named here.")
    assert (r["answer"], r["start"], r["end"]) == ("", None, None) and 0 < r["score"] <= 1


def test_bad_inputs_and_folders_give_one_line_errors(trained, tmp_path, capsys):
    qa = QuestionAnswerer.from_model_dir(trained["model"])
    with pytest.raises(DataFormatError, match="question 0: the question is empty"):
        qa("  ", "context")
    with pytest.raises(TypeError, match="unknown settings"):
        QuestionAnswerer.from_model_dir(trained["model"], max_seq_len=64)

    model = load_model_folder(trained["model"])
    other = save_model_folder(tmp_path / "glue", "glue", {"encoder": model["encoder"]}, model.tokenizer)
    with pytest.raises(ConfigError, match="holds a 'glue' model, not a question-answering one"):
        QuestionAnswerer.from_model_dir(other)

    spec = importlib.util.spec_from_file_location("question_answering_infer", INFER)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for args, message in [
        (["--model_dir", other, "--question", "q", "--context", "c"], "holds a 'glue' model"),
        (["--model_dir", tmp_path / "nowhere", "--question", "q", "--context", "c"], "does not exist"),
        (["--model_dir", trained["work"], "--question", "q", "--context", "c"], "no model.yaml"),
        (["--model_dir", trained["model"], "--question", "q"], "pass --question and --context, or --input_file"),
        (["--model_dir", trained["model"], "--input_file", tmp_path / "none.json"], "no such file"),
    ]:
        argv = list(map(str, args))
        with pytest.raises(SystemExit) as exit_:  # as the script ends: one line on stderr, status 2
            recipe.run(lambda: script.main(argv), argv)
        assert exit_.value.code == 2, args
        assert message in capsys.readouterr().err
