"""GRPO objective as pure tensor functions (no model, no I/O).

Notation follows the paper (paper.md, "Method"): G completions per prompt, reward r_i,
advantage Â_i, importance ratio ρ_t = π_θ / π_old, clip range ε, KL weight β.
Shapes: N = number of completions in the batch (prompts × G), T = completion length.

Conventions (tested in tests/unit/test_grpo.py):
- the group standard deviation is the *unbiased* one (torch.std default, as TRL and
  R1-V compute it), and the advantage is (r − mean) / (std + eps) with eps = 1e-4;
- the loss is minimised, so it is the negated objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mr1cli.core.aggregation import aggregation_error


def group_advantages(rewards: Tensor, num_generations: int, eps: float = 1e-4) -> Tensor:
    """Group-relative advantages Â_i = (r_i − mean(r_group)) / (std(r_group) + eps).

    Rewards are laid out group by group: the G completions of prompt 0 first. A group
    whose rewards are all equal gets advantage 0 (not NaN).

    >>> group_advantages(torch.tensor([1.0, 0.0, 2.0, 2.0]), num_generations=2, eps=0.0)
    tensor([ 0.7071, -0.7071,  0.0000,  0.0000])
    """
    if num_generations < 2:
        raise ValueError("num_generations must be at least 2 for a group-relative advantage")
    if rewards.numel() % num_generations:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {num_generations}")
    grouped = rewards.view(-1, num_generations)  # [N/G, G]
    mean = grouped.mean(dim=1, keepdim=True)  # [N/G, 1]
    std = grouped.std(dim=1, keepdim=True)  # [N/G, 1] unbiased
    centred = grouped - mean  # [N/G, G]
    # An all-equal group has centred == 0 exactly; dividing 0 by (0 + eps) keeps it 0, and
    # with eps = 0 the where() avoids 0/0.
    advantages = torch.where(centred == 0, torch.zeros_like(centred), centred / (std + eps))  # [N/G, G]
    return advantages.view(-1)  # [N]


def token_log_probs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log π(token_t | ·) for each position, from logits aligned with the tokens they predict.

    >>> token_log_probs(torch.tensor([[[0.0, 0.0]]]), torch.tensor([[1]]))
    tensor([[-0.6931]])
    """
    logits = logits.float()  # [N, T, V]
    picked = logits.gather(dim=-1, index=tokens.unsqueeze(-1)).squeeze(-1)  # [N, T]
    return picked - torch.logsumexp(logits, dim=-1)  # [N, T]


def kl_k3(logp_policy: Tensor, logp_ref: Tensor) -> Tensor:
    """Per-token KL[π_θ ‖ π_ref] estimate, the unbiased, non-negative "k3" form (paper.md):
    π_ref/π_θ − log(π_ref/π_θ) − 1.

    >>> kl_k3(torch.tensor([0.0]), torch.tensor([0.0]))
    tensor([0.])
    """
    log_ratio = logp_ref - logp_policy  # [N, T]
    return torch.exp(log_ratio) - log_ratio - 1.0  # [N, T]


def clipped_surrogate(
    logp_new: Tensor, logp_old: Tensor, advantages: Tensor, epsilon_low: float, epsilon_high: float
) -> tuple[Tensor, Tensor]:
    """min(ρ_t Â, clip(ρ_t, 1−ε_low, 1+ε_high) Â) per token, and where the clip was active.

    When the policy is the one that sampled (logp_old = logp_new.detach()), ρ_t = 1 and the
    gradient equals the plain policy gradient Â ∇log π_θ.

    >>> clipped_surrogate(torch.tensor([[0.0]]), torch.tensor([[0.0]]), torch.tensor([2.0]), 0.2, 0.2)[0]
    tensor([[2.]])
    """
    ratio = torch.exp(logp_new - logp_old)  # [N, T]
    adv = advantages.unsqueeze(1)  # [N, 1]
    unclipped = ratio * adv  # [N, T]
    clipped = torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high) * adv  # [N, T]
    objective = torch.minimum(unclipped, clipped)  # [N, T]
    was_clipped = clipped < unclipped  # [N, T] the clipped branch was the minimum
    return objective, was_clipped


def aggregate(per_token: Tensor, mask: Tensor, mode: str = "sequence_mean") -> Tensor:
    """Reduce a per-token quantity to a scalar over the completion tokens in `mask`.

    `mode` is one of core/aggregation.py's LOSS_AGGREGATIONS: sequence_mean (mean over each
    completion's tokens, then over completions: GRPO) or token_mean (sum over all tokens / their count).

    >>> x = torch.tensor([[1.0, 3.0], [5.0, 0.0]]); m = torch.tensor([[1, 1], [1, 0]])
    >>> aggregate(x, m, "sequence_mean"), aggregate(x, m, "token_mean")
    (tensor(3.5000), tensor(3.))
    """
    mask = mask.to(per_token.dtype)  # [N, T]
    masked = per_token * mask  # [N, T]
    if mode == "sequence_mean":
        lengths = mask.sum(dim=1).clamp(min=1.0)  # [N]
        return (masked.sum(dim=1) / lengths).mean()  # []
    if mode == "token_mean":
        return masked.sum() / mask.sum().clamp(min=1.0)  # []
    raise ValueError(aggregation_error(mode))


def sampled_token_entropy(logp_sampled: Tensor, mask: Tensor) -> Tensor:
    """Mean of −log π(token) over the sampled completion tokens in `mask`: a Monte-Carlo estimate of
    the policy's per-token entropy (unbiased when sampling is untruncated, top_p = 1 and top_k = 0).

    >>> sampled_token_entropy(torch.log(torch.tensor([[0.5, 0.25], [1.0, 0.1]])), torch.tensor([[1, 1], [1, 0]]))
    tensor(0.6931)
    """
    return aggregate(-logp_sampled, mask, "token_mean")  # []


@dataclass(frozen=True)
class LossTerms:
    """The scalar loss and the diagnostics that travel with it (all detached but `loss`)."""

    loss: Tensor
    policy_objective: Tensor
    kl: Tensor
    clip_fraction: Tensor


def grpo_loss(
    logp_new: Tensor,
    logp_old: Tensor,
    logp_ref: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    beta: float,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    aggregation: str = "sequence_mean",
) -> LossTerms:
    """GRPO loss to minimise: −[min(ρÂ, clip(ρ)Â) − β·KL], aggregated over completion tokens.

    `logp_ref` may be None only when β = 0 (no reference model needed at this step).

    >>> lp = torch.zeros(2, 1); m = torch.ones(2, 1)
    >>> grpo_loss(lp, lp, lp, torch.tensor([1.0, -1.0]), m, beta=0.1).loss
    tensor(0.)
    """
    if logp_ref is None and beta != 0.0:
        raise ValueError("a reference log-prob tensor is required when beta > 0")
    surrogate, was_clipped = clipped_surrogate(logp_new, logp_old, advantages, epsilon_low, epsilon_high)
    kl = kl_k3(logp_new, logp_ref) if logp_ref is not None else torch.zeros_like(logp_new)  # [N, T]
    per_token = -(surrogate - beta * kl)  # [N, T]
    loss = aggregate(per_token, mask, aggregation)  # []
    with torch.no_grad():
        return LossTerms(
            loss=loss,
            policy_objective=aggregate(surrogate, mask, aggregation),
            kl=aggregate(kl, mask, aggregation),
            clip_fraction=aggregate(was_clipped.to(logp_new.dtype), mask, "token_mean"),
        )
