"""GRPO / GRPO-D recipe: rollout → reward → group advantage → clipped update with β(s)·KL.

GRPO and GRPO-D differ only by the KL schedule (config `rl.kl.name`, or the method's).
One optimizer step s:
  1. for each prompt, sample G completions from π_θ (temperature, top-p; `rl.sampler`: by default a
     KV-cached loop that prefills each prompt once for its G completions, models/sampling.py), all of
     this process's prompts in one call (or `rl.rollout_batch` at a time), each prompt from a generator
     seeded by (seed, step, its position in the step's batch); steps 3–4 run in `train.micro_batch`
     chunks (training/rollouts.py);
  2. score them (accuracy + α·format), advantages Â = (r − mean_group) / (std_group + 1e-4);
  3. log-probs of the sampled tokens under π_ref (frozen, no grad) and, when μ > 1, under
     π_old (= π_θ before the update); with `rl.shared_prompt_forward` each prompt and its image are
     computed once for the G completions (models/shared_prompt.py; same values), here and in step 4;
  4. μ times: loss = −[min(ρÂ, clip(ρ)Â) − β(s)·KL_k3] averaged per completion then over
     completions; backward, clip the gradient, optimizer step.
Every forward runs in the compute dtype `model.dtype` (bf16 autocast over float32 master weights,
models/precision.py); log-probs, advantages, the k3 KL and the loss are float32.
With μ = 1 (ρ ≡ 1) the clip fraction is 0 and `loss/policy` averages the advantages (0 per group), so
each updated step also logs `policy/entropy`, from the sampled tokens' log-probs under π_old.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from mr1cli.config import RunConfig
from mr1cli.core.errors import ConfigError, TrainingHalted
from mr1cli.core.grpo_loss import group_advantages, grpo_loss, sampled_token_entropy
from mr1cli.core.kl_schedules import schedule_from_settings
from mr1cli.data.example import Example
from mr1cli.models.batching import (
    Decoding,
    append_completions,
    chat_prompt,
    encode_prompts,
    sequence_log_probs,
)
from mr1cli.models.loading import load_for_config
from mr1cli.models.lora import reference_off
from mr1cli.models.samplers import SAMPLERS
from mr1cli.tasks import get_task
from mr1cli.tasks.rewards import score_completion
from mr1cli.training.distributed import as_float, prepare_frozen
from mr1cli.training.rollouts import Sampled, micro_batches
from mr1cli.training.steps import build_lr_scheduler, build_optimizer, prompt_seed, seed_step


@dataclass
class Rollout:
    """One micro-batch of `train.micro_batch` prompts with their G completions each, ready for the loss."""

    batch: dict[str, torch.Tensor]  # full sequences, completion_mask included
    advantages: torch.Tensor  # [N]
    logp_old: torch.Tensor | None  # [N, S-1], only when μ > 1
    logp_ref: torch.Tensor | None  # [N, S-1], only when a reference model is loaded
    rewards: torch.Tensor  # [N] weighted totals
    components: dict[str, torch.Tensor]  # name → [N]
    lengths: torch.Tensor  # [N] completion tokens


class GRPORecipe:
    def __init__(
        self,
        cfg: RunConfig,
        examples: Sequence[Example],
        policy_path: str,
        reference_path: str,
        total_steps: int,
        accelerator: Any,
    ) -> None:
        self.cfg = cfg
        self.examples = examples
        self.total_steps = total_steps
        self.accelerator = accelerator
        self.schedule = schedule_from_settings(cfg.rl.kl)
        self.task = get_task(cfg.task)
        policy = self._load(policy_path)
        self.processor = policy.processor
        # Load π_ref whenever β can be positive at any step, even if β(0) = 0.
        self.reference = None
        # With LoRA, π_ref is the policy with its adapters off (models/lora.py): no second copy.
        self.reference_is_policy = cfg.model.lora.enabled and self.schedule.can_be_positive(total_steps)
        if self.schedule.can_be_positive(total_steps) and not self.reference_is_policy:
            reference = self._load(reference_path, for_reference=True).model
            reference.requires_grad_(False)
            self.reference = prepare_frozen(accelerator, reference.eval())
        self.precision = policy.precision
        optimizer = build_optimizer(policy.model, cfg.train)
        self.scheduler = build_lr_scheduler(optimizer, cfg.train, total_steps)
        self.model, self.optimizer = accelerator.prepare(policy.model, optimizer)
        self.model.train()
        self.pad_id = self.processor.tokenizer.pad_token_id

    def _load(self, path: str, for_reference: bool = False) -> Any:
        return load_for_config(
            path, self.cfg.model, device=str(self.accelerator.device), trainable=not for_reference
        )

    # ------------------------------------------------------------------ rollout

    @torch.no_grad()
    def sample(self, chunk: Sequence[Example], seeds: Sequence[int], timings: dict[str, float]) -> Sampled:
        """G completions for each prompt of `chunk` in one sampler call (prompt i draws from `seeds[i]`),
        scored, with their group advantages."""
        rl, m = self.cfg.rl, self.cfg.model
        policy = self.accelerator.unwrap_model(self.model)
        prompts = [chat_prompt(self.processor, self.task.train_prompt(ex.question)) for ex in chunk]
        images = [ex.load_image(max_pixels=m.max_pixels, min_pixels=m.min_pixels) for ex in chunk]
        prompt_batch = encode_prompts(self.processor, prompts, images)
        prompt_tokens = prompt_batch["attention_mask"].sum(dim=1)  # [B]
        if int(prompt_tokens.max()) > rl.max_prompt_length:
            worst = chunk[int(prompt_tokens.argmax())]
            raise ConfigError(
                f"example {worst.id}: prompt is {int(prompt_tokens.max())} tokens, over rl.max_prompt_length="
                f"{rl.max_prompt_length} (raise it or lower model.max_pixels)"
            )
        started = time.perf_counter()
        decoding = Decoding(
            max_new_tokens=rl.max_completion_length,
            min_new_tokens=rl.min_completion_length,
            temperature=rl.temperature,
            top_p=rl.top_p,
            top_k=rl.top_k,
            num_return_sequences=rl.num_generations,
            prompt_seeds=tuple(seeds),
        )
        with self.precision.autocast():
            completions = SAMPLERS.get(rl.sampler)(policy, self.processor, prompt_batch, decoding)  # N = B·G
        timings["generation"] += time.perf_counter() - started
        texts = self.processor.tokenizer.batch_decode(completions, skip_special_tokens=True)
        truths = [ex.truth for ex in chunk for _ in range(rl.num_generations)]
        scored = [
            score_completion(
                text,
                truth,
                task=self.cfg.task,
                weights=self.cfg.reward.weights,
                scoring=self.cfg.reward.scoring,
            )
            for text, truth in zip(texts, truths, strict=True)
        ]
        rewards = torch.tensor([s.total for s in scored], dtype=torch.float32)  # [N]
        components = {
            name: torch.tensor([s.components[name] for s in scored]) for name in self.cfg.reward.weights
        }
        advantages = group_advantages(rewards, rl.num_generations)  # [N]
        return Sampled(prompt_batch, completions, rewards, components, advantages)

    @torch.no_grad()
    def rollout(self, sampled: Sampled, timings: dict[str, float]) -> Rollout:
        """One micro-batch ready for the loss: full sequences, and their π_ref and π_old log-probs."""
        rl = self.cfg.rl
        policy = self.accelerator.unwrap_model(self.model)
        batch = append_completions(sampled.prompt_batch, sampled.completions, self.pad_id)
        batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
        started = time.perf_counter()
        log_probs = self._log_probs_fn(shared=rl.shared_prompt_forward)  # no grad, unwrapped models
        with self.precision.autocast():
            logp_ref = log_probs(self.reference, batch) if self.reference is not None else None
            if self.reference_is_policy:
                with reference_off(policy) as reference:
                    logp_ref = log_probs(reference, batch)
            logp_old = log_probs(policy, batch) if rl.num_iterations > 1 else None
        timings["reference"] += time.perf_counter() - started
        return Rollout(
            batch,
            sampled.advantages.to(self.accelerator.device),
            logp_old,
            logp_ref,
            sampled.rewards,
            sampled.components,
            sampled.lengths,
        )

    # ------------------------------------------------------------------ step

    def train_step(self, step: int, indices: list[int]) -> dict[str, float]:
        rl, train = self.cfg.rl, self.cfg.train
        beta = self.schedule(step, self.total_steps)  # β(s), Eq. 3 for GRPO-D
        timings = {"generation": 0.0, "reference": 0.0, "update": 0.0}
        first_prompt = self.accelerator.process_index * len(indices)  # this shard's place in the step's batch
        per_call = rl.rollout_batch or len(indices)
        samples = []
        for offset in range(0, len(indices), per_call):
            chunk = indices[offset : offset + per_call]
            position = first_prompt + offset  # global positions: one process or N processes sample alike
            seed_step(train.seed, step, position)
            seeds = [prompt_seed(train.seed, step, position + i) for i in range(len(chunk))]
            samples.append(self.sample([self.examples[i] for i in chunk], seeds, timings))
        rollouts = [
            self.rollout(mb, timings) for mb in micro_batches(samples, train.micro_batch, self.pad_id)
        ]
        rewards = self._gather(torch.cat([r.rewards for r in rollouts]))
        if not torch.isfinite(rewards).all():
            raise TrainingHalted(
                f"step {step}: a reward is not finite; stopped, the last good checkpoint is kept"
            )
        advantages = self._gather(torch.cat([r.advantages.cpu() for r in rollouts]))
        metrics = self._rollout_metrics(rollouts, rewards, advantages, beta)
        if rl.skip_zero_advantage_steps and bool((advantages == 0).all()):
            # Every group scored its G completions equally: no policy-gradient signal. Skip the update,
            # but keep the LR schedule on the step count (torch warns when no optimizer step came first).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.scheduler.step()
            return metrics | {
                "train/skipped": 1.0,
                "loss/total": 0.0,
                "loss/policy": 0.0,
                "kl/mean": 0.0,
                "train/clip_fraction": 0.0,
                **_timing_metrics(timings, metrics),
            }
        started = time.perf_counter()
        update = {}
        for _ in range(rl.num_iterations):
            update = self._update(rollouts, beta, step)
        self.scheduler.step()
        timings["update"] = time.perf_counter() - started
        return metrics | update | {"train/skipped": 0.0, **_timing_metrics(timings, metrics)}

    def _update(self, rollouts: list[Rollout], beta: float, step: int) -> dict[str, float]:
        rl = self.cfg.rl
        total_sequences = sum(len(r.advantages) for r in rollouts)
        sums = {"loss/total": 0.0, "loss/policy": 0.0, "kl/mean": 0.0, "train/clip_fraction": 0.0}
        surprisal_sum, completion_tokens = 0.0, 0.0  # for policy/entropy over this step's tokens
        log_probs = self._log_probs_fn(shared=rl.shared_prompt_forward and self._can_share_with_grad())
        for r in rollouts:
            with self.precision.autocast():  # the forward in the compute dtype; the loss below in float32
                logp_new = log_probs(self.model, r.batch)  # [N, S-1] float32
            logp_old = r.logp_old if r.logp_old is not None else logp_new.detach()  # ρ ≡ 1 when μ = 1
            mask = r.batch["completion_mask"][:, 1:]  # [N, S-1]
            terms = grpo_loss(
                logp_new,
                logp_old,
                r.logp_ref,
                r.advantages,
                mask,
                beta=beta,
                epsilon_low=rl.epsilon_low,
                epsilon_high=rl.epsilon_high,
                aggregation=rl.loss_aggregation,
            )
            weight = len(r.advantages) / total_sequences  # micro-batches → one batch mean
            if not torch.isfinite(terms.loss):
                raise TrainingHalted(
                    f"step {step}: the loss is not finite; stopped, the last good checkpoint is kept"
                )
            self.accelerator.backward(terms.loss * weight)
            sums["loss/total"] += float(terms.loss.detach()) * weight
            sums["loss/policy"] += -float(terms.policy_objective) * weight
            sums["kl/mean"] += float(terms.kl) * weight
            sums["train/clip_fraction"] += float(terms.clip_fraction) * weight
            tokens = float(mask.sum())
            surprisal_sum += float(sampled_token_entropy(logp_old, mask)) * tokens
            completion_tokens += tokens
        grad_norm = self._clip()
        if not math.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingHalted(
                f"step {step}: the gradient is not finite; stopped, the last good checkpoint is kept"
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        reduced = {k: float(self._gather(torch.tensor([v])).mean()) for k, v in sums.items()}
        surprisal, tokens = (
            self._gather(torch.tensor([surprisal_sum, completion_tokens])).view(-1, 2).sum(dim=0)
        )
        return reduced | {
            "policy/entropy": float(surprisal / tokens.clamp(min=1.0)),
            "train/grad_norm": grad_norm,
            "train/lr": self.scheduler.get_last_lr()[0],
        }

    def _log_probs_fn(self, *, shared: bool):
        """Per-token log-probs of a rollout batch: each prompt computed once for its G completions
        (models/shared_prompt.py) or every full sequence (batching.sequence_log_probs); same values."""
        rl = self.cfg.rl
        return partial(
            sequence_log_probs, temperature=rl.temperature, prompt_groups=rl.num_generations if shared else 1
        )

    def _can_share_with_grad(self) -> bool:
        """The shared-prompt forward needs the KV cache, which gradient checkpointing drops, and two model
        calls per backward, which a distributed wrapper does not expect."""
        return self.accelerator.num_processes == 1 and not self.cfg.model.gradient_checkpointing

    def _clip(self) -> float:
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not params:
            return 0.0
        max_norm = self.cfg.train.max_grad_norm if self.cfg.train.max_grad_norm > 0 else float("inf")
        return as_float(self.accelerator.clip_grad_norm_(params, max_norm))

    def _gather(self, values: torch.Tensor) -> torch.Tensor:
        return self.accelerator.gather(values.to(self.accelerator.device)).cpu()

    def _rollout_metrics(self, rollouts: list[Rollout], rewards, advantages, beta: float) -> dict[str, float]:
        groups = advantages.view(-1, self.cfg.rl.num_generations)
        lengths = self._gather(torch.cat([r.lengths for r in rollouts]))
        metrics = {
            "reward/mean": float(rewards.mean()),
            "reward/std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
            "kl/beta": beta,
            "completion/length": float(lengths.mean()),
            "completion/tokens": float(lengths.sum()),
            "train/zero_adv_groups": float((groups == 0).all(dim=1).float().mean()),
        }
        for name in self.cfg.reward.weights:
            values = self._gather(torch.cat([r.components[name] for r in rollouts]))
            metrics[f"reward/{name}"] = float(values.mean())
        return metrics


def _timing_metrics(timings: dict[str, float], metrics: dict[str, float]) -> dict[str, float]:
    return {
        "perf/generation_s": timings["generation"],
        "perf/reference_s": timings["reference"],
        "perf/update_s": timings["update"],
        "perf/gen_tokens_per_s": metrics["completion/tokens"] / max(timings["generation"], 1e-9),
    }
