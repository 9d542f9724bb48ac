"""`mr1 reproduce --engine trl`: the engine reaches the GRPO / GRPO-D runs of the grid (SFT stays on
mr1's engine and keeps its run), their job files, the `accelerate launch` a multi-GPU worker starts,
and the SLURM jobs of `--launcher slurm --dry-run`."""

from __future__ import annotations

import json

import pytest
import yaml

from mr1cli.cli import main
from mr1cli.experiments.launch import worker
from mr1cli.experiments.specs import load_spec, plan
from mr1cli.experiments.units import grid_units


def engines_and_names(engine: str) -> dict[str, tuple[str, str]]:
    runs = plan(load_spec("exp3-same-task"), "paper", 1, engine)
    return {f"{r.method}/{r.train_task}": (r.config.train.engine, r.name) for r in runs if r.config}


def test_engine_trl_trains_the_grpo_runs_and_leaves_sft_on_mr1():
    trl, plain = engines_and_names("trl"), engines_and_names("")
    assert {key: engine for key, (engine, _) in trl.items()} == {
        "sft/counting": "mr1",
        "grpo/counting": "trl",
        "grpo-d/counting": "trl",
        "sft/geometry": "mr1",
        "grpo/geometry": "trl",
        "grpo-d/geometry": "trl",
    }
    for key, (_, name) in trl.items():
        # an SFT run is the same run with either engine flag; a GRPO run on TRL is a run of its own
        assert (name == plain[key][1]) is key.startswith("sft/")


def test_a_multi_gpu_trl_run_starts_under_accelerate_with_its_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("MR1_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    runs = [r for r in plan(load_spec("exp3-same-task"), "paper", 1, "trl") if r.method == "grpo-d"]
    unit = next(u for u in grid_units(runs, "paper") if u.config is not None)
    job = worker.write_job(unit, threads=8, gpus_per_run=4, distributed="ddp")
    assert json.loads(job.read_text())["unit"]["config"]["train"]["engine"] == "trl"
    started: list[list[str]] = []
    monkeypatch.setattr(worker.os, "execv", lambda path, argv: started.append(argv))
    worker.main([str(job)])
    (command,) = started
    config_file = command[command.index("--config_file") + 1]
    assert command[1:4] == ["-m", "accelerate.commands.launch", "--config_file"]
    assert command[-3:] == ["-m", "mr1cli.experiments.launch.worker", str(job)]
    assert yaml.safe_load(open(config_file).read())["num_processes"] == 4  # noqa: SIM115


def test_slurm_dry_run_submits_the_trl_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    monkeypatch.setenv("MR1_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")  # rich tables show whole run names, unwrapped
    argv = ["reproduce", "exp3-same-task", "--profile", "paper", "--engine", "trl", "--gpus-per-run", "2"]
    assert main([*argv, "--launcher", "slurm", "--dry-run"]) == 0
    shown = capsys.readouterr().err
    assert "--gpus-per-node=2" in shown
    plain = engines_and_names("")
    for key, (_, name) in engines_and_names("trl").items():
        jobs = [line for line in shown.splitlines() if "train + eval" in line]  # one SLURM job a line
        assert any(f" {name} " in line for line in jobs), key
        assert any(f" {plain[key][1]} " in line for line in jobs) is key.startswith("sft/")  # mr1's GRPO: not
