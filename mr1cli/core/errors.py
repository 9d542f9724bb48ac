"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class Mr1Error(Exception):
    """A problem the user can fix (bad input, bad config, missing file). Never a bug."""

    exit_code = 2


class ConfigError(Mr1Error):
    """An unknown key, a value of the wrong type, or an out-of-range hyper-parameter."""


class DataError(Mr1Error):
    """A dataset row that does not fit: names the file, the row and the field."""


class CheckpointError(Mr1Error):
    """A checkpoint that is missing, incomplete, corrupt or of another architecture."""


class TrainingHalted(Mr1Error):
    """Training stopped on purpose (non-finite loss or reward); the last good checkpoint is kept."""

    exit_code = 3
