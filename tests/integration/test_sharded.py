"""The sharded path: FSDP2 through accelerate, on CPU with 2 processes and gloo, launched with the
config `mr1 reproduce --gpus-per-run 2` generates (launch/accelerate_cmd.py; the CPU route is
training/distributed.py). Against one process: the same 20 GRPO-D steps; one optimizer step per logged
step; a checkpoint of full weights that `mr1 eval` loads; resume after SIGKILL equal to an
uninterrupted run; generation in lockstep; the reference model sharded like the policy; and SFT.

The runs start from a tiny model that answers counting questions (conftest.answering_model_dir), so
its rollouts earn reward and the steps update the weights. At lr 3e-4 the 1- and 2-process runs
sample the same tokens for all 20 steps (measured: losses within 7.5e-9, KL within 3.7e-8, weights
within 7.5e-6 after moving up to 5.4e-3). At lr 1e-3 the tiny model is chaotic: rounding differences
(the one-process update computes each prompt once for its G completions; the two-process update
sums gradients in another order) grow from step 7 on to 20 % of the weights' change by step 20.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import TINY_GRPO_OVERRIDES, TINY_SFT_OVERRIDES

from mr1cli.experiments.launch.accelerate_cmd import accelerate_config

pytestmark = pytest.mark.slow

STEPS = 20
# 4 prompts × G = 4 per step; each of 2 processes takes 2 prompts in 2 micro-batches of 1 (accumulated).
SHARDED_GRPO = (
    *TINY_GRPO_OVERRIDES,
    "reward.weights.format=0",  # the answering model writes no think block: accuracy is the reward
    "train.micro_batch=1",
    "train.learning_rate=3e-4",
    f"train.max_steps={STEPS}",
    "train.save_every=1",
)
EXACT_KEYS = ("reward/mean", "reward/accuracy", "completion/length", "kl/beta", "train/skipped")
CLOSE_KEYS = ("loss/total", "kl/mean", "train/grad_norm")
LAUNCH_TIMEOUT_S = 900  # a hang fails the test instead of stalling the suite


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {**os.environ, "MR1_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def fsdp2_config(tmp_path_factory) -> Path:
    """The accelerate config a 2-GPU run of `mr1 reproduce` is launched with (JSON is YAML)."""
    path = tmp_path_factory.mktemp("accelerate") / "fsdp2.yaml"
    path.write_text(json.dumps(accelerate_config("fsdp2", 2)))
    return path


def train_args(model: Path, out: Path, *extra: str) -> list[str]:
    command = ["train", "--method", "grpo-d", "--task", "counting", "--output", str(out)]
    return [*command, f"model.name_or_path={model}", *SHARDED_GRPO, *extra]


def two_processes(config: Path, *args: str) -> list[str]:
    launcher = Path(sys.executable).parent / "accelerate"
    return [str(launcher), "launch", "--config_file", str(config), *args]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """In its own process group, so that a kill reaches the launcher's workers too; output to `log`."""
    with log.open("w") as handle:
        return subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def finish(process: subprocess.Popen, log: Path, timeout_s: float = LAUNCH_TIMEOUT_S) -> None:
    """Wait for the process; fail on a non-zero exit or on a hang (the whole group is killed)."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"no exit after {timeout_s} s (a hang): {log.read_text()[-3000:]}")
    assert process.returncode == 0, log.read_text()[-3000:]


def run_to_end(
    command: list[str], env: dict[str, str], log: Path, timeout_s: float = LAUNCH_TIMEOUT_S
) -> None:
    finish(start(command, env, log), log, timeout_s)


def metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in rows]


@pytest.fixture(scope="module")
def runs(answering_model_dir, fsdp2_config, env, tmp_path_factory) -> dict[str, Path]:
    """The same 20 GRPO-D steps in one process and sharded over two, each run once for the module."""
    root = tmp_path_factory.mktemp("runs")
    single = [sys.executable, "-m", "mr1cli", *train_args(answering_model_dir, root / "single")]
    run_to_end(single, env, root / "single.log")
    sharded = two_processes(fsdp2_config, "-m", "mr1cli", *train_args(answering_model_dir, root / "sharded"))
    run_to_end(sharded, env, root / "sharded.log")
    return {"single": root / "single", "sharded": root / "sharded", "base": answering_model_dir}


def test_twenty_sharded_steps_match_one_process(runs):
    one, two = metrics(runs["single"]), metrics(runs["sharded"])
    assert json.loads((runs["sharded"] / "env.json").read_text())["processes"] == 2
    assert [row["step"] for row in two] == list(range(1, STEPS + 1))
    assert sum(row["train/skipped"] for row in one) <= 5  # the steps do update (measured: 0 of 20 skipped)
    for a, b in zip(one, two, strict=True):
        for key in EXACT_KEYS:
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a["step"], key)
        for key in CLOSE_KEYS:
            if a.get(key) is not None:
                assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (a["step"], key)
    base = load_file(str(runs["base"] / "model.safetensors"))
    single = load_file(str(runs["single"] / "final" / "model.safetensors"))
    sharded = load_file(str(runs["sharded"] / "final" / "model.safetensors"))
    moved = max(float((single[k] - base[k]).abs().max()) for k in base)
    apart = max(float((single[k] - sharded[k]).abs().max()) for k in base)
    assert moved > 1e-3 and apart < 1e-4, (moved, apart)  # measured: 5.4e-3 and 7.5e-6


def test_the_optimizer_steps_once_per_logged_step_with_accumulation(runs):
    """2 micro-batches per process per step; AdamW's step counter of every parameter says 20."""
    for name in ("single", "sharded"):
        state = torch.load(runs[name] / "final" / "trainer_state.pt", weights_only=True)
        counts = {float(entry["step"]) for entry in state["optimizer"]["state"].values()}
        assert counts == {float(STEPS)}, name
        assert len(metrics(runs[name])) == STEPS


