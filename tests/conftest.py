"""Shared fixtures. Tiny modules for the core tests live in `nmod.testing`, so YAML can name them."""
import logging

import pytest
import torch

from nmod.core import default_context


@pytest.fixture(autouse=True)
def _seeded_and_not_debugging():
    """Each test starts from the same random state and with debug shape checks off."""
    torch.manual_seed(0)
    debug = default_context.debug
    default_context.debug = False
    yield
    default_context.debug = debug


@pytest.fixture(autouse=True)
def _nmod_logs_reach_caplog(request):
    """Every nmod logger is a child of "nmod", which the factory stops propagating (so its lines are
    not printed twice); give "nmod" caplog's handler for the test, so caplog sees them either way."""
    if "caplog" not in request.fixturenames:
        yield
        return
    caplog = request.getfixturevalue("caplog")
    root = logging.getLogger("nmod")
    propagate = root.propagate
    root.addHandler(caplog.handler)
    root.propagate = False  # once, not through both paths
    yield
    root.removeHandler(caplog.handler)
    root.propagate = propagate


@pytest.fixture
def toy_graph():
    """data -> emb -> enc -> enc (shared) -> cls -> loss, with the data layer's labels into the loss.

    Returns (graph, modules by name); module names are fixed so tests can name calls.
    """
    from nmod.core import Graph
    from nmod.testing import ToyClassifier, ToyDataLayer, ToyEmbedding, ToyEncoder, ToyLoss

    m = {
        "data": ToyDataLayer(name="data"),
        "emb": ToyEmbedding(name="emb"),
        "enc": ToyEncoder(name="enc"),
        "cls": ToyClassifier(name="cls"),
        "loss": ToyLoss(name="loss"),
    }
    batch = m["data"]()
    hidden = m["emb"](input_ids=batch.input_ids)
    hidden = m["enc"](hidden_states=hidden, attention_mask=batch.attention_mask)
    hidden = m["enc"](hidden_states=hidden)
    logits = m["cls"](hidden_states=hidden)
    loss = m["loss"](logits=logits, labels=batch.labels)
    return Graph([loss, logits]), m


@pytest.fixture
def toy_batch():
    """The first batch of the default ToyDataLayer, as run_graph's source values for call 'data'."""
    from nmod.testing import ToyDataLayer

    layer = ToyDataLayer(name="toy_batch_source")
    input_ids, attention_mask, labels = layer.dataset[: layer.batch_size]
    return {"data": {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}}
