"""Helpers shared by the tests: the tiny GRPO/SFT configs and a miniature experiment folder."""

from __future__ import annotations

from pathlib import Path

from mr1cli.config import RunConfig
from mr1cli.config_loading import load_config

# A GRPO run small enough for a test: 16 warm-up counting examples, 4 prompts × G = 4, 12 tokens.
TINY_GRPO_OVERRIDES = (
    "data.train=synthetic:counting-warmup-16",
    "data.train_limit=0",
    "train.prompts_per_step=4",
    "train.micro_batch=2",
    "rl.num_generations=4",
    "rl.max_completion_length=12",
    "train.learning_rate=1e-3",
)

TINY_SFT_OVERRIDES = (
    "data.train=synthetic:counting-warmup-64",
    "data.test=synthetic:counting-warmup-64",
    "data.train_limit=0",
    "train.learning_rate=3e-3",
    "train.prompts_per_step=16",
    "train.micro_batch=8",
    "sft.eval_wording_frac=1.0",
)


def tiny_grpo_config(
    model_dir: Path, *extra: str, method: str = "grpo-d", task: str = "counting"
) -> RunConfig:
    """The tiny profile's GRPO config on a test model, with TINY_GRPO_OVERRIDES then `extra`."""
    overrides = [f"model.name_or_path={model_dir}", *TINY_GRPO_OVERRIDES, *extra]
    return load_config(method=method, task=task, profile="tiny", overrides=overrides)


def tiny_sft_config(model_dir: Path, *extra: str) -> RunConfig:
    overrides = [f"model.name_or_path={model_dir}", *TINY_SFT_OVERRIDES, *extra]
    return load_config(method="sft", task="counting", profile="tiny", overrides=overrides)


MINI_SPEC = """
name: exp3-same-task
table: same-task
figures: [table1_same_task]
seeds: {mini: 1}
grids:
  - name: same-task
    methods: [sft, grpo-d]
    tasks: [counting]
    evaluate_on: same
"""


def write_mini_experiment(folder: Path, model_dir: Path, *, train: str) -> Path:
    """A specs folder holding `exp3-same-task` cut to one task and two methods, and a `mini`
    profile on the test model; `train` is the profile's train section (YAML flow mapping body)."""
    specs = folder / "specs"
    (specs / "profiles").mkdir(parents=True)
    (specs / "exp3-same-task.yaml").write_text(MINI_SPEC)
    (specs / "profiles" / "mini.yaml").write_text(
        "base:\n"
        f"  model: {{name_or_path: {model_dir}, max_pixels: 12544}}\n"
        f"  train: {{{train}}}\n"
        "  rl: {num_generations: 2, max_completion_length: 8}\n"
        "  eval: {max_new_tokens: 8, batch_size: 8}\n"
        "by_task:\n  counting:\n    data: {train: synthetic:counting-warmup-8, test: synthetic:counting-test-8}\n"
    )
    return specs


def mini_workspace(folder: Path, specs: Path, env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A fresh working folder for `mr1 reproduce` subprocesses on the mini specs (own runs folder)."""
    folder.mkdir()
    return folder, {
        **env,
        "MR1_EXPERIMENTS_DIR": str(specs),
        "MR1_PROFILES_DIR": str(specs / "profiles"),
        "MR1_RUNS": str(folder / "runs"),
    }


def same_tables(a: Path, b: Path, experiment: str = "exp3-same-task") -> None:
    """The records and tables two reproduce folders wrote are byte-identical."""
    for name in ("records.jsonl", "table.csv", "table.md"):
        left = (a / "results" / experiment / name).read_bytes()
        assert left == (b / "results" / experiment / name).read_bytes(), name
