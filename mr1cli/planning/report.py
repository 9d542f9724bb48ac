"""The plan as rich renderables (the CLI prints them) and as a plain dict (json, tests)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from mr1cli.planning.for_config import Plan
from mr1cli.planning.gpus import GIB
from mr1cli.planning.memory import PEAK_RULE


def _gib(value: float) -> str:
    return f"{value / GIB:.2f}"


def plan_renderable(plan: Plan, title: str) -> Group:
    w = plan.workload
    table = Table(title=title, title_justify="left")
    for column, justify in (("term", "left"), ("phase", "left"), ("GiB", "right"), ("note", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for term in plan.terms:
        table.add_row(term.name, term.phase, _gib(term.bytes), term.note)
    table.add_row("peak", "", _gib(plan.peak_bytes), PEAK_RULE, style="bold")
    table.add_row(
        "budget", "", _gib(plan.budget_bytes), f"90 % of {plan.gpu.memory_gib:g} GiB ({plan.gpu.label})"
    )
    verdict = (
        Text(f"fits: {_gib(plan.peak_bytes)} of {_gib(plan.budget_bytes)} GiB", style="green")
        if plan.fits
        else Text(f"does not fit: {_gib(plan.peak_bytes)} > {_gib(plan.budget_bytes)} GiB", style="red")
    )
    lines: list[Any] = [table, verdict]
    for fix in plan.fixes:
        kind = "changes the experiment" if fix.changes_result else "same result"
        lines.append(Text(f"  fits with {' + '.join(fix.settings)} → {_gib(fix.peak_bytes)} GiB ({kind})"))
    if not plan.fits and not plan.fixes:
        lines.append(Text("  no combination of the knobs fits: use more or larger GPUs"))
    t = plan.time
    lines.append(
        Text(
            f"time per step ≈ {t.total_s:.1f} s (generation {t.generation_s:.1f} s, reference {t.reference_s:.1f} s, "
            f"update {t.update_s:.1f} s) on {w.gpus} × {plan.gpu.label}; planning estimate, ±50 %"
        )
    )
    lines += [Text(f"note: {note}", style="yellow") for note in plan.notes]
    return Group(*lines)


def plan_dict(plan: Plan) -> dict[str, Any]:
    return {
        "gpu": plan.gpu.label,
        "gpus": plan.workload.gpus,
        "fsdp": plan.workload.fsdp,
        "terms_gib": {t.name: round(t.bytes / GIB, 3) for t in plan.terms},
        "peak_gib": round(plan.peak_bytes / GIB, 3),
        "budget_gib": round(plan.budget_bytes / GIB, 3),
        "fits": plan.fits,
        "fixes": [list(f.settings) for f in plan.fixes],
        "step_seconds": round(plan.time.total_s, 2),
        "notes": plan.notes,
    }
