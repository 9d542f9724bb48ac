"""Device slicing, accelerate configs and command lines, SLURM parameters, the launch options:
everything of `--jobs`, `--gpus-per-run` and `--launcher slurm` that needs no GPU and no cluster."""

from __future__ import annotations

import doctest
import json
import shutil
import socket
from pathlib import Path

import pytest
import torch
from rich.console import Console

from mr1cli.cli import launch as cli_launch
from mr1cli.config import EXPERIMENTS_DIR
from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.experiments import reproduce
from mr1cli.experiments.launch import accelerate_cmd, base, devices, slurm, slurm_resources
from mr1cli.experiments.launch.base import LaunchOptions
from mr1cli.experiments.launch.plugins import LAUNCHERS
from mr1cli.experiments.units import Unit


@pytest.mark.parametrize("module", [devices, accelerate_cmd, slurm, slurm_resources])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_eight_gpus_in_slices_of_two_give_four_disjoint_workers():
    gpus = [str(i) for i in range(8)]
    slots = devices.make_slots(4, 2, gpus, 64)
    assert [s.env()["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0,1", "2,3", "4,5", "6,7"]
    assert {s.threads for s in slots} == {16}
    with pytest.raises(ConfigError, match="needs 10 GPUs; 8 visible"):
        devices.make_slots(5, 2, gpus, 64)


def test_two_cores_give_two_single_thread_workers(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(devices.os, "sched_getaffinity", lambda _: {0, 1})
    slots = devices.make_slots(2, 0, [], devices.cpu_budget())
    assert [s.env()["OMP_NUM_THREADS"] for s in slots] == ["1", "1"]
    assert all(s.env()["CUDA_VISIBLE_DEVICES"] == "" for s in slots)


def test_a_visible_device_list_is_sliced_as_named(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6,7")
    assert [s.gpus for s in devices.make_slots(2, 2, devices.visible_gpus(), 8)] == [("3", "5"), ("6", "7")]


def test_multi_gpu_runs_start_under_accelerate_with_a_generated_config(tmp_path):
    ddp = accelerate_cmd.accelerate_config("ddp", 2)
    assert (ddp["distributed_type"], ddp["num_processes"], ddp["num_machines"]) == ("MULTI_GPU", 2, 1)
    fsdp = accelerate_cmd.accelerate_config("fsdp2", 4, num_machines=2, machine_rank=1, main_ip="n1")
    assert fsdp["distributed_type"] == "FSDP" and fsdp["num_processes"] == 8
    assert fsdp["fsdp_config"]["fsdp_version"] == 2 and fsdp["fsdp_config"]["fsdp_reshard_after_forward"]
    assert (fsdp["machine_rank"], fsdp["main_process_ip"]) == (1, "n1")
    command = accelerate_cmd.worker_command(tmp_path / "job.json", accelerate_file=tmp_path / "acc.yaml")
    assert command[1:5] == ["-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "acc.yaml")]
    assert command[-3:] == ["-m", "mr1cli.experiments.launch.worker", str(tmp_path / "job.json")]
    with pytest.raises(ConfigError, match="did you mean 'fsdp2'"):
        accelerate_cmd.accelerate_config("fsdp", 2)
    with pytest.raises(ConfigError, match="unknown distributed mode 'zero3'"):  # no test could run it
        accelerate_cmd.accelerate_config("zero3", 2)
    assert sorted(p.name for p in (EXPERIMENTS_DIR / "accelerate").glob("*.yaml")) == [
        "1gpu.yaml",
        "8gpu.yaml",
        "fsdp2.yaml",
    ]


def test_gpus_per_run_generates_the_fsdp2_config_by_default(tmp_path, monkeypatch):
    from mr1cli.experiments.launch import worker

    unit = Unit("grpo-d/counting", "tiny", tmp_path / "run", ("counting",))
    job = worker.write_job(unit, threads=8, gpus_per_run=2, distributed=LaunchOptions().distributed)
    started = []
    monkeypatch.setattr(worker.os, "execv", lambda path, argv: started.append(argv))
    worker._under_accelerate(job, json.loads(job.read_text()), unit)
    generated = tmp_path / "run" / "launch" / f"accelerate-{unit.tag}-node0.yaml"
    config = json.loads(generated.read_text())
    assert (config["distributed_type"], config["num_processes"]) == ("FSDP", 2)
    assert started[0][3:5] == ["--config_file", str(generated)]


def test_machine_rank_comes_from_slurm():
    env = {"SLURM_NNODES": "4", "SLURM_NODEID": "3", "MASTER_ADDR": "gpu-01"}
    assert accelerate_cmd.slurm_machine(env) == (4, 3, "gpu-01")


@pytest.fixture
def slurm_profile(tmp_path, monkeypatch):
    """Profile `p`: the tiny profile with a launch.slurm section."""
    shutil.copytree(EXPERIMENTS_DIR / "profiles", tmp_path / "profiles")
    tiny = (tmp_path / "profiles" / "tiny.yaml").read_text()
    launch = "launch:\n  slurm: {gpus: 8, cpus_per_gpu: 10, time: '48:00:00', partition: a}\n"
    (tmp_path / "profiles" / "p.yaml").write_text(tiny + launch)
    monkeypatch.setenv("MR1_PROFILES_DIR", str(tmp_path / "profiles"))
    training = Unit(
        "grpo-d/counting", "p", tmp_path / "run", ("counting",), load_config(method="grpo-d", task="counting")
    )
    evaluation = Unit("base/counting", "p", tmp_path / "base", ("counting",))
    return training, evaluation


def test_slurm_resources_per_unit_kind_scale_per_gpu(slurm_profile):
    training, evaluation = slurm_profile
    flags = {"partition": "b", "account": "lab", "sbatch": "qos:high", "mem_per_gpu": "80G"}
    train = slurm.slurm_parameters(LaunchOptions(slurm=flags), training)
    assert (train["gpus_per_node"], train["cpus_per_task"], train["mem"]) == (8, 80, "640G")
    assert (train["time"], train["partition"], train["account"]) == ("48:00:00", "b", "lab")
    assert train["additional_parameters"] == {"qos": "high"}
    evaluate = slurm.slurm_parameters(LaunchOptions(slurm=flags), evaluation)
    assert (evaluate["gpus_per_node"], evaluate["cpus_per_task"], evaluate["mem"]) == (1, 10, "80G")
    assert evaluate["time"] == "4:00:00"  # the default evaluation limit
    two = LaunchOptions(gpus_per_run=2)  # --gpus-per-run over the profile's gpus
    assert slurm.sbatch_flags(slurm.slurm_parameters(two, training)).startswith(
        "--ntasks-per-node=1 --gpus-per-node=2 --cpus-per-task=20 --mem=128G --time=48:00:00"
    )
    assert slurm.slurm_parameters(two, evaluation)["gpus_per_node"] == 1
    cpu = LaunchOptions(gpus_per_run=0)
    assert "gpus_per_node" not in slurm.slurm_parameters(cpu, evaluation)
    assert slurm.slurm_parameters(cpu, training)["cpus_per_task"] == 1
    assert "mem" not in slurm.slurm_parameters(cpu, training)  # a CPU job asks no memory unless told
    fixed = LaunchOptions(slurm={"cpus": "4", "mem": "200G"})
    assert [slurm.slurm_parameters(fixed, u)["cpus_per_task"] for u in slurm_profile] == [4, 4]
    assert [slurm.slurm_parameters(fixed, u)["mem"] for u in slurm_profile] == ["200G", "200G"]
    with pytest.raises(ConfigError, match="unknown --slurm key 'partiton'"):
        slurm.slurm_parameters(LaunchOptions(slurm={"partiton": "x"}), training)
    with pytest.raises(ConfigError, match="mem_per_gpu=lots"):
        slurm.slurm_parameters(LaunchOptions(slurm={"mem_per_gpu": "lots"}), training)


def test_slurm_dry_run_shows_each_units_resources(slurm_profile):
    console = Console(record=True, width=250)
    LAUNCHERS.get("slurm")(LaunchOptions()).dry_run(list(slurm_profile), console)
    text = console.export_text()
    train_row = next(line for line in text.splitlines() if "grpo-d/counting" in line)
    eval_row = next(line for line in text.splitlines() if "base/counting" in line)
    assert "--gpus-per-node=8 --cpus-per-task=80 --mem=512G --time=48:00:00" in train_row
    assert "--gpus-per-node=1 --cpus-per-task=10 --mem=64G --time=4:00:00" in eval_row


def test_launchers_are_registered_and_unknown_ones_refused():
    assert set(LAUNCHERS.names()) == {"local", "slurm"}
    with pytest.raises(ConfigError, match="unknown launcher 'slrum'"):
        LAUNCHERS.get("slrum")


def test_launch_options_from_the_flags(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    options = cli_launch.launch_options(0, None, "ddp", False, ["cpus=4", "time=60"])
    assert options.jobs == 2 and options.slurm == {"cpus": "4", "time": "60"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        cli_launch.launch_options(1, None, "ddp", False, ["cpus"])
    with pytest.raises(ConfigError, match="--jobs must be >= 0"):
        cli_launch.launch_options(-1, None, "ddp", False, None)


def test_launch_records_and_last_step(tmp_path):
    from mr1cli.experiments.units import Unit

    unit = Unit("base/counting", "tiny", tmp_path / "base-x", ("counting",))
    base.write_record(unit, state="running", pid=1)
    base.write_record(unit, state="done")
    assert base.read_record(unit)["state"] == "done" and base.read_record(unit)["pid"] == 1
    assert base.log_of(unit) == tmp_path / "base-x" / "launch" / "eval-counting.log"
    assert base.last_step(unit) == (None, {})
    assert Path(base.record_path(unit)).name == "eval-counting.json"


def test_the_shared_base_is_built_once_in_the_parent_with_every_thread(tmp_path, monkeypatch):
    built: list[tuple[str, int]] = []
    monkeypatch.setattr(
        reproduce, "resolve_model", lambda name, cfg: built.append((name, torch.get_num_threads()))
    )
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    before = torch.get_num_threads()
    configs = [load_config(method=m, task="counting", profile="tiny") for m in ("grpo", "grpo-d", "sft")]
    units = [Unit(f"u{i}", "tiny", tmp_path / f"u{i}", ("counting",), cfg) for i, cfg in enumerate(configs)]
    units.append(Unit("base/counting", "tiny", tmp_path / "base", ("counting",)))
    reproduce.build_shared_models(units)
    assert built == [("tiny-base", 3)]
    assert torch.get_num_threads() == before


def test_single_node_runs_rendezvous_on_a_free_port_and_nodes_on_29500():
    """Two multi-GPU runs on one machine (`--jobs 2 --gpus-per-run 4`) would both bind accelerate's
    default port 29500 and the second would fail; each single-node config takes a port free now."""
    one = accelerate_cmd.accelerate_config("fsdp2", 4)["main_process_port"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", one))
        busy.listen()
        other = accelerate_cmd.accelerate_config("ddp", 4)["main_process_port"]
    assert one != 29500 and other not in (one, 29500)
    nodes = accelerate_cmd.accelerate_config("fsdp2", 8, num_machines=2, main_ip="node01")
    assert nodes["main_process_port"] == 29500  # every node must agree on it
