"""benchmarks/int8_variants.py quantizes what each variant's name says, on copies (the trained model stays fp32)."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import int8_variants as V  # noqa: E402


def test_variants_quantize_the_layers_they_name():
    from nmod_nlp.modules.encoders import BERT
    from nmod_nlp.modules.heads import TokenClassifier

    encoder = BERT(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                   max_position_embeddings=32)
    head = TokenClassifier(16, num_classes=3, num_layers=1, dropout=0.0, log_softmax=False)
    linears = lambda m: [n for n, x in m.named_modules() if type(x) is torch.nn.Linear]  # noqa: E731
    quantized = lambda m: [x for x in m.modules() if isinstance(x, torch.ao.nn.quantized.dynamic.Linear)]  # noqa: E731

    kept = V.variant("torch_per_channel_ffn_out_fp32", encoder, head)
    assert len(linears(kept.encoder)) == 2 and all(V.is_ffn_output(n) for n in linears(kept.encoder))
    schemes = {"torch_per_tensor": torch.per_tensor_affine, "torch_per_channel": torch.per_channel_affine}
    for name, scheme in schemes.items():
        model = V.variant(name, encoder, head)
        assert linears(model.encoder) == [] and linears(model.head) == []
        assert {q.weight().qscheme() for q in quantized(model.encoder) + quantized(model.head)} == {scheme}
    assert len(linears(encoder)) == 12 and len(linears(head)) == 1  # the originals untouched
