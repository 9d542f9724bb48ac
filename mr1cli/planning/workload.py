"""What one training process runs, as the planner sees it: the `Workload` (model shape, compute
dtype, GPUs and sharding, batch sizes, LoRA) and the `Term`s of its memory."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mr1cli.planning.shapes import ModelShape, image_tokens

MASTER_BYTES = 4  # float32: a trained weight, its gradient, each of its AdamW moments
LORA_TEXT_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraShape:
    rank: int = 64
    modules: tuple[str, ...] = LORA_TEXT_MODULES
    vision: bool = False
    dropout: bool = True  # a dropout > 0 keeps a copy of each wrapped layer's input


@dataclass(frozen=True)
class Workload:
    """Everything the memory and time of one step depend on, for one process."""

    shape: ModelShape
    dtype_bytes: int = 2  # the compute dtype (model.dtype): 2 bf16 autocast, 4 float32
    gpus: int = 1
    fsdp: bool = False  # FSDP2 full sharding over the gpus (experiments/accelerate/fsdp2.yaml); else DDP
    micro_batch: int = 1  # prompts per forward/backward
    rollout_batch: int = 1  # prompts sampled together (rl.rollout_batch, 0 resolved to the per-GPU share)
    generations: int = 8  # G
    prompt_text_tokens: int = 96  # the question and chat template around the image
    max_pixels: int = 401408
    completion_tokens: int = 512
    gradient_checkpointing: bool = False
    lora: LoraShape | None = None
    freeze_vision: bool = False
    reference: bool = True  # β can be positive at some step (GRPO, GRPO-D); False for SFT or β ≡ 0
    rollouts: bool = True  # False for SFT
    shared_prompt: bool = True  # rl.shared_prompt_forward
    eager_attention: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False)  # notes carried to the report

    def with_(self, **changes) -> Workload:
        return replace(self, **changes)

    @property
    def sequences(self) -> int:
        """Sequences in one micro-batch: micro_batch · G (GRPO) or micro_batch (SFT)."""
        return self.micro_batch * (self.generations if self.rollouts else 1)

    @property
    def autocast(self) -> bool:
        """bf16 compute over float32 master weights (sharded or not, autocast does the bf16)."""
        return self.dtype_bytes < MASTER_BYTES

    @property
    def shards(self) -> int:
        """Processes the weights, gradients and AdamW moments are split over: N under FSDP2, else 1."""
        return self.gpus if self.fsdp else 1

    @property
    def rollout_sequences(self) -> int:
        """Sequences sampled together: rollout_batch · G."""
        return self.rollout_batch * self.generations

    @property
    def prompt_tokens(self) -> int:
        return self.prompt_text_tokens + image_tokens(self.max_pixels)

    @property
    def shares_prompt_in_update(self) -> bool:
        """The policy update computes each prompt once only without checkpointing, on one process."""
        return self.rollouts and self.shared_prompt and not self.gradient_checkpointing and self.gpus == 1


@dataclass(frozen=True)
class Term:
    name: str
    phase: str  # always, gathered, rollouts, running (rollouts and forward), update, activations, grad sum
    bytes: float
    note: str = ""
