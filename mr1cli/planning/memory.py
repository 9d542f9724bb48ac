"""Peak GPU memory of one training process, term by term (bytes), from shapes alone.

What one GRPO step holds, per process:
- always: the policy weights, the optimiser state, the reference weights (none with LoRA: the
  reference is the policy with its adapters switched off);
- during rollouts: the KV cache of micro_batch · G sequences of (prompt + completion) tokens;
- during the update: the gradients, the saved activations of the decoder and of the vision tower,
  the completion logits (the vocabulary projection, in float32 for the log-softmax), and with tied
  embeddings two transient vocabulary-sized gradients (the embedding's and the head's, summed).
The peak is `always + max(rollouts, update)`. Saved activations are counted tensor by tensor for a
Qwen2 decoder layer on sdpa attention (see `decoder_layer_bytes`); the CPU test checks the sum
against a measured peak (tests/integration/test_plan_measured.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mr1cli.planning.shapes import ModelShape, image_patches, image_tokens

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
    dtype_bytes: int = 2  # 2: bf16/fp16 weights, 4: fp32
    gpus: int = 1
    zero: int = 0  # 0: one GPU or DDP; 1-3: DeepSpeed ZeRO stage (fp32 master weights)
    micro_batch: int = 1  # prompts per forward/backward
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
    def prompt_tokens(self) -> int:
        return self.prompt_text_tokens + image_tokens(self.max_pixels)

    @property
    def shares_prompt_in_update(self) -> bool:
        """The policy update computes each prompt once only without checkpointing, on one process."""
        return self.rollouts and self.shared_prompt and not self.gradient_checkpointing and self.gpus == 1


@dataclass(frozen=True)
class Term:
    name: str
    phase: str  # always, rollouts, update
    bytes: float
    note: str = ""


def trainable_params(w: Workload) -> int:
    """Parameters the optimiser updates: the LoRA adapters, or the model (minus a frozen vision tower).

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> trainable_params(Workload(shape=QWEN2_VL_2B, lora=LoraShape(rank=64)))
    73859072
    """
    if w.lora is not None:
        targets = w.shape.lora_targets(w.lora.modules, w.lora.vision)
        return sum(w.lora.rank * (fan_in + fan_out) * copies for fan_in, fan_out, copies in targets)
    frozen = w.shape.vision_params() if w.freeze_vision else 0
    return w.shape.total_params() - frozen


def decoder_layer_bytes(w: Workload, tokens: int, context: int) -> float:
    """Activations one Qwen2 decoder layer saves for its backward, over `tokens` tokens.

    Per token: two RMSNorms (a float32 copy and a 16-bit output each: 4h + d·h), q/k/v and their
    rotary versions and the attention output (5h + 4·kv, sdpa keeps no score matrix; eager adds
    heads · context scores and probabilities), and the SwiGLU MLP (gate, up, SiLU(gate), product: 4i).

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> decoder_layer_bytes(Workload(shape=QWEN2_VL_2B), tokens=1, context=1024)
    107520.0
    """
    s, d = w.shape, w.dtype_bytes
    per_token = 2 * (4 * s.hidden + d * s.hidden) + d * (5 * s.hidden + 4 * s.kv_dim + 4 * s.intermediate)
    if w.eager_attention:
        per_token += 2 * d * s.heads * context
    if w.lora is not None and w.lora.dropout:
        fan_ins = [fan_in for fan_in, _, _ in s.lora_targets(w.lora.modules, vision=False)]
        per_token += (d + 1) * sum(fan_ins)  # dropped-out input copy + its mask, per wrapped layer
    return float(per_token * tokens)


def vision_block_bytes(w: Workload, patches: int) -> float:
    """Activations one vision block saves, over `patches` patches: LayerNorms, qkv, the float32
    rotary copies of q and k, attention output, and the QuickGELU MLP (fc1, its sigmoid, product)."""
    e = w.shape.vision_dim
    m = int(e * w.shape.vision_mlp_ratio)
    per_patch = w.dtype_bytes * (6 * e + 3 * m) + 4 * 4 * e
    return float(per_patch * patches)


def update_activation_bytes(w: Workload) -> tuple[float, float]:
    """(decoder, vision tower) activations of one micro-batch's forward kept for the backward."""
    s = w.shape
    context = w.prompt_tokens + (w.completion_tokens if w.rollouts else 0)
    copies = 1 if w.shares_prompt_in_update else (w.generations if w.rollouts else 1)
    tokens = (
        w.micro_batch * w.prompt_tokens + w.sequences * w.completion_tokens
        if w.shares_prompt_in_update
        else w.sequences * context
    )
    layer = decoder_layer_bytes(w, tokens, context)
    if w.gradient_checkpointing:  # each layer keeps its input; one layer is recomputed at a time
        decoder = s.layers * w.dtype_bytes * s.hidden * tokens + layer
    else:
        decoder = s.layers * layer
    decoder += (4 + w.dtype_bytes) * s.hidden * tokens  # final norm
    patches = w.micro_batch * image_patches(w.max_pixels) * copies
    block = vision_block_bytes(w, patches)
    vision_trains = w.lora.vision if w.lora is not None else not w.freeze_vision
    if not vision_trains:
        vision = block  # nothing kept; one block's temporaries
    elif w.gradient_checkpointing:
        vision = s.vision_depth * w.dtype_bytes * s.vision_dim * patches + block
    else:
        vision = s.vision_depth * block
    return decoder, vision


