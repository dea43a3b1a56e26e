"""LossAggregator and the two-headed classifiers: values by hand, NeMo's names, typed wiring."""
import pytest
import torch
import torch.nn.functional as F

from nmod.core.errors import NeuralPortNmTensorMismatchError
from nmod.types import LossType, NeuralType
from nmod_nlp.modules.heads import JointIntentSlotClassifier, PunctCapitTokenClassifier
from nmod_nlp.modules.losses import CrossEntropyLoss, LossAggregator


def test_weighted_sum_and_nemos_plain_sum():
    a, b = torch.tensor(2.0), torch.tensor(5.0)
    assert LossAggregator(num_inputs=2)(loss_1=a, loss_2=b).item() == pytest.approx(7.0)
    assert LossAggregator(weights=[0.6, 0.4])(loss_1=a, loss_2=b).item() == pytest.approx(0.6 * 2 + 0.4 * 5)
    three = LossAggregator(num_inputs=3, weights=[1, 2, 3])
    assert list(three.input_ports) == ["loss_1", "loss_2", "loss_3"]
    assert three(loss_1=a, loss_2=b, loss_3=torch.tensor(1.0)).item() == pytest.approx(2 + 10 + 3)
    assert three.init_params == {"num_inputs": 3, "weights": [1, 2, 3]}


def test_gradient_flows_to_each_loss_by_its_weight():
    a, b = torch.tensor(1.0, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    LossAggregator(weights=[0.25, 0.75])(loss_1=a, loss_2=b).backward()
    assert (a.grad.item(), b.grad.item()) == (0.25, 0.75)


@pytest.mark.parametrize("kwargs, message", [({"num_inputs": 0}, "positive int"),
                                             ({"num_inputs": 2, "weights": [1.0]}, "1 weights for num_inputs=2")])
def test_bad_settings_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LossAggregator(**kwargs)


def test_punct_capit_head_is_two_nemo_mlps_over_one_dropout():
    torch.manual_seed(0)
    head = PunctCapitTokenClassifier(hidden_size=32, punct_num_classes=4, capit_num_classes=2)
    names = list(head.state_dict())
    assert names == ["punct_mlp.layer0.weight", "punct_mlp.layer0.bias", "punct_mlp.layer2.weight",
                     "punct_mlp.layer2.bias", "punct_mlp.layer4.weight", "punct_mlp.layer4.bias",
                     "capit_mlp.layer0.weight", "capit_mlp.layer0.bias", "capit_mlp.layer2.weight",
                     "capit_mlp.layer2.bias"]
    x = torch.randn(2, 5, 32)
    punct, capit = head(hidden_states=x)
    sd = head.state_dict()
    expected = F.relu(x @ sd["capit_mlp.layer0.weight"].T + sd["capit_mlp.layer0.bias"])
    expected = torch.log_softmax(expected @ sd["capit_mlp.layer2.weight"].T + sd["capit_mlp.layer2.bias"], -1)
    assert punct.shape == (2, 5, 4)
    torch.testing.assert_close(capit, expected)


def test_joint_intent_slot_head_reads_intent_from_the_first_token():
    torch.manual_seed(0)
    head = JointIntentSlotClassifier(hidden_size=32, num_intents=3, num_slots=5)
    x = torch.randn(2, 6, 32)
    intent, slots = head(hidden_states=x)
    assert intent.shape == (2, 3) and slots.shape == (2, 6, 5)
    changed = x.clone()
    changed[:, 1:] = 0
    torch.testing.assert_close(head(hidden_states=changed)[0], intent)  # only [CLS] feeds the intent
    assert {k.split(".")[0] for k in head.state_dict()} == {"intent_mlp", "slot_mlp"}


def _data():
    """Graph tensors from a data layer that hands out hidden states, for wiring checks."""
    from nmod.backends.pytorch import DataLayerNM
    from nmod.types import ChannelType, LabelsType, MaskType

    class Layer(DataLayerNM):
        @property
        def output_ports(self):
            return {"hidden_states": NeuralType(("B", "T", "D"), ChannelType()),
                    "intents": NeuralType(("B",), LabelsType()),
                    "slots": NeuralType(("B", "T"), LabelsType()),
                    "loss_mask": NeuralType(("B", "T"), MaskType())}

    return Layer()()


def test_heads_wire_by_name_into_losses_and_the_aggregator():
    batch = _data()
    out = JointIntentSlotClassifier(hidden_size=32, num_intents=3, num_slots=5)(hidden_states=batch.hidden_states)
    intent_loss = CrossEntropyLoss(logits_ndim=2)(logits=out.intent_logits, labels=batch.intents)
    slot_loss = CrossEntropyLoss(logits_ndim=3)(logits=out.slot_logits, labels=batch.slots, loss_mask=batch.loss_mask)
    total = LossAggregator(weights=[0.6, 0.4])(loss_1=intent_loss, loss_2=slot_loss)
    assert total.ntype.compare(NeuralType(None, LossType())).accepts
    with pytest.raises(NeuralPortNmTensorMismatchError, match="slot_logits"):
        CrossEntropyLoss(logits_ndim=2)(logits=out.slot_logits, labels=batch.intents)
    punct = PunctCapitTokenClassifier(hidden_size=32, punct_num_classes=4, capit_num_classes=2)
    logits = punct(hidden_states=batch.hidden_states)
    assert list(logits._fields) == ["punct_logits", "capit_logits"]
    with pytest.raises(NeuralPortNmTensorMismatchError):
        LossAggregator()(loss_1=intent_loss, loss_2=logits.capit_logits)  # logits are not a loss
