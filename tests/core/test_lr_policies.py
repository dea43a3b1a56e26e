"""Each LR policy against values worked out by hand from its formula (initial lr 1.0 unless noted)."""
import logging
import math

import pytest

from nmod.optim import lr_policies as P
from nmod.optim import get_lr_policy


def curve(policy, steps, initial_lr=1.0):
    return [policy(initial_lr, s, 0) for s in steps]


def test_warmup_policy_is_linear_warmup_then_constant():
    policy = P.WarmupPolicy(total_steps=10, warmup_steps=4)
    # (step + 1) / (warmup + 1) during warmup, then the initial lr; min_lr (0) past total_steps.
    assert curve(policy, [0, 1, 2, 3, 4, 9, 10, 11]) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 0.0])
    assert policy(0.1, 1, 0) == pytest.approx(0.04)


def test_warmup_ratio_is_rounded_down_share_of_total_steps():
    policy = P.WarmupPolicy(total_steps=10, warmup_ratio=0.25)  # int(2.5) = 2 warmup steps
    assert policy.warmup_steps == 2
    assert curve(policy, [0, 1, 2]) == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_warmup_hold_policy_holds_then_stays_constant():
    policy = P.WarmupHoldPolicy(total_steps=20, warmup_steps=2, hold_steps=3)
    assert policy.hold_end == 5
    assert curve(policy, [0, 1, 2, 4, 5, 20]) == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0])
    by_ratio = P.WarmupHoldPolicy(total_steps=20, warmup_steps=2, hold_ratio=0.25)  # 5 hold steps
    assert by_ratio.hold_end == 7


def test_warmup_annealing_is_linear_decay_to_zero():
    policy = P.WarmupAnnealing(total_steps=10, warmup_steps=2)
    # after warmup: (10 - step) / (10 - 2)
    assert curve(policy, [0, 1, 2, 6, 9, 10, 11]) == pytest.approx([1 / 3, 2 / 3, 1.0, 0.5, 0.125, 0.0, 0.0])
    floored = P.WarmupAnnealing(total_steps=10, warmup_steps=2, min_lr=0.2)
    assert curve(floored, [6, 9, 11]) == pytest.approx([0.5, 0.2, 0.2])


def test_cosine_annealing():
    policy = P.CosineAnnealing(total_steps=12, warmup_steps=2, min_lr=0.1)
    # 0.1 + 0.9 * 0.5 * (1 + cos(pi * (step - 2) / 10)); cos(0.2 pi) = 0.809016994
    expected = [1 / 3, 1.0, 0.914057647, 0.55, 0.1, 0.1]
    assert curve(policy, [0, 2, 4, 7, 12, 13]) == pytest.approx(expected, rel=1e-8)
    with pytest.raises(ValueError, match="below min_lr"):
        policy(0.05, 5, 0)


def test_square_annealing():
    policy = P.SquareAnnealing(total_steps=10, warmup_steps=2)  # NeMo's default min_lr 1e-5
    # ((10 - step) / 8) ** 2
    assert curve(policy, [2, 6, 8, 10, 11]) == pytest.approx([1.0, 0.25, 0.0625, 1e-5, 1e-5])
    assert policy(0.1, 6, 0) == pytest.approx(0.025)


def test_square_root_annealing_decays_from_step_zero_as_in_nemo():
    policy = P.SquareRootAnnealing(total_steps=16)
    # sqrt((16 - step) / 16)
    assert curve(policy, [0, 12, 15, 16, 17]) == pytest.approx([1.0, 0.5, 0.25, 0.0, 0.0])
    warm = P.SquareRootAnnealing(total_steps=16, warmup_steps=4)
    # warmup, then sqrt(12 / 16) = 0.866025404 at step 4: NeMo does not shift the decay by warmup.
    assert curve(warm, [0, 4, 12]) == pytest.approx([0.2, 0.866025404, 0.5])


def test_inverse_square_root_annealing_runs_without_total_steps():
    policy = P.InverseSquareRootAnnealing(warmup_steps=3)
    # sqrt((3 + 1) / (step + 1)) after warmup
    assert curve(policy, [0, 2, 3, 15, 63]) == pytest.approx([0.25, 0.75, 1.0, 0.5, 0.25])
    assert policy(1.0, 1_000_000, 0) == pytest.approx(0.001999999000, rel=1e-9)


def test_polynomial_decay_annealing():
    policy = P.PolynomialDecayAnnealing(total_steps=12, warmup_steps=2, power=2.0, min_lr=0.1)
    # 0.9 * (1 - (step - 2) / 10) ** 2 + 0.1
    assert curve(policy, [0, 2, 7, 12, 20]) == pytest.approx([1 / 3, 1.0, 0.325, 0.1, 0.1])
    linear = P.PolynomialDecayAnnealing(total_steps=12, warmup_steps=2, min_lr=0.1)
    assert linear(1.0, 7, 0) == pytest.approx(0.55)


