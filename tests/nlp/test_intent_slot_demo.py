"""The joint intent/slot recipe with no arguments (real MiniLM weights, the shipped sample), then
inference from the run's folder alone."""
import re
import subprocess
import sys

from recipe_runner import ROOT

EXAMPLES = ROOT / "examples" / "nlp" / "intent_detection_slot_tagging"


def run(script, args, tmp_path) -> str:
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=1200,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def metric(stdout: str, when: str, name: str) -> float:
    match = re.search(rf"^Intent and slot {when} training: .*\b{name} ([\d.]+)", stdout, re.M)
    assert match, stdout[-3000:]
    return float(match.group(1))


def test_demo_raises_intent_and_slot_scores_and_infer_reads_the_run(tmp_path):
    out = run(EXAMPLES / "joint_intent_slot_with_bert.py", ["--num_epochs", "2"], tmp_path)
    assert metric(out, "after", "intent_accuracy") > metric(out, "before", "intent_accuracy") + 0.4
    assert metric(out, "after", "slot_macro_f1") > metric(out, "before", "slot_macro_f1") + 0.15
    text = run(EXAMPLES / "joint_intent_slot_infer.py", ["--queries", "play some adele"], tmp_path)
    assert re.search(r"^Query: play some adele\tintent: play_music\tslots: \S+ \S+ \S+$", text, re.M), text
