"""Supervised fine-tuning on the task's answers, loss on the assistant tokens only.

Targets: `sft.target=answer` trains on "<answer> x </answer>" (the paper's SFT baseline);
`sft.target=reasoning` on "<think> trace </think><answer> x </answer>" when the data has a
trace (the synthetic warm-up split that builds the tiny base).
The forward runs in the compute dtype `model.dtype` (bf16 autocast over float32 master weights,
models/precision.py); the cross-entropy is float32.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch

from mr1cli.config import RunConfig
from mr1cli.core.errors import TrainingHalted
from mr1cli.data.example import Example
from mr1cli.models.batching import IGNORE_INDEX, chat_prompt, sft_batch
from mr1cli.models.loading import load_for_config
from mr1cli.tasks import get_task
from mr1cli.training.distributed import as_float
from mr1cli.training.steps import build_lr_scheduler, build_optimizer, seed_step


def sft_target(example: Example, target: str) -> str:
    """The assistant turn SFT trains on.

    >>> from mr1cli.data.example import ImageRef
    >>> sft_target(Example("1", "counting", "How many?", "3", ImageRef(), thinking="a, b, c."), "reasoning")
    '<think> a, b, c. </think><answer> 3 </answer>'
    """
    if target == "reasoning" and example.thinking:
        return f"<think> {example.thinking} </think><answer> {example.truth} </answer>"
    return f"<answer> {example.truth} </answer>"


class SFTRecipe:
    def __init__(
        self, cfg: RunConfig, examples: Sequence[Example], model_path: str, total_steps: int, accelerator: Any
    ) -> None:
        self.cfg = cfg
        self.examples = examples
        self.accelerator = accelerator
        loaded = load_for_config(model_path, cfg.model, device=str(accelerator.device))
        self.processor = loaded.processor
        self.precision = loaded.precision
        optimizer = build_optimizer(loaded.model, cfg.train)
        self.scheduler = build_lr_scheduler(optimizer, cfg.train, total_steps)
        self.model, self.optimizer = accelerator.prepare(loaded.model, optimizer)
        self.model.train()

    def _prompt(self, example: Example) -> str:
        task = get_task(example.task)
        # A stable per-example choice (not the step's RNG), so resume and data order don't change it.
        draw = int(hashlib.sha256(example.id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        use_eval = draw < self.cfg.sft.eval_wording_frac
        question = task.eval_prompt(example.question) if use_eval else task.train_prompt(example.question)
        return chat_prompt(self.processor, question)

    def _batch(self, chunk: Sequence[Example]) -> dict[str, torch.Tensor]:
        prompts = [self._prompt(ex) for ex in chunk]
        m = self.cfg.model
        images = [ex.load_image(max_pixels=m.max_pixels, min_pixels=m.min_pixels) for ex in chunk]
        targets = [sft_target(ex, self.cfg.sft.target) for ex in chunk]
        return sft_batch(self.processor, prompts, images, targets)

    def train_step(self, step: int, indices: list[int]) -> dict[str, float]:
        seed_step(self.cfg.train.seed, step, self.accelerator.process_index)
        chunks = [
            [self.examples[i] for i in indices[start : start + self.cfg.train.micro_batch]]
            for start in range(0, len(indices), self.cfg.train.micro_batch)
        ]
        batches = [self._batch(chunk) for chunk in chunks]
        local_tokens = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in batches)
        # Normalise by the step's target tokens over all processes, so that micro-batching and
        # data parallelism give the same gradient as one big batch (DDP averages: × processes).
        global_tokens = self.accelerator.reduce(
            torch.tensor(float(local_tokens), device=self.accelerator.device), "sum"
        )
        scale = self.accelerator.num_processes / global_tokens.clamp(min=1.0)
        total_nll = 0.0
        for batch in batches:
            batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
            labels = batch.pop("labels")  # [B, L]
            with self.precision.autocast():  # the forward in the compute dtype; the loss in float32
                logits = self.model(**batch, use_cache=False).logits[:, :-1]  # [B, L-1, V]
            nll = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )  # []
            self.accelerator.backward(nll * scale)
            total_nll += float(nll.detach())
        grad_norm = self._clip()
        if not (math.isfinite(total_nll) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            what = "the loss" if not math.isfinite(total_nll) else "the gradient"
            raise TrainingHalted(
                f"step {step}: {what} is not finite; stopped, the last good checkpoint is kept"
            )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.accelerator.reduce(
            torch.tensor(total_nll, device=self.accelerator.device), "sum"
        ) / global_tokens.clamp(min=1.0)
        return {
            "loss": float(loss),
            "train/lr": self.scheduler.get_last_lr()[0],
            "train/grad_norm": grad_norm,
            "train/target_tokens": float(global_tokens),
        }

    def _clip(self) -> float:
        max_norm = self.cfg.train.max_grad_norm
        params = [p for p in self.model.parameters() if p.grad is not None]
        if max_norm > 0:
            return as_float(self.accelerator.clip_grad_norm_(params, max_norm))
        norms = [p.grad.detach().norm() for p in params]
        return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0