def memory_terms(w: Workload) -> list[Term]:
    """Every term of one process's peak memory, in bytes.

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> terms = memory_terms(Workload(shape=QWEN2_VL_2B, gradient_checkpointing=True))
    >>> [(t.name, round(t.bytes / 2**30, 2)) for t in terms][:4]
    [('policy weights', 4.11), ('optimiser state', 8.23), ('reference model', 4.11), ('KV cache', 0.24)]
    """
    s, d = w.shape, w.dtype_bytes
    params, trainable = s.total_params(), trainable_params(w)
    shard_weights = w.gpus if w.zero >= 3 else 1
    shard_grads = w.gpus if w.zero >= 2 else 1
    shard_optim = w.gpus if w.zero >= 1 else 1
    optim_per_param = (8 + (4 if d < 4 else 0)) if w.zero >= 1 else 2 * d  # DeepSpeed: fp32 master
    optim_note = (
        "fp32 master + Adam moments (DeepSpeed)" if w.zero >= 1 else "AdamW moments in the weights' dtype"
    )
    reference = params * d / shard_weights if w.reference and w.lora is None else 0.0
    ref_note = "adapters off: no copy" if w.lora is not None else ("" if w.reference else "β ≡ 0: not loaded")
    terms = [
        Term("policy weights", "always", params * d / shard_weights, f"{params / 1e9:.2f} B params"),
        Term("optimiser state", "always", trainable * optim_per_param / shard_optim, optim_note),
        Term("reference model", "always", reference, ref_note),
    ]
    if w.rollouts:
        kv_per_token = 2 * s.layers * s.kv_dim * d
        kv_tokens = w.sequences * (w.prompt_tokens + w.completion_tokens)
        terms.append(Term("KV cache", "rollouts", kv_per_token * kv_tokens, f"{kv_tokens} tokens"))
        terms.append(Term("sampling logits", "rollouts", w.sequences * s.vocab * 4 * 3, "float32"))
    decoder, vision = update_activation_bytes(w)
    checkpointing = "checkpointed" if w.gradient_checkpointing else "all kept"
    patches = image_patches(w.max_pixels)
    completion = w.completion_tokens if w.rollouts else w.prompt_tokens
    terms += [
        Term("gradients", "update", trainable * d / shard_grads, f"{trainable / 1e6:.1f} M trainable"),
        Term("decoder activations", "update", decoder, checkpointing),
        Term("vision activations", "update", vision, f"{patches} patches/image, {checkpointing}"),
        Term("logits", "update", w.sequences * completion * s.vocab * (d + 8), "completions × vocab"),
    ]
    if s.tied_embeddings and w.lora is None:  # the embedding's and the LM head's gradients, then their sum
        terms.append(Term("tied-embedding grads", "update", 2 * s.vocab * s.hidden * d, "2 transient copies"))
    return terms


def peak_bytes(terms: list[Term]) -> float:
    """always + the larger of the rollout and update phases."""
    by_phase = {
        phase: sum(t.bytes for t in terms if t.phase == phase) for phase in ("always", "rollouts", "update")
    }
    return by_phase["always"] + max(by_phase["rollouts"], by_phase["update"])
