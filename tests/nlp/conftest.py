"""The fixtures the recipe tests share: tiny Megatron-LM checkpoints in Megatron's layout, one
pretrained without a binary head (no pooler, as most tests use) and one with it (a pooler)."""
import json

import pytest
import torch

from nmod_nlp.modules.encoders import MegatronBERT
from nmod_nlp.testing import save_megatron_checkpoint

from recipe_runner import VOCAB


def _tiny_megatron(folder, add_pooler: bool) -> dict:
    config = {"hidden-size": 32, "num-attention-heads": 2, "num-layers": 2, "max-seq-length": 128}
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = MegatronBERT(config_file=str(folder / "config.json"), vocab_file=str(VOCAB), add_pooler=add_pooler)
    save_megatron_checkpoint(model, folder / "save", num_attention_heads=2)
    files = sorted((folder / "save").rglob("model_optim_rng.pt"))
    assert len(files) == 1
    return {"config": folder / "config.json", "checkpoint": files[0], "model": model}


@pytest.fixture(scope="session")
def megatron(tmp_path_factory):
    """A tiny Megatron-LM BERT saved in Megatron's own layout, with a Megatron config.json; no pooler."""
    return _tiny_megatron(tmp_path_factory.mktemp("megatron"), add_pooler=False)


@pytest.fixture(scope="session")
def megatron_with_pooler(tmp_path_factory):
    """The same, pretrained with a binary head: its checkpoint holds ``language_model.pooler``."""
    return _tiny_megatron(tmp_path_factory.mktemp("megatron_pooler"), add_pooler=True)
