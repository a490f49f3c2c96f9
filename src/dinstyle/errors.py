"""Errors users see as one line (the CLI prints ``dinstyle: <message>`` and exits non-zero, no traceback)."""


class DinstyleError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 1


class UsageError(DinstyleError):
    """Bad command-line usage (exit code 2)."""

    exit_code = 2
