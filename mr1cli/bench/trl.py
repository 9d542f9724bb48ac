"""TRL's GRPOTrainer set up to do exactly the work of one mr1 GRPO run, with its step timed and split.

Matching (see `trl_config`): the same checkpoint folder (TRL loads its own reference from it too),
the same prompts in the same order (a dataset laid out step by step, no shuffling), G, prompts per
step, micro-batch, sampling (temperature, top-p, top-k, the vision marker tokens suppressed), a fixed
completion length (`min_new_tokens` = `max_new_tokens`, so no rollout stops early at EOS), constant β,
the clipped loss with the per-sequence mean (`loss_type="grpo"`), AdamW with the same learning rate,
betas, ε and weight decay, a constant LR, the same gradient clipping, no gradient checkpointing unless
mr1 uses it, float32 weights computing in `model.dtype` (TRL's bf16 autocast when it is bfloat16, as
mr1's), no vLLM, no logging, saving or evaluation.

The trainer runs its own `train()` loop; a callback closes TRL's step k at `on_step_end` and hands
control to `between_steps(k)` (mr1's step k), so the two alternate in one process. A TRL step is timed
from the moment control comes back to TRL until its next `on_step_end`: data loading, generation,
rewards, reference log-probs, forward/backward, clipping and the optimizer step.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import torch

from mr1cli.bench.measure import MemoryMeter, now, synchronize
from mr1cli.config import RunConfig
from mr1cli.core.rewards import score_completion
from mr1cli.core.task import get_task
from mr1cli.data.example import Example
from mr1cli.models.batching import forbidden_token_ids
from mr1cli.models.precision import resolve_precision


def trl_dataset(cfg: RunConfig, examples: Sequence[Example], plan: Sequence[Sequence[int]]):
    """One row per prompt, step after step in the order of `plan` (TRL repeats each row G times)."""
    from datasets import Dataset

    task, m = get_task(cfg.task), cfg.model
    rows = [
        {
            "prompt": [{"role": "user", "content": task.train_prompt(examples[i].question)}],
            "image": examples[i].load_image(max_pixels=m.max_pixels, min_pixels=m.min_pixels),
            "truth": examples[i].truth,
        }
        for step in plan
        for i in step
    ]
    return Dataset.from_list(rows)


def mr1_reward(cfg: RunConfig) -> Callable[..., list[float]]:
    """mr1's weighted reward (accuracy + α·format) as one TRL reward function."""

    def reward(prompts, completions, truth, **kwargs) -> list[float]:
        return [
            score_completion(
                c[0]["content"], t, task=cfg.task, weights=cfg.reward.weights, scoring=cfg.reward.scoring
            ).total
            for c, t in zip(completions, truth, strict=True)
        ]

    reward.__name__ = "mr1_reward"
    return reward


def trl_config(cfg: RunConfig, *, beta: float, max_steps: int, output_dir: str, device: torch.device):
    """A GRPOConfig doing the same work as mr1 with `cfg` (β constant)."""
    from trl import GRPOConfig

    rl, train = cfg.rl, cfg.train
    if train.prompts_per_step % train.micro_batch:
        raise ValueError("the bench needs train.prompts_per_step to be a multiple of train.micro_batch")
    return GRPOConfig(
        output_dir=output_dir,
        use_cpu=device.type == "cpu",
        bf16=resolve_precision(cfg.model.dtype, device).mixed,  # autocast over float32 weights, as mr1
        fp16=False,
        seed=train.seed,
        max_steps=max_steps,
        per_device_train_batch_size=train.micro_batch * rl.num_generations,  # completions
        gradient_accumulation_steps=train.prompts_per_step // train.micro_batch,
        num_generations=rl.num_generations,
        shuffle_dataset=False,
        learning_rate=train.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=train.weight_decay,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        optim="adamw_torch",
        max_grad_norm=train.max_grad_norm,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        beta=beta,
        epsilon=rl.epsilon_low,
        epsilon_high=rl.epsilon_high,
        num_iterations=rl.num_iterations,
        loss_type="grpo",  # per-completion token mean, then mean over completions: mr1's sequence_mean
        scale_rewards="group",
        temperature=rl.temperature,
        top_p=rl.top_p,
        top_k=rl.top_k,
        max_completion_length=rl.max_completion_length,
        use_vllm=False,
        report_to="none",
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        log_completions=False,
    )


