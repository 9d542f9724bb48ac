"""From a resolved run config and a GPU description to a `Plan`: terms, verdict, fixes, step time."""

from __future__ import annotations

from dataclasses import dataclass

from mr1cli.config import RunConfig
from mr1cli.core.errors import ConfigError
from mr1cli.core.kl_schedules import schedule_from_settings
from mr1cli.core.methods import METHODS
from mr1cli.planning.advice import USABLE_FRACTION, Fix, fixes
from mr1cli.planning.gpus import GpuKind, gpu_kind, kind_for_device
from mr1cli.planning.memory import memory_terms, peak_bytes
from mr1cli.planning.shapes import ModelShape, image_tokens, shape_for
from mr1cli.planning.timing import StepTime, step_time
from mr1cli.planning.workload import LoraShape, Term, Workload

COMPUTE_BYTES = {
    "auto": 2,
    "bfloat16": 2,
    "float32": 4,
}  # model.dtype, the compute dtype; auto: bf16 on a GPU
PROMPT_TEXT_TOKENS = 96  # chat template + question around the image (counting and geometry prompts)
PLANNED_STEPS = 1000  # β(s) is checked over this many steps to decide whether π_ref is loaded


@dataclass(frozen=True)
class Plan:
    workload: Workload
    gpu: GpuKind
    terms: list[Term]
    peak_bytes: float
    fits: bool
    fixes: list[Fix]
    time: StepTime
    notes: list[str]

    @property
    def budget_bytes(self) -> float:
        return USABLE_FRACTION * self.gpu.memory_bytes


def workload_for_config(cfg: RunConfig, shape: ModelShape, *, gpus: int, fsdp: bool = False) -> Workload:
    """The `Workload` of one process of `cfg` trained on `gpus` GPUs, sharded with FSDP2 or not (DDP)."""
    rl, m = cfg.rl, cfg.model
    rollouts = METHODS.get(cfg.method).recipe == "grpo"
    reference = rollouts and schedule_from_settings(rl.kl).can_be_positive(PLANNED_STEPS)
    share = max(1, cfg.train.prompts_per_step // gpus)  # prompts per GPU per step
    lora = None
    if m.lora.enabled:
        lora = LoraShape(m.lora.rank, tuple(m.lora.target_modules), m.lora.vision, m.lora.dropout > 0)
    return Workload(
        shape=shape,
        dtype_bytes=COMPUTE_BYTES[m.dtype],
        gpus=gpus,
        fsdp=fsdp,
        micro_batch=cfg.train.micro_batch,
        rollout_batch=min(rl.rollout_batch or share, share),  # a call samples at most a GPU's share
        generations=rl.num_generations,
        prompt_text_tokens=PROMPT_TEXT_TOKENS,
        max_pixels=m.max_pixels,
        completion_tokens=rl.max_completion_length if rollouts else 256,
        gradient_checkpointing=m.gradient_checkpointing,
        lora=lora,
        freeze_vision=m.freeze_vision,
        reference=reference,
        rollouts=rollouts,
        shared_prompt=rl.shared_prompt_forward,
        eager_attention=m.attn_implementation == "eager",
    )


def resolve_gpu(name: str | None, detected: list[tuple[str, int]]) -> tuple[GpuKind, int]:
    """(kind, count): the named kind, or the detected devices [(name, total bytes)], or an error."""
    if name:
        return gpu_kind(name), 0
    if not detected:
        raise ConfigError("no GPU detected here: name one with --gpu (e.g. --gpu h100-80gb)")
    device_name, total = detected[0]
    return kind_for_device(device_name, total), len(detected)


def make_plan(cfg: RunConfig, gpu: GpuKind, *, gpus: int, fsdp: bool = False) -> Plan:
    if gpus < 1:
        raise ConfigError(f"--gpus must be >= 1, got {gpus}")
    if fsdp and gpus < 2:
        raise ConfigError("--fsdp shards over the run's GPUs: it needs --gpus 2 or more")
    workload = workload_for_config(cfg, shape_for(cfg.model.name_or_path), gpus=gpus, fsdp=fsdp)
    terms = memory_terms(workload)
    peak = peak_bytes(terms)
    fit = peak <= USABLE_FRACTION * gpu.memory_bytes
    notes = []
    prompt = workload.prompt_tokens
    if workload.rollouts and prompt > cfg.rl.max_prompt_length:
        notes.append(
            f"an image at max_pixels={cfg.model.max_pixels} is {image_tokens(cfg.model.max_pixels)} tokens: the "
            f"prompt (~{prompt}) exceeds rl.max_prompt_length={cfg.rl.max_prompt_length}, which refuses it; "
            "real images smaller than max_pixels are fine (CLEVR's 480×320 is 196 tokens)"
        )
    per_gpu = cfg.train.prompts_per_step / gpus
    if per_gpu < cfg.train.micro_batch:
        notes.append(
            f"prompts_per_step / gpus = {per_gpu:g} is below train.micro_batch={cfg.train.micro_batch}"
        )
    time = step_time(workload, gpu, cfg.train.prompts_per_step)
    return Plan(workload, gpu, terms, peak, fit, [] if fit else fixes(workload, gpu), time, notes)
