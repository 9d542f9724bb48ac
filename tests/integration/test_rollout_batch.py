"""Rollouts batched per step (`rl.rollout_batch`): each prompt samples from its own seeded generator,
so how prompts are batched does not change what is drawn; the update still runs in
`train.micro_batch` chunks."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from support import three_padded_prompts, tiny_grpo_config

from mr1cli.data.for_config import load_examples
from mr1cli.models.batching import Decoding, split_prompts, stack_prompts
from mr1cli.models.sampling import sample_completions
from mr1cli.training.recipes.grpo import GRPORecipe
from mr1cli.training.rollouts import Sampled, micro_batches
from mr1cli.training.steps import step_indices


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return three_padded_prompts(tiny_model_dir)


def test_split_then_stack_gives_back_the_processor_batch(tiny):
    loaded, batch = tiny
    singles = split_prompts(batch)
    assert [s["input_ids"].shape[1] for s in singles] == batch["attention_mask"].sum(dim=1).tolist()
    restacked = stack_prompts(singles, loaded.processor.tokenizer.pad_token_id)
    assert restacked.keys() == batch.keys()
    assert all(torch.equal(restacked[key], batch[key]) for key in batch)
    pair = stack_prompts(singles[1:], loaded.processor.tokenizer.pad_token_id)  # narrower: less padding
    assert pair["input_ids"].shape[1] == max(s["input_ids"].shape[1] for s in singles[1:])


def test_a_prompt_draws_the_same_completions_alone_or_in_a_batch(tiny):
    """Per-prompt generators: prompt 2 sampled with its seed alone equals prompt 2 sampled in a batch
    of three (with left padding around it)."""
    loaded, batch = tiny
    decoding = Decoding(max_new_tokens=10, num_return_sequences=4, prompt_seeds=(11, 12, 13))
    together = sample_completions(loaded.model, loaded.processor, batch, decoding)
    alone = sample_completions(
        loaded.model,
        loaded.processor,
        split_prompts(batch)[2],
        Decoding(max_new_tokens=10, num_return_sequences=4, prompt_seeds=(13,)),
    )
    assert together[8:] == alone
    assert together[:4] != together[4:8]  # different seeds, different draws


def sampled(prompts: int, group: int, first: int) -> Sampled:
    """A fake sampling call: prompt i has ids [i]*(i+1) (ragged, left-padded) and G one-token completions."""
    width = prompts + first
    ids = torch.zeros(prompts, width, dtype=torch.long)
    mask = torch.zeros(prompts, width, dtype=torch.long)
    for row in range(prompts):
        length = first + row + 1
        ids[row, width - length :] = first + row
        mask[row, width - length :] = 1
    rows = prompts * group
    values = torch.arange(first * group, first * group + rows, dtype=torch.float32)
    return Sampled(
        {"input_ids": ids, "attention_mask": mask},
        [[int(v)] for v in values],
        values,
        {"accuracy": values * 10},
        -values,
    )


def test_micro_batches_regroup_prompts_in_order_across_sampling_calls():
    samples = [sampled(3, 2, first=0), sampled(2, 2, first=3)]  # prompts 0-2, then 3-4
    batches = micro_batches(samples, prompts_per_batch=2, pad_id=0)
    assert [b.prompt_batch["input_ids"].shape[0] for b in batches] == [2, 2, 1]
    assert batches[1].prompt_batch["input_ids"].tolist() == [[0, 2, 2, 2], [3, 3, 3, 3]]  # left-padded to 4
    assert [b.completions for b in batches] == [[[0], [1], [2], [3]], [[4], [5], [6], [7]], [[8], [9]]]
    assert torch.equal(torch.cat([b.rewards for b in batches]), torch.arange(10.0))
    assert torch.equal(torch.cat([b.advantages for b in batches]), -torch.arange(10.0))
    assert torch.equal(batches[2].components["accuracy"], torch.tensor([80.0, 90.0]))


def test_one_sampling_call_per_step_samples_what_one_call_per_prompt_does(module_cache, tiny_model_dir):
    """The same GRPO-D step with rl.rollout_batch=0 (the step's 4 prompts in one call) and 1 (four
    calls): the same completions, rewards and loss; the update runs in micro-batches of 2 either way."""
    results = {}
    for rollout_batch in (0, 1):
        cfg = tiny_grpo_config(
            tiny_model_dir, f"rl.rollout_batch={rollout_batch}", "rl.skip_zero_advantage_steps=false"
        )
        examples = load_examples(cfg, "train")
        recipe = GRPORecipe(cfg, examples, str(tiny_model_dir), str(tiny_model_dir), 1, Accelerator(cpu=True))
        calls, sample = [], recipe.sample
        recipe.sample = lambda *args, calls=calls, sample=sample: calls.append(sample(*args)) or calls[-1]
        rollouts, rollout = [], recipe.rollout
        recipe.rollout = lambda *args, rollouts=rollouts, rollout=rollout: (
            rollouts.append(rollout(*args)) or rollouts[-1]
        )
        metrics = recipe.train_step(0, step_indices(len(examples), 0, 4, cfg.train.seed))
        completions = [c for call in calls for c in call.completions]
        results[rollout_batch] = (len(calls), [len(r.advantages) for r in rollouts], completions, metrics)
    (calls0, sizes0, drawn0, m0), (calls1, sizes1, drawn1, m1) = results[0], results[1]
    assert (calls0, calls1) == (1, 4)
    assert sizes0 == sizes1 == [8, 8]  # micro-batches of 2 prompts × G = 4
    assert drawn0 == drawn1
    assert m0["reward/mean"] == m1["reward/mean"]
    assert m0["loss/total"] == pytest.approx(m1["loss/total"], abs=1e-6)