def test_polynomial_decay_cycles_past_total_steps():
    policy = P.PolynomialDecayAnnealing(total_steps=6, cycle=True)
    # cycle k spans ceil(step / 6) * 6 steps: step 9 -> 1 - 9/12
    assert curve(policy, [0, 3, 6, 9]) == pytest.approx([1.0, 0.5, 0.0, 0.25])


def test_polynomial_hold_decay_annealing():
    policy = P.PolynomialHoldDecayAnnealing(total_steps=20, warmup_steps=2, hold_steps=3, power=2.0)
    # hold until step 5, then (1 - (step - 5) / 15) ** 2
    expected = [1 / 3, 2 / 3, 1.0, 1.0, 1.0, 4 / 9, 0.0, 0.0]
    assert curve(policy, [0, 1, 2, 4, 5, 10, 20, 21]) == pytest.approx(expected)


def test_hold_decay_without_hold_starts_decay_at_end_of_warmup():
    policy = P.PolynomialHoldDecayAnnealing(total_steps=12, warmup_steps=2)
    # NeMo 0.11 measured this decay from step 0 and jumped at step 2; here (1 - (step - 2) / 10).
    assert curve(policy, [1, 2, 7]) == pytest.approx([2 / 3, 1.0, 0.5])


@pytest.mark.parametrize(
    "name", ["WarmupAnnealing", "CosineAnnealing", "SquareAnnealing", "PolynomialDecayAnnealing", "PolynomialHoldDecayAnnealing"]
)
def test_decay_starts_at_initial_lr_after_warmup(name):
    policy = get_lr_policy(name, total_steps=50, warmup_steps=5)
    assert policy(0.3, 4, 0) == pytest.approx(0.3 * 5 / 6)
    assert policy(0.3, 5, 0) == pytest.approx(0.3)
    assert policy(0.3, 6, 0) < 0.3


def test_get_lr_policy_accepts_class_and_snake_case_names():
    a = get_lr_policy("WarmupAnnealing", total_steps=10, warmup_ratio=0.2)
    b = get_lr_policy("warmup_annealing", total_steps=10, warmup_ratio=0.2)
    assert type(a) is type(b) is P.WarmupAnnealing
    assert a(1.0, 6, 0) == b(1.0, 6, 0) == pytest.approx(0.5)
    assert type(get_lr_policy("inverse_square_root_annealing")) is P.InverseSquareRootAnnealing


def test_get_lr_policy_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="Unknown lr policy 'Linear'.*CosineAnnealing \\(cosine_annealing\\)"):
        get_lr_policy("Linear", total_steps=10)
    with pytest.raises(TypeError, match="CosineAnnealing.*hold_steps"):
        get_lr_policy("CosineAnnealing", total_steps=10, hold_steps=3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(total_steps=10, warmup_steps=2, warmup_ratio=0.1), "not both"),
        (dict(warmup_ratio=0.1), "needs total_steps"),
        (dict(total_steps=10, warmup_ratio=1.5), r"in \[0, 1\]"),
        (dict(total_steps=10, warmup_steps=-1), "non-negative int"),
        (dict(total_steps=0), "positive int"),
        (dict(total_steps=10, min_lr=-1.0), "min_lr"),
    ],
)
def test_bad_warmup_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        P.WarmupPolicy(**kwargs)


def test_annealing_needs_room_and_total_steps():
    with pytest.raises(ValueError, match="total_steps is required"):
        P.CosineAnnealing(total_steps=None)
    with pytest.raises(ValueError, match="warmup_steps=10 leaves no steps"):
        P.WarmupAnnealing(total_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match=r"warmup_steps \+ hold_steps=10"):
        P.PolynomialHoldDecayAnnealing(total_steps=10, warmup_steps=4, hold_steps=6)
    with pytest.raises(ValueError, match="step must be a non-negative int"):
        P.WarmupPolicy(total_steps=10)(1.0, -1, 0)


def test_policy_is_stateless_and_state_dict_round_trips(caplog):
    policy = P.CosineAnnealing(total_steps=100, warmup_ratio=0.1, min_lr=0.01)
    # Calling out of order gives the same values: nothing is accumulated between calls.
    later = policy(1.0, 60, 0)
    assert policy(1.0, 10, 0) == pytest.approx(1.0)
    assert policy(1.0, 60, 0) == later
    state = policy.state_dict()
    assert state == {
        "policy": "CosineAnnealing",
        "total_steps": 100,
        "min_lr": 0.01,
        "warmup_steps": 10,
        "warmup_ratio": 0.1,
    }
    with caplog.at_level(logging.WARNING, logger="nmod"):
        P.CosineAnnealing(total_steps=100, warmup_ratio=0.1, min_lr=0.01).load_state_dict(state)
        assert not caplog.records
        P.CosineAnnealing(total_steps=200, warmup_ratio=0.1).load_state_dict(state)
    assert len(caplog.records) == 1 and "differs from the checkpoint" in caplog.records[0].getMessage()


