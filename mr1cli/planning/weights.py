"""What one process holds in weights: the policy (float32 where it trains, frozen linear weights in
the compute dtype), its AdamW moments, the reference, autocast's bf16 copies, and under FSDP2 the
shards of all of them plus the units gathered while they run (mr1cli/planning/memory.py puts them
together with the activations; mr1cli/models/precision.py says why each dtype)."""

from __future__ import annotations

from mr1cli.planning.workload import MASTER_BYTES, Term, Workload


def trainable_params(w: Workload) -> int:
    """Parameters the optimiser updates: the LoRA adapters, or the model (minus a frozen vision tower).

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> from mr1cli.planning.workload import LoraShape
    >>> trainable_params(Workload(shape=QWEN2_VL_2B, lora=LoraShape(rank=64)))
    73859072
    """
    if w.lora is not None:
        targets = w.shape.lora_targets(w.lora.modules, w.lora.vision)
        return sum(w.lora.rank * (fan_in + fan_out) * copies for fan_in, fan_out, copies in targets)
    frozen = w.shape.vision_params() if w.freeze_vision else 0
    return w.shape.total_params() - frozen


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


def policy_bytes(w: Workload) -> float:
    """The whole policy as stored: float32 where it trains, frozen linear weights in the compute dtype.

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> policy_bytes(Workload(shape=QWEN2_VL_2B)) == 4 * QWEN2_VL_2B.total_params()
    True
    """
    rounded, kept = frozen_params(w)
    return trainable_params(w) * MASTER_BYTES + rounded * w.dtype_bytes + kept * MASTER_BYTES


def reference_bytes(w: Workload) -> float:
    """The reference model as stored (a frozen copy), or 0 when none is loaded (LoRA, β ≡ 0)."""
    if not w.reference or w.lora is not None:
        return 0.0
    rounded, kept = frozen_params(w, whole_model=True)
    return rounded * w.dtype_bytes + kept * MASTER_BYTES


def fsdp_unit_bytes(w: Workload) -> tuple[float, float, float]:
    """(root, decoder layer, vision block): the full weights of one FSDP2 unit of the policy, in their
    stored dtypes; accelerate wraps one unit per decoder layer and vision block, the rest is the root.

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> fsdp_unit_bytes(Workload(shape=QWEN2_VL_2B))  # full fine-tuning: all float32
    (1075873792, 187191296, 78709760)
    """
    s, full = w.shape, w.lora is None
    vision_trains = full and not w.freeze_vision
    head = 0 if s.tied_embeddings else s.embedding_params()  # an untied LM head, a linear layer
    text_root = MASTER_BYTES * (s.embedding_params() + s.hidden) + _stored(w, head, 0, full)  # + final norm
    vision_root = s.root_params() - s.embedding_params() - s.hidden - head  # patch embedding, merger
    layer_adapters, block_adapters = _adapters_per_unit(w)
    return (
        text_root + _stored(w, vision_root, 2 * s.vision_dim, vision_trains),
        _stored(w, s.decoder_layer_params(), 2 * s.hidden, full) + MASTER_BYTES * layer_adapters,
        _stored(w, s.vision_block_params(), 4 * s.vision_dim, vision_trains) + MASTER_BYTES * block_adapters,
    )


def _stored(w: Workload, params: int, norms: int, trains: bool) -> float:
    """Bytes of `params` weights: float32 if they train, else the compute dtype but `norms` float32."""
    return MASTER_BYTES * params if trains else w.dtype_bytes * (params - norms) + MASTER_BYTES * norms


def _adapters_per_unit(w: Workload) -> tuple[int, int]:
    """LoRA adapter parameters in one decoder layer and in one vision block."""
    if w.lora is None:
        return 0, 0
    text = w.shape.lora_targets(w.lora.modules, vision=False)
    tower = w.shape.lora_targets(w.lora.modules, w.lora.vision)[len(text) :]
    rank = w.lora.rank
    return sum(rank * (i + o) for i, o, _ in text), sum(rank * (i + o) for i, o, _ in tower)


def gathered_bytes(w: Workload) -> float:
    """FSDP2's transient full weights on each process: the root and two decoder layers or vision
    blocks (the one running and the one prefetched); nothing without FSDP2."""
    if not w.fsdp:
        return 0.0
    root, layer, block = fsdp_unit_bytes(w)
    return root + 2 * max(layer, block)


def weight_terms(w: Workload) -> list[Term]:
    """Policy weights, optimiser state, reference, FSDP2's gathered units and autocast's copies.

    >>> from mr1cli.planning.shapes import QWEN2_VL_2B
    >>> [(t.name, round(t.bytes / 2**30, 2)) for t in weight_terms(Workload(shape=QWEN2_VL_2B))]
    [('policy weights', 8.23), ('optimiser state', 16.46), ('reference model', 4.55), ('bf16 weight copies', 4.11)]
    >>> [(t.name, round(t.bytes / 2**30, 2)) for t in weight_terms(Workload(shape=QWEN2_VL_2B, gpus=8, fsdp=True))]
    [('policy weights', 1.03), ('optimiser state', 2.06), ('reference model', 0.57), ('gathered units', 1.35), ('bf16 weight copies', 4.11)]
    """
    d, n, trainable = w.dtype_bytes, w.shards, trainable_params(w)
    rounded, kept = frozen_params(w)
    compute = "bf16" if d == 2 else "float32"
    each = f", 1/{n} each (FSDP2)" if w.fsdp else ""
    ref_note = "adapters off: no copy" if w.lora is not None else ("" if w.reference else "β ≡ 0: not loaded")
    policy_note = f"{(trainable + rounded + kept) / 1e9:.2f} B params: trained in float32"
    terms = [
        Term(
            "policy weights",
            "always",
            policy_bytes(w) / n,
            policy_note + (f", frozen linear in {compute}" if rounded else "") + each,
        ),
        Term("optimiser state", "always", trainable * 2 * MASTER_BYTES / n, "AdamW moments, float32" + each),
        Term(
            "reference model",
            "always",
            reference_bytes(w) / n,
            ref_note or f"linear weights in {compute}, norms and embeddings float32" + each,
        ),
    ]
    if w.fsdp:
        terms.append(
            Term("gathered units", "gathered", gathered_bytes(w), "root (embedding, head) + 2 layers, whole")
        )
    if w.autocast:
        copies = autocast_copy_params(w) * d
        terms.append(Term("bf16 weight copies", "running", copies, "autocast's, while the model runs"))
    return terms
