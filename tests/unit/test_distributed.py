"""Pieces of the multi-process path that need no second process: the lockstep stop rule, the
duplicate names of tied weights, the GPU check's file names (the 2-process tests:
tests/integration/test_sharded.py)."""

from __future__ import annotations

import doctest

import pytest
import torch

from mr1cli.bench import gpu_check
from mr1cli.models import batching
from mr1cli.training import distributed


@pytest.mark.parametrize("module", [batching, gpu_check, distributed])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_one_process_decides_alone_and_a_plain_model_is_not_in_lockstep():
    assert not batching.in_lockstep(torch.nn.Linear(2, 2))
    assert batching.all_finished(torch.tensor([True, True]), lockstep=False)
    assert not batching.all_finished(torch.tensor([True, False]), lockstep=False)


def test_a_tied_head_is_written_once():
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(4, 2)
            self.head = torch.nn.Linear(2, 4, bias=False)
            self.head.weight = self.embed.weight

    assert distributed._tied_duplicates(Tied()) == {"head.weight"}
