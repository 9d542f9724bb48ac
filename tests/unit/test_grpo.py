"""GRPO math against values worked out by hand (comments show the arithmetic)."""

import math

import pytest
import torch

from mr1cli.core.grpo_loss import (
    aggregate,
    clipped_surrogate,
    group_advantages,
    grpo_loss,
    kl_k3,
    sampled_token_entropy,
    token_log_probs,
)

SQRT_HALF = math.sqrt(0.5)


def test_group_advantages_two_groups_by_hand():
    # group 1: r = (1, 0): mean 0.5, unbiased std sqrt((0.25 + 0.25) / 1) = 0.70711
    # Â = ±0.5 / (0.70711 + 1e-4) = ±0.70700; group 2: (2, 2) all equal → 0, not NaN
    advantages = group_advantages(torch.tensor([1.0, 0.0, 2.0, 2.0]), num_generations=2)
    expected = 0.5 / (SQRT_HALF + 1e-4)
    assert torch.allclose(advantages, torch.tensor([expected, -expected, 0.0, 0.0]), atol=1e-6)


def test_group_advantages_uses_unbiased_std():
    # r = (1, 0, 0): mean 1/3, deviations (2/3, −1/3, −1/3), unbiased var = (6/9) / 2 = 1/3
    advantages = group_advantages(torch.tensor([1.0, 0.0, 0.0]), num_generations=3, eps=0.0)
    std = math.sqrt(1 / 3)
    assert torch.allclose(
        advantages, torch.tensor([(2 / 3) / std, -(1 / 3) / std, -(1 / 3) / std]), atol=1e-6
    )


@pytest.mark.parametrize("eps", [0.0, 1e-4])
def test_all_equal_groups_give_zero_not_nan(eps):
    advantages = group_advantages(torch.full((6,), 0.7), num_generations=3, eps=eps)
    assert torch.equal(advantages, torch.zeros(6))


def test_group_advantages_rejects_bad_group_layout():
    with pytest.raises(ValueError, match="groups of 3"):
        group_advantages(torch.zeros(4), num_generations=3)
    with pytest.raises(ValueError, match="at least 2"):
        group_advantages(torch.zeros(4), num_generations=1)


def test_token_log_probs_by_hand():
    logits = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])  # [1, 2, 3]
    tokens = torch.tensor([[2, 0]])
    # log softmax: 3 − log(e + e² + e³) = −0.40761; uniform over 3 → −log 3
    expected = torch.tensor([[3 - math.log(math.e + math.e**2 + math.e**3), -math.log(3)]])
    assert torch.allclose(token_log_probs(logits, tokens), expected, atol=1e-6)


def test_kl_k3_by_hand_and_non_negative():
    # π_θ = 0.5, π_ref = 0.25: ratio 0.5 → 0.5 − log 0.5 − 1 = 0.19315
    kl = kl_k3(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)]))
    assert kl.item() == pytest.approx(0.5 - math.log(0.5) - 1, abs=1e-7)
    random_kl = kl_k3(torch.randn(100), torch.randn(100))
    assert (random_kl >= 0).all()


@pytest.mark.parametrize(
    ("ratio", "advantage", "objective", "clipped"),
    [
        (1.5, 1.0, 1.2, True),  # min(1.5, 1.2)
        (1.5, -1.0, -1.5, False),  # min(−1.5, −1.2)
        (0.5, 1.0, 0.5, False),  # min(0.5, 0.8)
        (0.5, -1.0, -0.8, True),  # min(−0.5, −0.8)
        (1.0, 2.0, 2.0, False),  # on-policy: ratio 1
    ],
)
def test_clipped_surrogate_cases(ratio, advantage, objective, clipped):
    logp_old = torch.tensor([[math.log(0.4)]])
    logp_new = logp_old + math.log(ratio)
    value, was_clipped = clipped_surrogate(logp_new, logp_old, torch.tensor([advantage]), 0.2, 0.2)
    assert value.item() == pytest.approx(objective, abs=1e-6)
    assert bool(was_clipped.item()) is clipped


def test_aggregate_respects_mask():
    per_token = torch.tensor([[1.0, 3.0, 100.0], [5.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert aggregate(per_token, mask, "sequence_mean").item() == pytest.approx((2.0 + 5.0) / 2)
    assert aggregate(per_token, mask, "token_mean").item() == pytest.approx(9.0 / 3)
    with pytest.raises(ValueError, match="unknown loss aggregation"):
        aggregate(per_token, mask, "sum")


def _two_group_batch():
    # 2 prompts × G = 2 → 4 completions of up to 3 tokens; lengths 3, 2, 1, 3.
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]])
    logp_new = torch.full((4, 3), math.log(0.5), requires_grad=True)
    logp_ref = torch.full((4, 3), math.log(0.5))
    logp_ref[0, 0] = math.log(0.25)  # the only token where the policy moved away from the reference
    advantages = group_advantages(torch.tensor([1.0, 0.0, 1.0, 1.0]), num_generations=2)
    return logp_new, logp_ref, advantages, mask


