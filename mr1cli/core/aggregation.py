"""How a per-token loss term becomes one number (`rl.loss_aggregation`): the one list of the names,
read by the config check (config.py) and by the loss (grpo_loss.aggregate). No torch here, so that
a config is checked without it."""

LOSS_AGGREGATIONS = {
    "sequence_mean": "mean over each completion's tokens, then mean over completions (GRPO)",
    "token_mean": "sum over all tokens / number of tokens (longer completions weigh more)",
}


def aggregation_error(mode: str) -> str:
    """The message for an unknown aggregation.

    >>> aggregation_error("mean")
    "unknown loss aggregation 'mean' (choose from: sequence_mean, token_mean)"
    """
    return f"unknown loss aggregation '{mode}' (choose from: {', '.join(LOSS_AGGREGATIONS)})"
