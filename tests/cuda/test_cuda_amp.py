"""Mixed precision on the GPU, on the SQuAD graph: data layer -> MegatronBERT -> TokenClassifier -> SpanningLoss.

fp16 at O1 (autocast, fp32 weights) and O2 (half weights, fp32 master weights): the graph trains to a
lower loss, and a step whose scaled gradients overflow is skipped (no weight moves) and halves the
loss scale. bf16 at O1 and O2: trains to a lower loss with loss scaling off (scale 1, no step skipped).
The features are the shipped SQuAD sample's, tokenized with a vocabulary made from it (no model
package is needed on the GPU machine); the encoder is tiny (2 layers, hidden 64) and starts random.
"""
import pytest
import torch

import nmod
from nmod.backends.pytorch import TrainableNM
from nmod.callbacks import Callback
from nmod.types import LossType, NeuralType
from nmod_nlp.data.squad import BertQuestionAnsweringDataLayer
from nmod_nlp.modules.encoders import MegatronBERT
from nmod_nlp.modules.heads import TokenClassifier
from nmod_nlp.modules.losses import SpanningLoss

from sample_vocab import SAMPLES, sample_tokenizer

pytestmark = pytest.mark.cuda

POISONED_STEP = 2  # the third training step's loss is multiplied by 1e8: its fp16 gradients overflow


class Amplify(TrainableNM):
    """Passes the loss through, multiplied by `factor` on the training calls numbered in `calls`."""

    @property
    def input_ports(self):
        return {"loss": NeuralType(None, LossType())}

    @property
    def output_ports(self):
        return {"loss": NeuralType(None, LossType())}

    def __init__(self, calls=(), factor=1e8, name=None):
        super().__init__(name=name)
        self.calls, self.factor, self.count = set(calls), factor, 0

    def forward(self, loss):
        if not self.training:
            return loss
        self.count += 1
        return loss * self.factor if self.count - 1 in self.calls else loss


class Watch(Callback):
    """After each step: the loss scaler's scale and skipped-step count, and one weight's value."""

    def __init__(self, weight: torch.nn.Parameter):
        self.weight, self.scales, self.skipped, self.weights = weight, [], [], []

    def on_step_end(self, state):
        scaler = state.actions._run.scaler
        self.scales.append(scaler.scale if scaler.enabled else None)
        self.skipped.append(scaler.skipped_steps)
        self.weights.append(self.weight.detach().float().cpu().clone())


def squad_graph(tmp_path, device, level, dtype, poison=()):
    nf = nmod.NeuralModuleFactory(placement=device.type, optimization_level=level, amp_dtype=dtype, random_seed=0,
                                  progress_bar=False)
    tokenizer = sample_tokenizer(tmp_path / "vocab")
    data = BertQuestionAnsweringDataLayer(str(SAMPLES / "train-v1.1.json"), tokenizer=tokenizer, mode="train",
                                          batch_size=16, max_seq_length=128, doc_stride=64, use_cache=False,
                                          shuffle=False)
    encoder = MegatronBERT(vocab_size=tokenizer.vocab_size, hidden_size=64, num_layers=2, num_attention_heads=2,
                           max_seq_length=128, hidden_dropout=0.0, attention_dropout=0.0)
    head = TokenClassifier(64, num_classes=2, num_layers=1, log_softmax=False)
    batch = data()
    hidden = encoder(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids, attention_mask=batch.attention_mask)
    out = SpanningLoss()(logits=head(hidden_states=hidden), start_positions=batch.start_positions,
                         end_positions=batch.end_positions, attention_mask=batch.attention_mask)
    loss = Amplify(calls=poison)(loss=out.loss)
    return nf, encoder, loss


def mean_loss(nf, loss) -> float:
    values = nf.infer([loss])[0]
    return sum(float(v) for v in values) / len(values)


def train(nf, encoder, loss, steps=40):
    watch = Watch(encoder.language_model.encoder.layers[0].mlp.dense_h_to_4h.weight)
    start = mean_loss(nf, loss)
    nf.train([loss], "adam_w", {"max_steps": steps, "lr": 2e-3, "grad_norm_clip": 1.0}, callbacks=[watch])
    return start, mean_loss(nf, loss), watch


@pytest.mark.parametrize("level", ["O1", "O2"])
def test_fp16_trains_and_the_scaler_skips_an_overflowing_step(level, tmp_path, device):
    nf, encoder, loss = squad_graph(tmp_path, device, level, "float16", poison=[POISONED_STEP])
    start, end, watch = train(nf, encoder, loss)
    assert end < 0.8 * start, (start, end)
    if level == "O2":
        assert encoder.language_model.encoder.layers[0].mlp.dense_h_to_4h.weight.dtype == torch.float16
    # step POISONED_STEP + 1 (index POISONED_STEP) was skipped: the weight did not move, one more skip, scale halved
    k = POISONED_STEP
    assert torch.equal(watch.weights[k], watch.weights[k - 1])
    assert watch.skipped[k] == watch.skipped[k - 1] + 1
    assert watch.scales[k] == watch.scales[k - 1] / 2
    # and the steps around it did move the weight
    assert not torch.equal(watch.weights[k + 1], watch.weights[k])
    assert not torch.equal(watch.weights[k - 1], watch.weights[k - 2])


@pytest.mark.parametrize("level", ["O1", "O2"])
def test_bf16_trains_without_loss_scaling(level, tmp_path, device):
    nf, encoder, loss = squad_graph(tmp_path, device, level, "bfloat16")
    start, end, watch = train(nf, encoder, loss)
    assert end < 0.8 * start, (start, end)
    assert set(watch.scales) == {None} and watch.skipped[-1] == 0
    if level == "O2":
        assert encoder.language_model.encoder.layers[0].mlp.dense_h_to_4h.weight.dtype == torch.bfloat16