def test_the_sharded_checkpoint_holds_full_weights_that_mr1_eval_loads(runs, env, tmp_path):
    base = load_file(str(runs["base"] / "model.safetensors"))
    sharded = load_file(str(runs["sharded"] / "final" / "model.safetensors"))
    assert {k: v.shape for k, v in sharded.items()} == {k: v.shape for k, v in base.items()}  # not shards
    moments = {name: moment_shapes(runs[name]) for name in ("single", "sharded")}
    assert moments["sharded"] == moments["single"]  # the optimizer state is gathered too
    out = tmp_path / "eval"
    command = [sys.executable, "-m", "mr1cli", "eval", "--checkpoint", str(runs["sharded"] / "final")]
    command += ["--task", "counting", "--limit", "8", "--output", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((out / "metrics.json").read_text())["n"] == 8


def moment_shapes(run: Path) -> list[tuple[int, ...]]:
    state = torch.load(run / "final" / "trainer_state.pt", weights_only=True)
    return sorted(tuple(entry["exp_avg"].shape) for entry in state["optimizer"]["state"].values())


def test_sharded_resume_after_sigkill_equals_the_uninterrupted_run(
    runs, answering_model_dir, fsdp2_config, env, tmp_path
):
    killed = tmp_path / "killed"
    for steps in (5, 12):  # of 20, each kill a little into the next step or its checkpoint
        resume = ["--resume"] if (killed / "config.json").exists() else []
        args = train_args(answering_model_dir, killed, *resume)
        process = start(
            two_processes(fsdp2_config, "-m", "mr1cli", *args), env, tmp_path / f"kill-{steps}.log"
        )
        wait_for_steps(process, killed, steps)
        time.sleep(0.2)
        assert process.poll() is None, "the run ended before the kill"
        os.killpg(process.pid, signal.SIGKILL)  # the launcher and both workers
        process.wait()
        for checkpoint in (killed / "checkpoints").glob("step-*"):
            assert (checkpoint / "manifest.json").is_file()
    args = train_args(answering_model_dir, killed, "--resume")
    run_to_end(two_processes(fsdp2_config, "-m", "mr1cli", *args), env, tmp_path / "resume.log")
    reference = load_file(str(runs["sharded"] / "final" / "model.safetensors"))
    resumed = load_file(str(killed / "final" / "model.safetensors"))
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    assert metrics(killed) == metrics(runs["sharded"])


def wait_for_steps(process: subprocess.Popen, run: Path, steps: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    log = run / "metrics.jsonl"
    while process.poll() is None and time.monotonic() < deadline:
        if log.is_file() and len(log.read_text().splitlines()) >= steps:
            return
        time.sleep(0.05)


def test_generation_runs_in_lockstep_and_the_reference_is_sharded(
    answering_model_dir, fsdp2_config, env, tmp_path
):
    """Process 0's completions end after 3 tokens, process 1's run to the 12-token limit; every forward
    of a sharded model is a collective, so the step finishes only if process 0 keeps decoding with
    process 1 (without that, gloo aborts on the mismatched collectives, or the processes hang)."""
    probe = Path(__file__).parent / "sharded_probe.py"
    extra = [
        *TINY_GRPO_OVERRIDES,
        "train.prompts_per_step=2",
        "rl.skip_zero_advantage_steps=false",  # the update runs whatever the rewards
    ]
    command = two_processes(fsdp2_config, str(probe), str(answering_model_dir), str(tmp_path), *extra)
    run_to_end(command, env, tmp_path / "probe.log", timeout_s=600)
    reports = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert reports[0]["lengths"] == [3.0] * 4 and reports[1]["lengths"] == [12.0] * 4
    for report in reports:
        assert report["sharded"] == "FSDP"
        assert report["metrics"]["completion/length"] == 7.5 and report["metrics"]["train/skipped"] == 0.0
        assert report["policy_held"] == pytest.approx(0.5, abs=0.01)
        assert report["reference_held"] == pytest.approx(0.5, abs=0.01)  # as `mr1 plan --fsdp` counts it


def test_sharded_sft_matches_one_process(tiny_model_dir, fsdp2_config, env, tmp_path):
    """SFT under FSDP2 (what `mr1 reproduce --gpus-per-run K` runs for SFT units): 6 steps of 16
    examples in micro-batches of 4. Measured: losses equal to 7 digits, weights within 8.7e-6 after
    moving up to 1.8e-2."""
    args = ["train", "--method", "sft", "--task", "counting", f"model.name_or_path={tiny_model_dir}"]
    args += [*TINY_SFT_OVERRIDES, "train.micro_batch=4", "train.max_steps=6", "train.eval_every=0"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_to_end([sys.executable, "-m", "mr1cli", *args, "--output", str(one)], env, tmp_path / "one.log")
    run_to_end(
        two_processes(fsdp2_config, "-m", "mr1cli", *args, "--output", str(two)), env, tmp_path / "two.log"
    )
    assert json.loads((two / "env.json").read_text())["processes"] == 2
    for a, b in zip(metrics(one), metrics(two), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), a["step"]
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    single = load_file(str(one / "final" / "model.safetensors"))
    sharded = load_file(str(two / "final" / "model.safetensors"))
    moved = max(float((single[k] - base[k]).abs().max()) for k in base)
    apart = max(float((single[k] - sharded[k]).abs().max()) for k in base)
    assert moved > 1e-3 and apart < 1e-4, (moved, apart)


def test_sharded_lora_matches_one_process(answering_model_dir, fsdp2_config, env, tmp_path):
    """LoRA under FSDP2: the reference is the policy with its adapters off, the checkpoint holds the
    full adapters. Dropout 0: with dropout the processes draw other masks than one process does.
    Measured over 4 steps: the same losses and gradient norms to 6 digits, adapters within 4.1e-8."""
    extra = ["model.lora.enabled=true", "model.lora.rank=8", "model.lora.dropout=0", "train.max_steps=4"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_to_end(
        [sys.executable, "-m", "mr1cli", *train_args(answering_model_dir, one, *extra)],
        env,
        tmp_path / "one.log",
    )
    command = two_processes(fsdp2_config, "-m", "mr1cli", *train_args(answering_model_dir, two, *extra))
    run_to_end(command, env, tmp_path / "two.log")
    for a, b in zip(metrics(one), metrics(two), strict=True):
        for key in ("loss/total", "train/grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (a["step"], key)
    single = load_file(str(one / "final" / "adapter_model.safetensors"))
    sharded = load_file(str(two / "final" / "adapter_model.safetensors"))
    assert single.keys() == sharded.keys() and all(single[k].shape == sharded[k].shape for k in single)
    assert max(float((single[k] - sharded[k]).abs().max()) for k in single) < 1e-5
