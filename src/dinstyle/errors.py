"""Errors users see as one line (the CLI prints ``dinstyle: <message>`` and exits non-zero, no traceback)."""


class DinstyleError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 1


class UsageError(DinstyleError):
    """Bad command-line usage (exit code 2)."""

    exit_code = 2


class Cancelled(DinstyleError):
    """The caller gave up on a run (the server's client went away, a time limit passed); nothing is written."""

    exit_code = 130


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's first non-blank message line for a one-line error, at most ``limit`` characters.

    Messages can be empty (``torch.load`` of an empty file raises a bare EOFError) or start with a blank
    line: then the exception's type name, so an explanation never turns into an IndexError of its own."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__
