"""The tiny base is the same everywhere: its build gives the same weights in one process or two,
whatever the caller's thread count, and evaluation gives the same answers on 1 and 2 threads."""

import pytest
from support import torch_threads

from mr1cli.config_loading import load_config
from mr1cli.data.for_config import load_examples
from mr1cli.evaluation.evaluate import evaluate_model
from mr1cli.models.loading import load_for_config
from mr1cli.zoo.base_build import launch_build
from mr1cli.zoo.builds import tiny_base_configs

pytestmark = pytest.mark.slow


def scaled_down(tiny_model_dir):
    """The tiny-base config on 48 warm-up scenes per task: three steps of 32 (two halves of 16)."""
    return tiny_base_configs(
        (f"model.name_or_path={tiny_model_dir}", "data.warmup=synthetic:{task}-warmup-48", "train.epochs=1")
    )


def answers(final, threads):
    cfg = load_config(
        method="sft",
        task="counting",
        profile="tiny",
        overrides=[
            "data.heldout=synthetic:counting-heldout-24",
            "eval.max_new_tokens=24",
            "eval.batch_size=8",
        ],
    )
    loaded = load_for_config(str(final), cfg.model, trainable=False)
    with torch_threads(threads):
        result = evaluate_model(loaded.model, loaded.processor, load_examples(cfg, "heldout"), cfg)
    return [(row["completion"], row["correct"]) for row in result.predictions]


def test_one_process_and_two_give_the_same_weights_and_answers(tiny_model_dir, tmp_path, monkeypatch):
    configs = scaled_down(tiny_model_dir)
    assert configs["counting"].train.micro_batch * 2 == configs["counting"].train.prompts_per_step
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one = launch_build(tmp_path / "one", configs, str(tiny_model_dir), processes=1)
    # The caller's threads and kernels do not reach the build (it refuses to run on other kernels).
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx512")
    two = launch_build(tmp_path / "two", configs, str(tiny_model_dir), processes=2)
    weights = (one / "model.safetensors").read_bytes()
    assert weights == (two / "model.safetensors").read_bytes()
    assert weights != (tiny_model_dir / "model.safetensors").read_bytes()  # it trained
    on_one_thread = answers(one, 1)
    assert len(on_one_thread) == 24 and all(completion for completion, _ in on_one_thread)
    assert on_one_thread == answers(one, 2) == answers(two, 2)
