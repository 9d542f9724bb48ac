"""Trackers through accelerate (`train.report_to`): wandb offline and mlflow in a local file store
hold the same metrics, at the same steps, as metrics.jsonl, and the run config."""

from __future__ import annotations

import math
import struct

import pytest
from support import tiny_sft_config

from mr1cli.config_loading import load_config
from mr1cli.core.errors import ConfigError
from mr1cli.training import run_training
from mr1cli.training.run_dir import RunDir

STEPS = 3


def jsonl_metrics(run_path):
    rows = RunDir(run_path).read_metrics()
    return {key: [(row["step"], row[key]) for row in rows] for key in rows[0] if key != "step"}


def same(a, b):
    return len(a) == len(b) and all(
        sa == sb and math.isclose(va, vb, rel_tol=1e-6) for (sa, va), (sb, vb) in zip(a, b, strict=True)
    )


def wandb_records(raw: bytes):
    """Records of a .wandb transaction log (LevelDB log format: 32 KiB blocks of chunks with a
    7-byte header: crc32 u32, length u16, type u8 — full 1, first 2, middle 3, last 4), after the
    file's 7-byte ":W&B" header."""
    assert raw[:4] == b":W&B"
    block, offset, pending = 32768, 7, b""
    while offset + 7 <= len(raw):
        if block - offset % block < 7:  # a block's tail too short for a header is padding
            offset += block - offset % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[offset : offset + 7])
        chunk = raw[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            yield pending
            pending = b""


def test_mlflow_file_store_holds_the_jsonl_metrics(module_cache, tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the trackers extra (mlflow-skinny) is not installed")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    cfg = tiny_sft_config(tiny_model_dir, f"train.max_steps={STEPS}", "train.report_to=mlflow")
    run_training(cfg, output_dir=tmp_path / "run")
    client = MlflowClient((tmp_path / "run" / "mlruns").as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "mr1"]
    (mlrun,) = client.search_runs([experiment.experiment_id])
    expected = jsonl_metrics(tmp_path / "run")
    assert set(mlrun.data.metrics) == set(expected)
    for key, values in expected.items():
        history = sorted((m.step, m.value) for m in client.get_metric_history(mlrun.info.run_id, key))
        assert same(history, values), key
    assert mlrun.data.params["train.max_steps"] == str(STEPS)
    assert mlrun.data.params["method"] == "sft"


def test_wandb_offline_holds_the_jsonl_metrics(module_cache, tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the trackers extra (wandb) is not installed")
    from wandb.proto import wandb_internal_pb2

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = tiny_sft_config(tiny_model_dir, f"train.max_steps={STEPS}", "train.report_to=wandb")
    run_training(cfg, output_dir=tmp_path / "run")
    (log,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    history: dict[str, list] = {}
    config: dict[str, str] = {}
    for data in wandb_records(log.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): item.value_json for item in record.history.item}
            step = int(items.pop("_step"))
            for key, value in items.items():
                if not key.startswith("_"):
                    history.setdefault(key, []).append((step, float(value)))
        if record.WhichOneof("record_type") == "config":
            config.update({item.key: item.value_json for item in record.config.update})
    expected = jsonl_metrics(tmp_path / "run")
    assert set(history) == set(expected)
    for key, values in expected.items():
        assert same(history[key], values), key
    assert config["train.max_steps"] == str(STEPS)


def test_unknown_tracker_and_old_key_are_one_line_errors(tiny_model_dir):
    with pytest.raises(ConfigError, match="did you mean 'wandb'"):
        run_training(tiny_sft_config(tiny_model_dir, "train.report_to=[wandbb]"))
    with pytest.raises(ConfigError, match=r"train\.report_to"):
        load_config(method="sft", task="counting", overrides=["train.tensorboard=true"])
