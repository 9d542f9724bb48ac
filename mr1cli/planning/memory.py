"""Peak GPU memory of one training process, term by term (bytes), from shapes alone.

What one GRPO step holds, per process (mr1cli/models/precision.py says why), by phase:
- always: the policy weights (float32 where they train; frozen ones in the compute dtype where
  autocast rounds them anyway, i.e. linear and convolution weights), the float32 AdamW moments, the
  reference stored like frozen weights (none with LoRA: the reference is the policy with its
  adapters switched off);
- running (bf16 compute only): autocast's bf16 copies of the trained weights that matrix products
  read, held while the model runs: in the rollouts and from the update's forward into its backward;
- rollouts: the KV cache of rollout_batch · G sequences of (prompt + completion) tokens, and the
  sampling logits;
- update: the float32 gradients; activations: what the forward keeps for the backward (decoder and
  vision tower, one recomputed layer under gradient checkpointing, the completion logits in float32
  for the log-softmax); grad sum: with tied embeddings, two transient vocabulary-sized gradients
  (the embedding's and the head's, summed) at the end of the backward, when the activations are gone.
The peak is `PEAK_RULE`. Saved activations are counted tensor by tensor for a Qwen2 decoder layer on
sdpa attention (see `decoder_layer_bytes`); the CPU test checks the update's peak against a measured
one, and the weights, gradients and moments byte for byte (tests/integration/test_plan_measured.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mr1cli.planning.shapes import ModelShape, image_patches, image_tokens

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
    zero: int = 0  # 0: one GPU or DDP; 1-3: DeepSpeed ZeRO stage (fp32 master weights)
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
        """bf16 compute over float32 master weights (mr1's own engine; DeepSpeed runs a bf16 model)."""
        return self.dtype_bytes < MASTER_BYTES and self.zero == 0

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
    phase: str  # always, rollouts, running (rollouts and forward), update, activations, grad sum
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
    Under bf16 autocast the norms' float32 weights make float32 outputs, cast to bf16 by each of the
    five linear layers that read them, where a bf16 model shares one output per norm: 3·d·h more.

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> decoder_layer_bytes(Workload(shape=QWEN2_VL_2B), tokens=1, context=1024)
    116736.0
    """
    s, d = w.shape, w.dtype_bytes
    per_token = 2 * (4 * s.hidden + d * s.hidden) + d * (5 * s.hidden + 4 * s.kv_dim + 4 * s.intermediate)
    if w.autocast:  # autocast casts each float32 norm output per consumer (q, k, v; gate, up): 3 more
        per_token += 3 * d * s.hidden
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


def update_activation_bytes(w: Workload) -> tuple[float, float, float]:
    """(decoder, vision tower, recomputed) activations of one micro-batch's forward kept for the
    backward. With gradient checkpointing the decoder and the tower keep each layer's input, and the
    backward recomputes one decoder layer or one vision block at a time (never both: the tower's
    backward comes after the decoder's)."""
    s = w.shape
    context = w.prompt_tokens + (w.completion_tokens if w.rollouts else 0)
    copies = 1 if w.shares_prompt_in_update else (w.generations if w.rollouts else 1)
    tokens = (
        w.micro_batch * w.prompt_tokens + w.sequences * w.completion_tokens
        if w.shares_prompt_in_update
        else w.sequences * context
    )
    layer = decoder_layer_bytes(w, tokens, context)
    final_norm = (4 + w.dtype_bytes) * s.hidden * tokens
    patches = w.micro_batch * image_patches(w.max_pixels) * copies
    block = vision_block_bytes(w, patches)
    vision_trains = w.lora.vision if w.lora is not None else not w.freeze_vision
    if not w.gradient_checkpointing:
        return s.layers * layer + final_norm, s.vision_depth * block if vision_trains else block, 0.0
    decoder = s.layers * w.dtype_bytes * s.hidden * tokens + final_norm
    if not vision_trains:
        return decoder, block, layer  # the frozen tower keeps nothing; one block's temporaries
    vision = s.vision_depth * w.dtype_bytes * s.vision_dim * patches
    return decoder, vision, max(layer, block)


def frozen_params(w: Workload, whole_model: bool = False) -> tuple[int, int]:
    """(rounded, kept): frozen weights of the policy (or of a whole frozen copy) that are stored in the
    compute dtype (linear and convolution weights) and that stay float32 (embeddings, norms).

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> frozen_params(Workload(shape=QWEN2_VL_2B, freeze_vision=True))
    (665104896, 166400)
    """
    s = w.shape
    if whole_model or w.lora is not None:
        kept = s.embedding_params() + s.text_norm_params() + s.vision_norm_params()
        return s.total_params() - kept, kept
    if w.freeze_vision:
        return s.vision_params() - s.vision_norm_params(), s.vision_norm_params()
    return 0, 0


def autocast_copy_params(w: Workload) -> int:
    """Trained weights that matrix products read, of which bf16 autocast keeps a bf16 copy while the
    model runs: all but the norms and an untied embedding table (a tied one is also the LM head)."""
    if w.lora is not None:
        return trainable_params(w)  # the adapters
    s = w.shape
    unread = s.text_norm_params() + (0 if s.tied_embeddings else s.embedding_params())
    if not w.freeze_vision:
        unread += s.vision_norm_params()
    return trainable_params(w) - unread


def weight_terms(w: Workload) -> list[Term]:
    """Policy weights, optimiser state, reference and autocast's copies, on one GPU or DDP (zero = 0).

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> [(t.name, round(t.bytes / 2**30, 2)) for t in weight_terms(Workload(shape=QWEN2_VL_2B))]
    [('policy weights', 8.23), ('optimiser state', 16.46), ('reference model', 4.55), ('bf16 weight copies', 4.11)]
    """
    if w.zero >= 1:
        return _zero_weight_terms(w)
    d, trainable = w.dtype_bytes, trainable_params(w)
    rounded, kept = frozen_params(w)
    compute = "bf16" if d == 2 else "float32"
    policy = trainable * MASTER_BYTES + rounded * d + kept * MASTER_BYTES
    ref_rounded, ref_kept = frozen_params(w, whole_model=True)
    reference = ref_rounded * d + ref_kept * MASTER_BYTES if w.reference and w.lora is None else 0.0
    ref_note = "adapters off: no copy" if w.lora is not None else ("" if w.reference else "β ≡ 0: not loaded")
    policy_note = f"{(trainable + rounded + kept) / 1e9:.2f} B params: trained in float32"
    terms = [
        Term(
            "policy weights",
            "always",
            policy,
            policy_note + (f", frozen linear in {compute}" if rounded else ""),
        ),
        Term("optimiser state", "always", trainable * 2 * MASTER_BYTES, "AdamW moments, float32"),
        Term(
            "reference model",
            "always",
            reference,
            ref_note or f"linear weights in {compute}, norms and embeddings float32",
        ),
    ]
    if w.autocast:
        copies = autocast_copy_params(w) * d
        terms.append(Term("bf16 weight copies", "running", copies, "autocast's, while the model runs"))
    return terms


def _zero_weight_terms(w: Workload) -> list[Term]:
    """DeepSpeed ZeRO stage 1–3 (its own bf16 engine): 16-bit weights, float32 master + moments, sharded."""
    s, d = w.shape, w.dtype_bytes
    params, trainable = s.total_params(), trainable_params(w)
    shard_weights = w.gpus if w.zero >= 3 else 1
    optim_per_param = 8 + (4 if d < 4 else 0)
    reference = params * d / shard_weights if w.reference and w.lora is None else 0.0
    ref_note = "adapters off: no copy" if w.lora is not None else ("" if w.reference else "β ≡ 0: not loaded")
    return [
        Term("policy weights", "always", params * d / shard_weights, f"{params / 1e9:.2f} B params"),
        Term(
            "optimiser state",
            "always",
            trainable * optim_per_param / w.gpus,
            "fp32 master + Adam moments (DeepSpeed)",
        ),
        Term("reference model", "always", reference, ref_note),
    ]


def memory_terms(w: Workload) -> list[Term]:
    """Every term of one process's peak memory, in bytes.

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> terms = memory_terms(Workload(shape=QWEN2_VL_2B, gradient_checkpointing=True))
    >>> [(t.name, round(t.bytes / 2**30, 2)) for t in terms][:5]
    [('policy weights', 8.23), ('optimiser state', 16.46), ('reference model', 4.55), ('bf16 weight copies', 4.11), ('KV cache', 0.24)]
    """
    s, d = w.shape, w.dtype_bytes
    trainable = trainable_params(w)
    grad_bytes = d if w.zero >= 1 else MASTER_BYTES  # DeepSpeed reduces 16-bit gradients
    shard_grads = w.gpus if w.zero >= 2 else 1
    terms = weight_terms(w)
    if w.rollouts:
        kv_per_token = 2 * s.layers * s.kv_dim * d
        kv_tokens = w.rollout_sequences * (w.prompt_tokens + w.completion_tokens)
        terms.append(Term("KV cache", "rollouts", kv_per_token * kv_tokens, f"{kv_tokens} tokens"))
        terms.append(Term("sampling logits", "rollouts", w.rollout_sequences * s.vocab * 4 * 3, "float32"))
    decoder, vision, recomputed = update_activation_bytes(w)
    checkpointing = "inputs kept" if w.gradient_checkpointing else "all kept"
    patches = image_patches(w.max_pixels)
    completion = w.completion_tokens if w.rollouts else w.prompt_tokens
    terms += [
        Term(
            "gradients", "update", trainable * grad_bytes / shard_grads, f"{trainable / 1e6:.1f} M trainable"
        ),
        Term("decoder activations", "activations", decoder, checkpointing),
        Term("vision activations", "activations", vision, f"{patches} patches/image, {checkpointing}"),
    ]
    if recomputed:
        terms.append(Term("recomputed layer", "activations", recomputed, "one layer or block at a time"))
    terms.append(
        Term("logits", "activations", w.sequences * completion * s.vocab * (d + 8), "completions × vocab")
    )
    if s.tied_embeddings and w.lora is None:  # the embedding's and the LM head's gradients, then their sum
        terms.append(
            Term(
                "tied-embedding grads", "grad sum", 2 * s.vocab * s.hidden * grad_bytes, "2 transient copies"
            )
        )
    return terms


PEAK_RULE = "always + max(rollouts + running, update + max(activations + running, grad sum))"


def update_peak_bytes(terms: list[Term]) -> float:
    """The update's peak: the gradients, plus whichever is larger of the forward's activations (with
    autocast's weight copies) at the start of the backward and the tied embedding's two transient
    gradients at its end (the activations are freed by then)."""
    b = _by_phase(terms)
    return b["update"] + max(b["activations"] + b["running"], b["grad sum"])


def peak_bytes(terms: list[Term]) -> float:
    """always + the larger of the rollout phase and the update's peak (`PEAK_RULE`)."""
    b = _by_phase(terms)
    return b["always"] + max(b["rollouts"] + b["running"], update_peak_bytes(terms))


def _by_phase(terms: list[Term]) -> dict[str, float]:
    phases = ("always", "rollouts", "running", "update", "activations", "grad sum")
    return {phase: sum(t.bytes for t in terms if t.phase == phase) for phase in phases}
