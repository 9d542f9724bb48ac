"""Exp2, cross-task generalization (paper figure 7): base, SFT, GRPO and GRPO-D trained on one task
and tested on another. Its table gives the paper's inferred accuracies and printed relative changes,
its claims that SFT collapses across tasks while GRPO-D gains, its figure the paper's figure 7."""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure

from mr1cli.reporting.figure_kit import LABELS, Inputs
from mr1cli.reporting.paper_figures import method_bars
from mr1cli.reporting.records import PAPER_MODEL, paper_number
from mr1cli.reporting.report import Paper, Report, Row
from mr1cli.reporting.verdicts import SIGNS, Claim, relative_text
from mr1cli.tasks import TASKS


def _direction(row: Row, figure7: Paper) -> str:
    """Cross-task key "<train>-><test>"; the base row (no training task) takes the first direction
    the paper gives into its test task (the untrained model's accuracy is the same in each)."""
    if row["train_task"]:
        return f"{row['train_task']}->{row['eval_task']}"
    into = [key for key in (figure7.get("inferred") or {}) if key.endswith(f"->{row['eval_task']}")]
    return into[0] if into else ""


def paper_columns(row: Row, paper: Paper) -> dict[str, float]:
    """Figure 7's inferred accuracy for the row's direction and method, and its printed changes."""
    figure7 = (paper.get("exp2-cross-task") or {}).get(PAPER_MODEL) or {}
    key, method = _direction(row, figure7), row["method"]
    return {
        "paper_accuracy": paper_number(figure7, "inferred", key, method),
        "vs_base": paper_number(figure7, "relative", key, f"{method}_vs_base"),
        "grpo_d_vs_this": paper_number(figure7, "relative", key, f"grpo-d_vs_{method}"),
    }


def claims(records: pd.DataFrame, paper: Paper) -> list[Claim]:
    """Exp2 (figure 7): SFT collapses across tasks (counting → geometry −77.77 %; geometry → counting
    "≈ 0") while GRPO-D gains over the base model and beats SFT."""
    figure7, claims = (paper.get("exp2-cross-task") or {}).get(PAPER_MODEL) or {}, []
    trained = records[records["method"] != "base"]
    for train, test in dict.fromkeys(zip(trained["train_task"], trained["eval_task"], strict=True)):
        key = f"{train}->{test}"
        side = {m: {"method": m, "train_task": train, "eval_task": test} for m in LABELS}
        side["base"] = {"method": "base", "eval_task": test}
        printed = (figure7.get("relative") or {}).get(key) or {}
        for new, reference in (("sft", "base"), ("grpo-d", "base"), ("grpo-d", "sft")):
            name, relative = f"{new}_vs_{reference}", paper_number(printed, f"{new}_vs_{reference}")
            accuracies = [paper_number(figure7, "inferred", key, m) for m in (new, reference)]
            guess = "" if math.isnan(sum(accuracies)) else " (≈ {:.2f} vs {:.2f})".format(*accuracies)
            if name in printed and printed[name] is None:  # the text says only "≈ 0"
                expected, paper_text = 0, "≈ 0 (text)"
            else:
                expected = None if math.isnan(relative) else int(math.copysign(1, relative))
                paper_text = relative_text(relative, guess)
            text = f"{LABELS[new]} {SIGNS[expected]} {LABELS[reference]} across tasks: {train} → {test}"
            claims.append(Claim(text, paper_text, side[new], side[reference], expected))
    return claims


def fig7_cross_task(inputs: Inputs) -> Figure | None:
    """Paper figure 7: trained on one task, tested on another (one group per direction); base, SFT, GRPO
    and GRPO-D."""
    if inputs.table is None:
        return None
    trained = inputs.table[inputs.table["method"] != "base"]
    order = {task: i for i, task in enumerate(TASKS.names())}
    pairs = sorted(
        set(zip(trained["train_task"], trained["eval_task"], strict=True)),
        key=lambda pair: (order.get(pair[0], len(order)), order.get(pair[1], len(order)), pair),
    )
    groups = [(f"trained on {train} → tested on {test}", train, test) for train, test in pairs]
    title = f"Figure 7 — cross-task generalization — {inputs.ours} vs paper"
    return method_bars(inputs, groups, title, "paper (Qwen2-VL-2B; inferred from fig. 7 text)")


REPORT = Report(
    name="exp2-cross-task",
    title="Exp2 — cross-task: train on one task, test on the other (paper figure 7)",
    paper_section="exp2-cross-task",
    paper_columns=paper_columns,
    claims=claims,
    figures={"fig7_cross_task": fig7_cross_task},
)
