"""The fast rollout paths against the simple ones: same distribution, same log-probs, same loss."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from support import three_padded_prompts
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from mr1cli.core.grpo_loss import grpo_loss
from mr1cli.models.batching import (
    Decoding,
    append_completions,
    generate,
    sequence_log_probs,
)
from mr1cli.models.sampling import draw, filter_logits, sample_completions
from mr1cli.models.shared_prompt import grouped_log_probs


@pytest.mark.parametrize("top_k, top_p", [(0, 1.0), (5, 1.0), (0, 0.7), (8, 0.9)])
def test_filter_logits_matches_transformers_warpers(top_k, top_p):
    torch.manual_seed(0)
    logits = torch.randn(6, 40)
    expected = TemperatureLogitsWarper(0.7)(None, logits.clone())
    if top_k:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p < 1.0:
        expected = TopPLogitsWarper(top_p)(None, expected)
    assert torch.equal(filter_logits(logits, temperature=0.7, top_k=top_k, top_p=top_p), expected)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return three_padded_prompts(tiny_model_dir)


def test_sampler_log_probs_equal_a_teacher_forced_forward(tiny):
    # The cached decode (prompt prefilled once, cache repeated G times, M-RoPE positions from
    # rope_deltas) must score each sampled token exactly as one forward over the full sequence does.
    loaded, prompt_batch = tiny
    torch.manual_seed(0)
    completions, sampled = sample_completions(
        loaded.model,
        loaded.processor,
        prompt_batch,
        Decoding(max_new_tokens=10, min_new_tokens=10, num_return_sequences=4, temperature=0.9),
        return_log_probs=True,
    )
    assert len(completions) == 12 and {len(c) for c in completions} == {10}
    batch = append_completions(prompt_batch, completions, loaded.processor.tokenizer.pad_token_id)
    forced = sequence_log_probs(loaded.model, batch, temperature=0.9)  # [N, S-1]
    width = prompt_batch["input_ids"].shape[1]
    assert torch.allclose(forced[:, width - 1 :], sampled, atol=1e-4), (
        (forced[:, width - 1 :] - sampled).abs().max()
    )


def test_sampler_greedy_equals_transformers_generate(tiny):
    loaded, prompt_batch = tiny
    reference = generate(
        loaded.model, loaded.processor, prompt_batch, Decoding(max_new_tokens=12, do_sample=False)
    )
    ours = sample_completions(
        loaded.model,
        loaded.processor,
        prompt_batch,
        Decoding(max_new_tokens=12, num_return_sequences=2, top_k=1),
    )
    assert ours[0::2] == reference and ours[1::2] == reference


def test_sampler_stops_at_eos_and_pads_after(tiny):
    loaded, prompt_batch = tiny
    torch.manual_seed(1)
    completions = sample_completions(
        loaded.model, loaded.processor, prompt_batch, Decoding(max_new_tokens=30, num_return_sequences=3)
    )
    eos = set(loaded.model.generation_config.eos_token_id) | {loaded.processor.tokenizer.eos_token_id}
    for tokens in completions:
        assert 1 <= len(tokens) <= 30
        assert all(t not in eos for t in tokens[:-1])


def test_draw_has_the_distribution_of_multinomial():
    torch.manual_seed(3)
    probs = torch.tensor([0.1, 0.0, 0.6, 0.3]).repeat(40000, 1)
    counts = torch.bincount(draw(probs, torch.rand(40000)), minlength=4).float() / 40000
    assert counts[1] == 0  # a suppressed (zero-probability) token is never drawn
    assert torch.allclose(counts, probs[0], atol=0.01)


def _rollout(tiny, group=4, length=8):
    loaded, prompt_batch = tiny
    torch.manual_seed(2)
    completions = sample_completions(
        loaded.model,
        loaded.processor,
        prompt_batch,
        Decoding(max_new_tokens=length, num_return_sequences=group),
    )  # stops at EOS: ragged lengths, right padding
    return append_completions(prompt_batch, completions, loaded.processor.tokenizer.pad_token_id)


def test_shared_prompt_log_probs_equal_the_full_sequence_forward(tiny):
    loaded, _ = tiny
    batch = _rollout(tiny)
    with torch.no_grad():
        simple = sequence_log_probs(loaded.model, batch, temperature=0.9)
        shared = grouped_log_probs(loaded.model, batch, num_generations=4, temperature=0.9)
    mask = batch["completion_mask"][:, 1:].bool()
    assert torch.allclose(simple[mask], shared[mask], atol=1e-5), (simple - shared)[mask].abs().max()


def test_shared_prompt_loss_and_gradient_equal_the_simple_path(tiny):
    # The optimized update (prompt and image computed once per group, gradient through the shared
    # KV cache) against the simple one, on the same batch: same loss, same gradient.
    loaded, _ = tiny
    model = loaded.model
    batch = _rollout(tiny)
    mask = batch["completion_mask"][:, 1:]
    advantages = torch.linspace(-1.0, 1.0, mask.shape[0])
    with torch.no_grad():
        reference = sequence_log_probs(model, batch) - 0.05  # a stand-in π_ref

    def loss_and_grads(log_probs_fn):
        model.zero_grad(set_to_none=True)
        model.train()
        logp = log_probs_fn(model, batch)
        loss = grpo_loss(logp, logp.detach(), reference, advantages, mask, beta=0.04).loss
        loss.backward()
        model.eval()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss, grads = loss_and_grads(sequence_log_probs)
    loss_shared, grads_shared = loss_and_grads(partial(grouped_log_probs, num_generations=4))
    assert torch.allclose(loss, loss_shared, atol=1e-6)
    assert grads.keys() == grads_shared.keys() and any("visual" in n for n in grads)
    for name, grad in grads.items():
        assert torch.allclose(grad, grads_shared[name], atol=1e-6, rtol=1e-4), name
