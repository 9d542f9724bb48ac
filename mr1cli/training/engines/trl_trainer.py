"""TRL's GRPOTrainer with the few things mr1's contract adds, each by overriding one TRL method:
the prompt-length refusal, the skip of all-zero-advantage steps, the β each loss actually used, the
generation time and tokens of the step, and mr1's learning-rate schedule. Everything else
(sampling, rewards, advantages, loss, optimizer, checkpoints) is TRL's own code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate.utils import is_peft_model
from trl import GRPOTrainer

from mr1cli.config import RunConfig
from mr1cli.core.errors import ConfigError
from mr1cli.training.steps import build_lr_scheduler


@dataclass
class StepRecord:
    """What one optimizer step did, beside TRL's own metrics (reset before every step)."""

    beta: float = 0.0  # β(s) set for the step
    betas_used: list[float] = field(default_factory=list)  # self.beta in each loss computation
    skipped: bool = False  # every group scored its G completions equally: no update
    generation_s: float = 0.0
    generated_tokens: int = 0


class Mr1GRPOTrainer(GRPOTrainer):
    def __init__(self, *args: Any, mr1_config: RunConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mr1_config = mr1_config
        self.step_record = StepRecord()

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        """mr1's schedule (training/steps.py), so both engines step at the same learning rate, warm-up
        included: transformers' warm-up ramps s/w from 0 (a first step at lr 0), mr1's (s+1)/(w+1)."""
        if self.lr_scheduler is None:
            optimizer = optimizer or self.optimizer
            self.lr_scheduler = build_lr_scheduler(optimizer, self.mr1_config.train, num_training_steps)
        return self.lr_scheduler

    def _tokenize_prompts(self, prompts: list) -> Any:
        """As mr1's engine: a prompt over rl.max_prompt_length tokens is refused, never cut (TRL ≥ 1 has
        no prompt length limit; R1-V's cut only the ids it kept, not what it generated from)."""
        prompt_ids, images, fields = super()._tokenize_prompts(prompts)
        limit = self.mr1_config.rl.max_prompt_length
        longest = max(len(ids) for ids in prompt_ids)
        if longest > limit:
            raise ConfigError(
                f"a prompt is {longest} tokens, over rl.max_prompt_length={limit} "
                "(raise it or lower model.max_pixels)"
            )
        return prompt_ids, images, fields

    def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        completion_ids, logprobs = super()._generate_single_turn(*args, **kwargs)
        self.step_record.generation_s += time.perf_counter() - started
        self.step_record.generated_tokens += sum(len(ids) for ids in completion_ids)
        return completion_ids, logprobs

    def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if self.model.training and self.mr1_config.rl.skip_zero_advantage_steps:
            # the step's advantages over every process (TRL computed them from the gathered rewards)
            advantages = self.accelerator.gather(output["advantages"])
            self.step_record.skipped = bool((advantages == 0).all())
        return output

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        """The policy's weights from a checkpoint, through `from_pretrained`. transformers 5.24's Trainer
        loads a checkpoint's state dict with a plain `load_state_dict(strict=False)`, without the key
        renaming `from_pretrained` applies: Qwen2-VL saves `model.layers.*`, its module holds
        `model.language_model.layers.*`, so nothing loaded and a resumed run restarted from the base
        weights (with the restored optimizer). Sharded (FSDP, DeepSpeed) and adapter checkpoints keep
        the Trainer's own loading."""
        target = self.accelerator.unwrap_model(model or self.model)
        if self.is_fsdp_enabled or self.is_deepspeed_enabled or is_peft_model(target):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        saved = type(target).from_pretrained(resume_from_checkpoint, dtype=target.dtype, use_safetensors=True)
        target.load_state_dict(saved.state_dict())  # strict: every weight comes from the checkpoint
        return None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.step_record.skipped:
            # No forward, so no gradient reaches a parameter: AdamW leaves every weight and moment as it
            # was (a parameter without .grad is not stepped); the LR schedule still counts the step, as
            # mr1's engine does.
            return torch.zeros((), device=self.accelerator.device, requires_grad=True)
        self.step_record.betas_used.append(float(self.beta))
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
