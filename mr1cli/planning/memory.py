"""Peak GPU memory of one training process, term by term (bytes), from shapes alone.

What one GRPO step holds, per process (mr1cli/models/precision.py says why), by phase:
- always: the policy weights (float32 where they train; frozen ones in the compute dtype where
  autocast rounds them anyway, i.e. linear and convolution weights), the float32 AdamW moments, the
  reference stored like frozen weights (none with LoRA: the reference is the policy with its
  adapters switched off); under FSDP2 (`fsdp`) each process holds 1/N of each, the reference
  sharded like the policy (training/distributed.py), where one GPU or DDP holds all of it;
- gathered (FSDP2 only): the full weights of the units being run, in their stored dtypes: the root
  (embedding and LM head, final norm, patch embedding and merger), which accelerate keeps gathered
  through the forward and the backward, and two decoder layers or vision blocks (the one running and
  the one prefetched); held in the rollouts and through the update's forward and backward;
- running (bf16 compute only): autocast's bf16 copies of the trained weights that matrix products
  read, held while the model runs: in the rollouts and from the update's forward into its backward
  (not sharded: under FSDP2 autocast copies each gathered weight and keeps the copy);
- rollouts: the KV cache of rollout_batch · G sequences of (prompt + completion) tokens, and the
  sampling logits;
- update: the float32 gradients (1/N each under FSDP2); activations: what the forward keeps for the
  backward (decoder and vision tower, one recomputed layer under gradient checkpointing, the
  completion logits in float32 for the log-softmax); grad sum: with tied embeddings, two transient
  vocabulary-sized gradients (the embedding's and the head's, summed, unsharded under FSDP2 too) at
  the end of the backward, when the activations are gone.
The weight terms (always, gathered, running) are weights.py's. The peak is `PEAK_RULE`. Saved activations are counted tensor by tensor for a Qwen2 decoder layer on
sdpa attention (see `decoder_layer_bytes`); the CPU test checks the update's peak against a measured
one, and the weights, gradients and moments byte for byte (tests/integration/test_plan_measured.py).
"""

from __future__ import annotations

from mr1cli.planning.shapes import image_patches
from mr1cli.planning.weights import trainable_params, weight_terms
from mr1cli.planning.workload import MASTER_BYTES, Term, Workload


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


def memory_terms(w: Workload) -> list[Term]:
    """Every term of one process's peak memory, in bytes.

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> terms = memory_terms(Workload(shape=QWEN2_VL_2B, gradient_checkpointing=True))
    >>> [(t.name, round(t.bytes / 2**30, 2)) for t in terms][:5]
    [('policy weights', 8.23), ('optimiser state', 16.46), ('reference model', 4.55), ('bf16 weight copies', 4.11), ('KV cache', 0.24)]
    """
    s, d = w.shape, w.dtype_bytes
    trainable = trainable_params(w)
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
            "gradients",
            "update",
            trainable * MASTER_BYTES / w.shards,
            f"{trainable / 1e6:.1f} M trainable, float32"
            + (f", 1/{w.shards} each (FSDP2)" if w.fsdp else ""),
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
                "tied-embedding grads",
                "grad sum",
                2 * s.vocab * s.hidden * MASTER_BYTES,
                "2 transient copies",
            )
        )
    return terms


PEAK_RULE = "always + gathered + max(rollouts + running, update + max(activations + running, grad sum))"


def update_peak_bytes(terms: list[Term]) -> float:
    """The update's peak above what is always held: FSDP2's gathered units and the gradients, plus
    whichever is larger of the forward's activations (with autocast's weight copies) at the start of
    the backward and the tied embedding's two transient gradients at its end (the activations are
    freed by then, the root is still gathered)."""
    b = _by_phase(terms)
    return b["gathered"] + b["update"] + max(b["activations"] + b["running"], b["grad sum"])


def peak_bytes(terms: list[Term]) -> float:
    """always + the larger of the rollout phase and the update's peak (`PEAK_RULE`)."""
    b = _by_phase(terms)
    return b["always"] + max(b["gathered"] + b["rollouts"] + b["running"], update_peak_bytes(terms))


def _by_phase(terms: list[Term]) -> dict[str, float]:
    phases = ("always", "gathered", "rollouts", "running", "update", "activations", "grad sum")
    return {phase: sum(t.bytes for t in terms if t.phase == phase) for phase in phases}
