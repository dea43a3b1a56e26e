"""benchmarks/token_heads_accuracy.py's tasks derived from CoNLL-2003, read back by the recipes' own readers."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import token_heads_accuracy as T  # noqa: E402

from nmod_nlp.data.intent_slot.reader import read_intent_slot_files, read_label_dict  # noqa: E402
from nmod_nlp.data.punctuation_capitalization.reader import punctuate, read_punct_capit_files  # noqa: E402
from nmod_nlp.data.token_classification.iob import read_iob_file  # noqa: E402

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
, , O O
Peter NNP B-NP B-PER
says VBZ B-VP O
. . O O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O

the DT B-NP O
end NN I-NP O
"""


def sentences(tmp_path):
    (tmp_path / "train.txt").write_text(CONLL)
    rows = read_iob_file(tmp_path / "train.txt")[0]
    assert [len(words) for words, _ in rows] == [8, 2, 2]
    return {"train": rows, "dev": rows[:2]}


def test_punctuation_task_restores_the_sentence(tmp_path):
    T.write_punct(sentences(tmp_path), tmp_path / "punct")
    data = read_punct_capit_files(tmp_path / "punct" / "text_train.txt", tmp_path / "punct" / "labels_train.txt")
    assert data.sentences[0] == "eu rejects german call peter says".split()
    assert "".join(data.punct[0]) == "OOO,O." and "".join(data.capit[0]) == "UOUOUO"
    assert punctuate(data.sentences[0], data.punct[0], data.capit[0]) == "Eu rejects German call, Peter says."
    assert data.sentences[1:] == [["brussels", "1996-08-22"], ["the", "end"]]  # a date is a word, not a mark
    assert len(read_punct_capit_files(tmp_path / "punct" / "text_dev.txt",
                                      tmp_path / "punct" / "labels_dev.txt").sentences) == 2


def test_intent_slot_task_has_the_ner_tags_as_slots_and_the_first_entity_type_as_intent(tmp_path):
    T.write_intent_slot(sentences(tmp_path), tmp_path / "nlu")
    slots = read_label_dict(tmp_path / "nlu" / "dict.slots.csv")
    intents = read_label_dict(tmp_path / "nlu" / "dict.intents.csv")
    assert slots == ["B-LOC", "B-MISC", "B-ORG", "B-PER", "O"]  # `O` last, as NeMo's conversions
    assert intents == ["LOC", "ORG", "none"]
    data = read_intent_slot_files(tmp_path / "nlu" / "train.tsv", tmp_path / "nlu" / "train_slots.tsv",
                                  len(intents), len(slots))
    assert [intents[i] for i in data.intents] == ["ORG", "LOC", "none"]
    assert [slots[i] for i in data.slots[0]] == ["B-ORG", "O", "B-MISC", "O", "O", "B-PER", "O", "O"]
