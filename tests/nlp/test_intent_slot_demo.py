"""The joint intent/slot recipe with no arguments (real MiniLM weights, the shipped sample), then
inference from the run's folder alone."""
import re

from recipe_runner import ROOT, run_recipe

EXAMPLES = ROOT / "examples" / "nlp" / "intent_detection_slot_tagging"


def run(script, args, tmp_path) -> str:
    """The script as a user runs it (one thread per process, as every recipe test); run_recipe adds
    `--work_dir tmp_path/work`, which is also the folder the infer script reads the run from."""
    result = run_recipe(script, args, tmp_path, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def metric(stdout: str, when: str, name: str) -> float:
    match = re.search(rf"^Intent and slot {when} training: .*\b{name} ([\d.]+)", stdout, re.M)
    assert match, stdout[-3000:]
    return float(match.group(1))


def test_demo_raises_intent_and_slot_scores_and_infer_reads_the_run(tmp_path):
    # Half the demo's 8 epochs keeps CI under a minute; both heads still clearly improve.
    out = run(EXAMPLES / "joint_intent_slot_with_bert.py", ["--num_epochs", "4"], tmp_path)
    assert metric(out, "after", "intent_accuracy") > metric(out, "before", "intent_accuracy") + 0.4
    assert metric(out, "after", "slot_macro_f1") > metric(out, "before", "slot_macro_f1") + 0.15
    text = run(EXAMPLES / "joint_intent_slot_infer.py", ["--queries", "play some adele"], tmp_path)
    assert re.search(r"^Query: play some adele\tintent: play_music\tslots: \S+ \S+ \S+$", text, re.M), text
