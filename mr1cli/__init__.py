"""mr1: reproduce and extend OThink-MR1 (GRPO / GRPO-D for vision-language models)."""

__version__ = "0.1.0"