def test_grpo_loss_two_groups_by_hand():
    logp_new, logp_ref, advantages, mask = _two_group_batch()
    a = 0.5 / (SQRT_HALF + 1e-4)
    k = 0.5 - math.log(0.5) - 1  # KL at token (0, 0)
    beta = 0.1
    terms = grpo_loss(logp_new, logp_new.detach(), logp_ref, advantages, mask, beta=beta)
    # per-sequence means of −(Â − β·kl): seq0 −a + β·k/3, seq1 +a, seq2 0, seq3 0 → mean over 4
    assert terms.loss.item() == pytest.approx((beta * k / 3) / 4, abs=1e-7)
    assert terms.kl.item() == pytest.approx((k / 3) / 4, abs=1e-7)
    assert terms.policy_objective.item() == pytest.approx(0.0, abs=1e-7)
    assert terms.clip_fraction.item() == 0.0
    terms.loss.backward()
    # d/dlogp of −ρÂ is −Â (ρ = 1); d/dlogp of k3 is 1 − π_ref/π_θ = 0.5 at (0, 0); / (3 tokens · 4 seqs)
    assert logp_new.grad[0, 0].item() == pytest.approx((-a + beta * 0.5) / 12, abs=1e-6)
    assert logp_new.grad[0, 1].item() == pytest.approx(-a / 12, abs=1e-6)
    assert logp_new.grad[1, 0].item() == pytest.approx(a / 8, abs=1e-6)
    assert logp_new.grad[1, 2].item() == 0.0  # masked
    assert torch.equal(logp_new.grad[2:], torch.zeros(2, 3))  # zero advantage, no KL


def test_grpo_loss_token_mean_by_hand():
    logp_new, logp_ref, advantages, mask = _two_group_batch()
    a = 0.5 / (SQRT_HALF + 1e-4)
    k = 0.5 - math.log(0.5) - 1
    terms = grpo_loss(
        logp_new, logp_new.detach(), logp_ref, advantages, mask, beta=0.1, aggregation="token_mean"
    )
    # Σ over 9 tokens: seq0 3·(−a) + 0.1·k, seq1 2·a → (−a + 0.1·k) / 9
    assert terms.loss.item() == pytest.approx((-a + 0.1 * k) / 9, abs=1e-6)


def test_degenerate_groups_have_finite_gradients():
    logits = torch.randn(4, 5, 7, requires_grad=True)
    tokens = torch.randint(0, 7, (4, 5))
    logp = token_log_probs(logits, tokens)
    advantages = group_advantages(torch.ones(4), num_generations=2)  # every group all-equal
    terms = grpo_loss(logp, logp.detach(), logp.detach(), advantages, torch.ones(4, 5), beta=0.04)
    terms.loss.backward()
    assert terms.loss.item() == 0.0
    assert torch.isfinite(logits.grad).all()


def test_beta_zero_needs_no_reference_but_positive_beta_does():
    logp = torch.zeros(2, 2)
    mask = torch.ones(2, 2)
    adv = torch.tensor([1.0, -1.0])
    assert grpo_loss(logp, logp, None, adv, mask, beta=0.0).kl.item() == 0.0
    with pytest.raises(ValueError, match="reference"):
        grpo_loss(logp, logp, None, adv, mask, beta=0.01)


def test_clip_fraction_counts_only_masked_tokens():
    logp_old = torch.zeros(1, 4)
    logp_new = torch.tensor([[math.log(2.0), 0.0, math.log(2.0), math.log(2.0)]])
    mask = torch.tensor([[1, 1, 1, 0]])
    terms = grpo_loss(logp_new, logp_old, None, torch.tensor([1.0]), mask, beta=0.0)
    assert terms.clip_fraction.item() == pytest.approx(2 / 3)


def test_sampled_token_entropy_by_hand():
    # sampled tokens' probabilities 1/2, 1/4 (completion 1) and 1/8 (completion 2; its 2nd and 3rd
    # positions are padding): (ln 2 + ln 4 + ln 8) / 3 = 6 ln 2 / 3 = 2 ln 2 = 1.386294
    logp = torch.log(torch.tensor([[0.5, 0.25, 0.9], [0.125, 1.0, 0.3]]))
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert sampled_token_entropy(logp, mask).item() == pytest.approx(2 * math.log(2), abs=1e-6)


def test_sampled_token_entropy_estimates_the_entropy_of_the_sampling_distribution():
    # p = (1/2, 1/4, 1/4): H = ½ ln 2 + 2 · ¼ ln 4 = 1.5 ln 2 = 1.039721; 200,000 draws: s.e. ≈ 0.0008
    probs = torch.tensor([0.5, 0.25, 0.25])
    tokens = torch.multinomial(probs, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    logp = probs.log()[tokens].view(1, -1)
    estimate = sampled_token_entropy(logp, torch.ones_like(logp)).item()
    assert estimate == pytest.approx(1.5 * math.log(2), abs=0.004)
