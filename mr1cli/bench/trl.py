"""TRL's GRPOTrainer set up to do exactly the work of one mr1 GRPO run, with its step timed and split.

It is the TRL engine's own trainer (`train.engine=trl`, mr1cli/training/engines/): the same GRPOConfig
mapping, step-ordered dataset, reward functions and trainer class, so `mr1 bench grpo` times the two
engines as users run them. The bench config (`bench_config`) adds what makes the work identical and
its time comparable: the same checkpoint folder, a fixed completion length (no rollout stops early at
EOS), constant β, no skipping of zero-advantage steps, no probe; here TRL also logs and saves nothing.

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
from mr1cli.data.example import Example
from mr1cli.models.batching import forbidden_token_ids
from mr1cli.training.engines.trl_data import reward_functions, trl_dataset
from mr1cli.training.engines.trl_mapping import grpo_config_kwargs


def trl_config(
    cfg: RunConfig, *, beta: float, max_steps: int, output_dir: str, device: torch.device, forbidden=()
):
    """The TRL engine's GRPOConfig for `cfg` (β constant), on `device`, logging and saving nothing."""
    from trl import GRPOConfig

    if cfg.train.prompts_per_step % cfg.train.micro_batch:
        raise ValueError("the bench needs train.prompts_per_step to be a multiple of train.micro_batch")
    kwargs = grpo_config_kwargs(
        cfg, output_dir=output_dir, total_steps=max_steps, beta=beta, forbidden_tokens=forbidden
    )
    return GRPOConfig(**kwargs | {"use_cpu": device.type == "cpu", "logging_strategy": "no"})


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

    from mr1cli.training.engines.trl_trainer import Mr1GRPOTrainer

    processor.tokenizer.padding_side = "left"  # TRL re-encodes prompts for the forward pass
    with tempfile.TemporaryDirectory(prefix="mr1-bench-trl-") as output_dir:
        # rl.min_completion_length = max (bench_config): EOS cannot end a rollout early; the vision
        # marker tokens are never sampled, as in mr1
        forbidden = forbidden_token_ids(processor)
        args = trl_config(
            cfg, beta=beta, max_steps=len(plan), output_dir=output_dir, device=device, forbidden=forbidden
        )
        trainer = Mr1GRPOTrainer(
            model=model,
            reward_funcs=reward_functions(cfg),
            args=args,
            train_dataset=trl_dataset(cfg, examples, [i for step in plan for i in step]),
            processing_class=processor,
            mr1_config=cfg,
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