def test_cosine_matches_closed_form_over_the_whole_run():
    policy = P.CosineAnnealing(total_steps=40, warmup_steps=0)
    for step in range(41):
        assert policy(2.0, step, 0) == pytest.approx(1.0 + math.cos(math.pi * step / 40))


# ---- deferred policies: the executor supplies total_steps ---------------------------------------
def test_a_policy_built_without_total_steps_waits_for_the_run_and_then_equals_the_explicit_one():
    deferred = get_lr_policy("WarmupAnnealing", warmup_ratio=0.1, min_lr=0.01)
    assert isinstance(deferred, P.DeferredLRPolicy)
    assert repr(deferred) == "WarmupAnnealing(total_steps=<the run's>, warmup_ratio=0.1, min_lr=0.01)"
    bound = deferred.bind(50)
    explicit = get_lr_policy("WarmupAnnealing", total_steps=50, warmup_ratio=0.1, min_lr=0.01)
    assert type(bound) is P.WarmupAnnealing and bound.state_dict() == explicit.state_dict()
    assert curve(bound, range(60)) == curve(explicit, range(60))
    assert P.DeferredLRPolicy(P.WarmupAnnealing, warmup_ratio=0.1, min_lr=0.01).bind(50).state_dict() == explicit.state_dict()
    with pytest.raises(TypeError, match=r"has no total_steps yet: pass it to train\(lr_policy=\.\.\.\)"):
        deferred(1.0, 3, 0)


def test_only_policies_that_need_the_length_are_deferred():
    assert type(get_lr_policy("WarmupPolicy", warmup_steps=3)) is P.WarmupPolicy
    assert isinstance(get_lr_policy("WarmupPolicy", warmup_ratio=0.2), P.DeferredLRPolicy)  # a share of the run
    assert isinstance(get_lr_policy("WarmupHoldPolicy", hold_ratio=0.2), P.DeferredLRPolicy)
    for name in ["WarmupAnnealing", "CosineAnnealing", "SquareAnnealing", "SquareRootAnnealing",
                 "PolynomialDecayAnnealing", "PolynomialHoldDecayAnnealing"]:
        assert isinstance(get_lr_policy(name), P.DeferredLRPolicy), name


@pytest.mark.parametrize(
    "name, kwargs, error, message",
    [
        ("WarmupAnnealing", dict(warmup_ratio=1.5), ValueError, r"warmup_ratio must be in \[0, 1\], got 1.5"),
        ("WarmupAnnealing", dict(warmup_ratio=1.0), ValueError, "leaves no steps to anneal over.*stand-in run"),
        ("PolynomialHoldDecayAnnealing", dict(warmup_ratio=0.6, hold_ratio=0.5), ValueError, "warmup_steps \\+ hold_steps"),
        ("CosineAnnealing", dict(hold_steps=3), TypeError, "CosineAnnealing.*hold_steps"),
        ("PolynomialDecayAnnealing", dict(power=0), ValueError, "power must be a positive number"),
    ],
)
def test_a_deferred_policy_checks_its_settings_when_it_is_made(name, kwargs, error, message):
    with pytest.raises(error, match=message):
        get_lr_policy(name, **kwargs)


def test_a_setting_only_the_runs_length_rules_out_fails_when_bound():
    deferred = get_lr_policy("CosineAnnealing", warmup_steps=20)
    with pytest.raises(ValueError, match="warmup_steps=20 leaves no steps to anneal over; it must be smaller than total_steps=10"):
        deferred.bind(10)
    with pytest.raises(TypeError, match="total_steps is what train\\(\\) binds"):
        P.DeferredLRPolicy(P.CosineAnnealing, total_steps=10)


def test_bind_lr_policy_is_what_train_steps_with(caplog):
    assert P.bind_lr_policy(None, 10) is None
    assert P.bind_lr_policy("warmup_annealing", 10).state_dict() == P.WarmupAnnealing(10).state_dict()
    assert P.bind_lr_policy(get_lr_policy("CosineAnnealing", warmup_ratio=0.2), 10).warmup_steps == 2
    built = P.CosineAnnealing(total_steps=10)
    with caplog.at_level(logging.WARNING, logger="nmod"):
        assert P.bind_lr_policy(built, 10) is built
        assert not caplog.records
        assert P.bind_lr_policy(built, 12) is built  # used as given, but the mismatch is reported
    assert "anneals over 10 steps but this run takes 12" in caplog.records[0].getMessage()
    custom = lambda lr, step, epoch: lr  # noqa: E731
    assert P.bind_lr_policy(custom, 10) is custom
