"""The house rules, checked: the layers of the README's code map (each package imports only the
packages its row allows, all on floors above it in the table), no import cycle among mr1cli's
modules, no file over 400 lines, and a reporting side that never loads torch."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "mr1cli"
MAX_LINES = 400


def code_map() -> list[tuple[list[str], set[str]]]:
    """The README code map's rows in order: (the paths of the row, the names it may import).

    A row reads `| `mr1cli/core/`, `mr1cli/__init__.py` | core, config | what lives there |`; a
    path's name is its last part without `/` or `.py`; "all of the above" allows every earlier row.
    """
    section = REPO.joinpath("README.md").read_text(encoding="utf-8").split("\n## Code map", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows, earlier = [], set()
    for line in section.splitlines():
        if not line.startswith("| `mr1cli/"):
            continue
        paths_cell, allowed_cell = (cell.strip() for cell in line.strip("|").split("|")[:2])
        paths = re.findall(r"`(mr1cli/[^`]*)`", paths_cell)
        allowed = (
            earlier.copy() if allowed_cell == "all of the above" else set(re.findall(r"[\w]+", allowed_cell))
        )
        allowed -= {"nothing"}
        rows.append((paths, allowed))
        earlier |= {name(path) for path in paths}
    return rows


def name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".py")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every mr1cli module `path` imports, at the top or inside a function (the true graph)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
            found |= {t if t in known else node.module for t in targets}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {target for target in found if target.split(".")[0] == "mr1cli"}


def floor_of(module_path: Path, rows: list[tuple[list[str], set[str]]]) -> int:
    """The row of the longest code-map path that holds this file."""
    relative = module_path.relative_to(REPO).as_posix()
    matches = [(len(p), i) for i, (paths, _) in enumerate(rows) for p in paths if relative.startswith(p)]
    assert matches, f"{relative} is in no row of the README's code map"
    return max(matches)[1]


def test_every_import_follows_the_code_map():
    rows, known = code_map(), modules()
    names = [{name(p) for p in paths} for paths, _ in rows]
    for i, (paths, allowed) in enumerate(rows):
        above = set().union(*names[:i])
        assert allowed <= above, (
            f"{paths} may import {allowed - above}, which is not above it in the code map"
        )
    wrong = []
    for module, path in known.items():
        floor = floor_of(path, rows)
        for target in imports(path, known):
            target_floor = floor_of(known[target], rows)
            if target_floor != floor and not names[target_floor] & rows[floor][1]:
                wrong.append(f"{module} imports {target} ({', '.join(sorted(names[target_floor]))})")
    assert not wrong, "imports the README's code map does not allow:\n" + "\n".join(wrong)


def test_no_import_cycles():
    known = modules()
    graph = {module: imports(path, known) & known.keys() for module, path in known.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_file_is_over_400_lines():
    """The package's files and the tests' (house style: aim for 300)."""
    long = {
        str(path.relative_to(REPO)): lines
        for path in [*PACKAGE.rglob("*.py"), *(REPO / "tests").rglob("*.py")]
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_reporting_never_imports_torch():
    reporting = sorted(m for m in modules() if m.split(".")[:2] == ["mr1cli", "reporting"])
    script = (
        "import importlib, json, sys\n"
        f"for module in {reporting!r}:\n    importlib.import_module(module)\n"
        "print(json.dumps([m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert len(reporting) > 10 and json.loads(done.stdout) == []
