"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class Mr1Error(Exception):
    """A problem the user can fix (bad input, bad config, missing file). Never a bug."""

    exit_code = 2
    label = "error"  # the word the CLI prints before the message


class ConfigError(Mr1Error):
    """An unknown key, a value of the wrong type, or an out-of-range hyper-parameter."""


class DataError(Mr1Error):
    """A dataset row that does not fit: names the file, the row and the field."""


class CheckpointError(Mr1Error):
    """A checkpoint that is missing, incomplete, corrupt or of another architecture."""


class TrainingHalted(Mr1Error):
    """Training stopped on purpose (non-finite loss or reward); the last good checkpoint is kept."""

    exit_code = 3


class Interrupted(Mr1Error):
    """Ctrl-C (SIGINT) or SIGTERM: the message says what was kept and how to go on."""

    label = "interrupted"

    def __init__(self, message: str, *, signal_number: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them


class TrainingInterrupted(Interrupted):
    """Ctrl-C (SIGINT) or SIGTERM during training: a checkpoint was written; the message says how to resume."""


class RunsFailed(Mr1Error):
    """Some runs of a dispatched grid failed (each named with its log); the others finished."""

    exit_code = 1
