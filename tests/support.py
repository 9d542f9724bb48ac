"""Helpers shared by the tests: the tiny GRPO/SFT configs, the two-answer toy that GRPO-D must
learn, and a miniature experiment folder."""

from __future__ import annotations

import io
import random
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from mr1cli.config import RunConfig
from mr1cli.config_loading import load_config
from mr1cli.data.example import Example, ImageRef
from mr1cli.models.batching import chat_prompt, encode_prompts
from mr1cli.models.loading import LoadedModel, load_model
from mr1cli.training import run_training
from mr1cli.training.run_dir import RunDir

# A GRPO run small enough for a test: 16 warm-up counting examples, 4 prompts × G = 4, 12 tokens.
TINY_GRPO_OVERRIDES = (
    "data.train=synthetic:counting-warmup-16",
    "data.train_limit=0",
    "data.probe_size=0",  # the tiny profile's held-out probe is tested on its own (test_learning_signals)
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
    "data.probe_size=0",
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


# ---- the two-answer toy: a working GRPO-D takes it from 50 % to over 90 % ----------------------

TOY_ANSWERS = ("1", "2")
TOY_QUESTION = "How many items are there in the image?"
TOY_IMAGES_PER_ANSWER = 8
TOY_SIDE, TOY_DISK_RADIUS = 112, 22  # the tiny profile's 112 × 112 images; disks 44 pixels across


def two_answer_toy() -> list[Example]:
    """Sixteen counting examples: one or two big white disks on black (eight of each, seeded heights),
    each asked "How many items are there in the image?". The right answer is "1" or "2" and the
    image alone decides it. The disks cover an eighth or a quarter of the picture, a difference the
    vision features carry without being trained to count; what a policy must learn is which answer
    goes with which. (With the answer decided by one word of the question instead, GRPO-D stayed at
    50 % for 50 steps; on CLEVR-like scenes of one or two small objects, even SFT on the right
    answers had not learned it after 60 steps.)"""
    rng = random.Random(0)
    examples = []
    for index in range(TOY_IMAGES_PER_ANSWER):
        for answer in TOY_ANSWERS:
            columns = (56,) if answer == "1" else (28, 84)
            picture = _disks([(x, rng.randint(30, 82)) for x in columns])
            examples.append(Example(f"toy-{index}-{answer}", "counting", TOY_QUESTION, answer, picture))
    return examples


def _disks(centres: list[tuple[int, int]]) -> ImageRef:
    image = Image.new("RGB", (TOY_SIDE, TOY_SIDE), "black")
    draw = ImageDraw.Draw(image)
    r = TOY_DISK_RADIUS
    for x, y in centres:
        draw.ellipse((x - r, y - r, x + r, y + r), fill="white")
    encoded = io.BytesIO()
    image.save(encoded, format="PNG")
    return ImageRef(data=encoded.getvalue())


def warm_up_on_both_answers(model_dir: Path, out: Path) -> Path:
    """SFT of a fresh tiny model on every toy image twice, once answered "1" and once "2": the policy
    learns the answer format and the two candidate answers but nothing about which one is right, so
    it starts at 50 % by construction (whatever its bias between the two, the toy is balanced)."""
    both = [replace(ex, id=f"{ex.id}-says-{a}", truth=a) for ex in two_answer_toy() for a in TOY_ANSWERS]
    overrides = [
        f"model.name_or_path={model_dir}",
        "data.probe_size=0",
        "train.learning_rate=3e-3",
        "train.warmup_ratio=0",  # pinned: the toy's measured seeds were warmed up without (the profile has 0.1)
        "train.max_steps=40",
        "train.prompts_per_step=16",
        "train.micro_batch=16",
        "train.eval_every=0",
        "sft.eval_wording_frac=0",  # the training wording, as the GRPO rollouts use
    ]
    cfg = load_config(method="sft", task="counting", profile="tiny", overrides=overrides)
    return run_training(cfg, output_dir=out, train_examples=both)


# GRPO-D on the toy: 16 prompts × G = 8 per step, 40 steps. An Adam step moves every weight of the tiny
# model, and the answer format breaks when the weights around the digit move too far ("<answer> 2 2 2",
# "<answer>  </answer>"); once every completion is broken, every group scores 0, the step is skipped
# and the run stays there. Four choices keep it steady: the vision tower stays frozen (its features
# already tell one disk from two), the learning rate warms up and decays to zero (the last steps
# measure a settled policy), temperature 0.7 draws the rare broken tokens less often, and lr 5e-4.
# At lr 1e-3 the outcome hung on the draws: when each prompt got its own seeded generator
# (rl.rollout_batch), seeds 0 and 2 of 8 ended at 0.00 and 0.56. At 5e-4, 22 seeds (0–20 and 42)
# all ended between 0.953 and 0.994 (the mean accuracy of the last 5 steps).
TWO_ANSWER_GRPO_D = (
    "data.probe_size=0",
    "train.max_steps=40",
    "train.learning_rate=5e-4",
    "train.lr_scheduler=cosine",
    "train.warmup_ratio=0.1",
    "train.prompts_per_step=16",
    "train.micro_batch=16",
    "train.eval_every=0",
    "model.freeze_vision=true",
    "rl.num_generations=8",
    "rl.temperature=0.7",
    "rl.max_completion_length=8",
    "reward.weights.format=0",  # the warm-up answers without a think block: accuracy is the reward
)


def learn_two_answer_toy(model_dir: Path, folder: Path, *extra: str) -> tuple[float, float]:
    """Warm `model_dir` up on both answers (folder/warm-up), then GRPO-D on the toy (folder/grpo) with
    TWO_ANSWER_GRPO_D then `extra`. Returns the accuracy reward (the task's scorer on the sampled
    rollouts) at the start, step 0's rollouts drawn before any update, and at the end, the mean of
    the last five steps."""
    warmed_up = warm_up_on_both_answers(model_dir, folder / "warm-up")
    overrides = [f"model.name_or_path={warmed_up}", *TWO_ANSWER_GRPO_D, *extra]
    cfg = load_config(method="grpo-d", task="counting", profile="tiny", overrides=overrides)
    run_training(cfg, output_dir=folder / "grpo", train_examples=two_answer_toy())
    accuracy = [row["reward/accuracy"] for row in RunDir(folder / "grpo").read_metrics()]
    return accuracy[0], sum(accuracy[-5:]) / 5


@contextmanager
def torch_threads(threads: int, *, deterministic: bool = False) -> Iterator[None]:
    """torch's intra-op threads pinned to `threads` (and deterministic algorithms on or off), restored after."""
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])


MINI_SPEC = """
name: exp3-same-task
report: exp3-same-task
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


def sigint_as_at_a_terminal() -> None:
    """`preexec_fn` for a child that the test will Ctrl-C: a shell that starts a job in the background
    (`nohup make test &`) ignores SIGINT for it, the child inherits that, and Python then installs no
    KeyboardInterrupt handler, so the signal would be lost whatever mr1 does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def three_padded_prompts(model_dir: Path) -> tuple[LoadedModel, dict]:
    """`model_dir` loaded on CPU and a processor batch of three image prompts of different lengths
    (so the shorter ones are left-padded), each with its own red rectangle."""
    loaded = load_model(str(model_dir), device="cpu")
    images = []
    for k in range(3):
        image = Image.new("RGB", (112, 112), "white")
        ImageDraw.Draw(image).rectangle([10 * k, 10, 40 + 10 * k, 60], fill="red")
        images.append(image)
    texts = ["How many items are there?", "Count the red cubes.", "How many different items are there in it?"]
    prompts = [chat_prompt(loaded.processor, text) for text in texts]
    return loaded, encode_prompts(loaded.processor, prompts, images)
