"""One logger tree: a collection's lines reach the console through the factory's handler, formatted."""
import re
import subprocess
import sys
import textwrap

from recipe_runner import VOCAB

SCRIPT = textwrap.dedent("""
    import sys
    import nmod
    from nmod_nlp.data.token_classification import BertTokenClassificationDataLayer
    from nmod_nlp.tokenizers import BertWordPieceTokenizer

    text, labels, vocab = sys.argv[1:4]
    nf = nmod.NeuralModuleFactory(placement=nmod.DeviceType.CPU)
    BertTokenClassificationDataLayer(text, labels, tokenizer=BertWordPieceTokenizer(vocab, do_lower_case=True),
                                     max_seq_length=5, batch_size=2, use_cache=False)
""")


def test_a_data_layer_warning_reaches_the_console_in_nmods_format(tmp_path):
    text, labels = tmp_path / "text.txt", tmp_path / "labels.txt"
    text.write_text("alpha beta gamma delta epsilon zeta\nshort\n")
    labels.write_text("O O O O O O\nO\n")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(text), str(labels), VOCAB], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # nmod_nlp.data.token_classification.features logs as nmod.nlp...: the "nmod" handler prints it on stdout.
    assert re.search(r"^\[nmod \d\d:\d\d:\d\d WARNING\] 1 of 2 sentences are longer than max_seq_length=5",
                     done.stdout, re.M), done.stdout + done.stderr
    assert "sentences are longer" not in done.stderr  # not printed a second time, unformatted, by logging's last resort
