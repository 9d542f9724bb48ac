"""Visual counting (CLEVR-style train, SuperCLEVR-style test): the answer is an integer."""

from __future__ import annotations

import re

from mr1cli.core.answer_format import answer_span
from mr1cli.core.task import THINK_ANSWER_INSTRUCTION, SyntheticGenerator, Task, check_mode
from mr1cli.tasks.counting import scenes

# R1-V's SuperCLEVR evaluation: the first <answer> block holding only an integer, anywhere.
_R1V_ANSWER = re.compile(r"<answer>\s*(\d+)\s*</answer>")
_INTEGER = re.compile(r"[+-]?\d+")


# The R1-V releases the paper trains and tests on (paper.md, "Tasks and data").
R1V_TRAIN = "leonardPKU/clevr_cogen_a_train"
R1V_TEST = "data/superclevr/superclevr_test200_counting_problems.jsonl"


class Counting(Task):
    name = "counting"
    train_template = "{question}  Output " + THINK_ANSWER_INSTRUCTION
    eval_template = "{question} First output " + THINK_ANSWER_INSTRUCTION  # R1-V's SuperCLEVR script
    eval_max_new_tokens = 256
    synthetic = SyntheticGenerator(scenes.sample_scene, scenes.render_scene, int)
    # Paper, "β schedule": GRPO's constant β and GRPO-D's β_min/β_max for visual counting.
    in_tiny_base = True
    kl_defaults = {"constant": {"beta": 0.04}, "dynamic": {"beta_min": 0.04, "beta_max": 0.10}}
    config_defaults = {
        "*": {"data": {"train_limit": 100}},  # the paper's few-shot counting (2B: 100 samples)
        "paper": {"data": {"train": R1V_TRAIN, "test": R1V_TEST, "image_root": "data/superclevr"}},
    }
    truth_kinds = ("integer",)  # a count that is not an integer is refused at load: no count can match it

    def parse_truth(self, raw: object) -> str:
        """An int, or a string like "3" or "<answer> 3 </answer>" → "3".

        >>> Counting().parse_truth("<answer> 3 </answer>")
        '3'
        """
        if isinstance(raw, bool):
            raise ValueError(f"expected an integer count, got {raw!r}")
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        elif isinstance(raw, str):
            text = answer_span(raw) if "<answer>" in raw else raw.strip()
            if text is None or not _INTEGER.fullmatch(text):
                raise ValueError(f"expected an integer count, got {raw!r}")
            value = int(text)
        else:
            raise ValueError(f"expected an integer count, got {raw!r}")
        if value < 0:
            raise ValueError(f"a count cannot be negative, got {raw!r}")
        return str(value)

    def extract_answer(self, completion: str, mode: str) -> str | None:
        """r1v: first `<answer> N </answer>` anywhere; strict: the sole answer span, if an integer.

        >>> Counting().extract_answer("<think>1 2</think><answer> 2 </answer>", "strict")
        '2'
        """
        check_mode(mode)
        if mode == "r1v":
            match = _R1V_ANSWER.search(completion)
            return str(int(match.group(1))) if match else None
        span = answer_span(completion)
        if span is None or not _INTEGER.fullmatch(span):
            return None
        return str(int(span))

    def is_correct(self, completion: str, truth: str, mode: str) -> bool:
        answer = self.extract_answer(completion, mode)
        return answer is not None and int(answer) == int(truth)