class TRLStepTimer:
    """Times each TRL optimizer step and splits it, by wrapping the trainer's own methods:
    generation (`_generate_single_turn`), reference log-probs (`_get_per_token_logps_and_entropies`
    under no_grad), update (`training_step` minus `_prepare_inputs`, plus clipping and the optimizer
    step up to `on_step_end`); `other` is the rest (data loading, tokenising, image processing, rewards)."""

    def __init__(self, trainer: Any, device: torch.device, meter: MemoryMeter) -> None:
        self.device, self.meter = device, meter
        self.records: list[dict[str, float]] = []
        self._current = self._fresh()
        self._started = 0.0
        self._last_training_step_end = 0.0
        trainer._generate_single_turn = self._wrap(trainer._generate_single_turn, "generation", tokens=True)
        trainer._get_per_token_logps_and_entropies = self._wrap(
            trainer._get_per_token_logps_and_entropies, "reference", only_no_grad=True
        )
        trainer._prepare_inputs = self._wrap(trainer._prepare_inputs, "prepare")
        trainer.training_step = self._wrap(trainer.training_step, "training_step", mark_end=True)

    @staticmethod
    def _fresh() -> dict[str, float]:
        return {"generation": 0.0, "reference": 0.0, "prepare": 0.0, "training_step": 0.0, "tokens": 0.0}

    def _wrap(
        self, fn, key: str, *, tokens: bool = False, only_no_grad: bool = False, mark_end: bool = False
    ):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if only_no_grad and torch.is_grad_enabled():
                return fn(*args, **kwargs)
            started = now()
            result = fn(*args, **kwargs)
            synchronize(self.device)
            ended = now()
            self._current[key] += ended - started
            if tokens:
                self._current["tokens"] += sum(len(ids) for ids in result[0])  # completion_ids
            if mark_end:
                self._last_training_step_end = ended
            return result

        return timed

    def begin(self) -> None:
        self._current = self._fresh()
        self.meter.begin()
        self._started = now()

    def end(self) -> None:
        synchronize(self.device)
        ended = now()
        memory = self.meter.end()
        c = self._current
        optimizer_s = max(0.0, ended - self._last_training_step_end)
        update = c["training_step"] - c["prepare"] + optimizer_s
        total = ended - self._started
        self.records.append(
            {
                "step_s": total,
                "generation_s": c["generation"],
                "reference_s": c["reference"],
                "update_s": update,
                "other_s": total - c["generation"] - c["reference"] - update,
                "tokens": c["tokens"],
                **memory,
            }
        )


def run_trl(
    cfg: RunConfig,
    examples: Sequence[Example],
    plan: Sequence[Sequence[int]],
    *,
    model: torch.nn.Module,
    processor: Any,
    beta: float,
    device: torch.device,
    meter: MemoryMeter,
    between_steps: Callable[[int, dict[str, float]], None],
) -> list[dict[str, float]]:
    """Train TRL for len(plan) steps, calling `between_steps(k, record of TRL step k)` after its step k;
    return TRL's per-step records."""
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOTrainer

    processor.tokenizer.padding_side = "left"  # TRL re-encodes prompts for the forward pass
    with tempfile.TemporaryDirectory(prefix="mr1-bench-trl-") as output_dir:
        args = trl_config(cfg, beta=beta, max_steps=len(plan), output_dir=output_dir, device=device)
        args.generation_kwargs = {
            "min_new_tokens": cfg.rl.max_completion_length,  # fixed length: EOS cannot end a rollout early
            "suppress_tokens": forbidden_token_ids(processor),  # as mr1: no vision marker tokens sampled
        }
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[mr1_reward(cfg)],
            args=args,
            train_dataset=trl_dataset(cfg, examples, plan),
            processing_class=processor,
        )
        trainer.remove_callback(PrinterCallback)  # its end-of-training metrics dict would land on stdout
        timer = TRLStepTimer(trainer, device, meter)

        class Alternate(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                timer.begin()

            def on_step_end(self, args, state, control, **kwargs):
                timer.end()
                between_steps(state.global_step - 1, timer.records[-1])
                timer.begin()

        trainer.add_callback(Alternate())
        trainer.train()
        meter.end()  # the window opened after the last step
    return timer.records
