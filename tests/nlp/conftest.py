"""The fixture the recipe tests share: a tiny Megatron-LM checkpoint in Megatron's layout."""
import json

import pytest
import torch

from nmod_nlp.modules.encoders import MegatronBERT
from nmod_nlp.testing import save_megatron_checkpoint

from recipe_runner import VOCAB


@pytest.fixture(scope="session")
def megatron(tmp_path_factory):
    """A tiny Megatron-LM BERT saved in Megatron's own layout, with a Megatron config.json."""
    folder = tmp_path_factory.mktemp("megatron")
    config = {"hidden-size": 32, "num-attention-heads": 2, "num-layers": 2, "max-seq-length": 128}
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = MegatronBERT(config_file=str(folder / "config.json"), vocab_file=str(VOCAB))
    save_megatron_checkpoint(model, folder / "save", num_attention_heads=2)
    files = sorted((folder / "save").rglob("model_optim_rng.pt"))
    assert len(files) == 1
    return {"config": folder / "config.json", "checkpoint": files[0]}
