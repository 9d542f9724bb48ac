"""Drawing a large synthetic set says how far it is: every tenth, with its rate and the time left."""

import logging
from pathlib import Path

from mr1cli.data import synthetic
from mr1cli.data.sources import load_split


def test_drawing_a_large_set_logs_its_progress_every_tenth(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(synthetic, "PROGRESS_FROM", 20)
    with caplog.at_level(logging.INFO, logger="mr1cli.data.synthetic"):
        load_split("synthetic:counting-warmup-19", task="counting", cache_dir=tmp_path)  # under the threshold
        load_split("synthetic:counting-warmup-20", task="counting", cache_dir=tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "mr1cli.data.synthetic"]
    assert [line.split(",")[0] for line in lines] == [
        f"drawing synthetic:counting-warmup-20: {k}/20 ({5 * k} %)" for k in range(2, 21, 2)
    ]
    assert lines[-1].endswith("examples/s, 0:00 left")
