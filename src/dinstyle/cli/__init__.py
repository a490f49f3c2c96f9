"""`dinstyle` command line: a thin layer that parses, calls the API and prints.

Each command lives in its own module exposing ``register(subparsers)``, which adds a parser with
``set_defaults(func=run)``; ``run(args) -> int`` returns the exit code.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from ..errors import DinstyleError
from ..io.atomic import sigterm_as_interrupt
from ..version import __version__

# Module names under dinstyle.cli ('-' becomes '_'), in help order.
COMMANDS = ["stylize", "encode-style", "styles", "info", "profile", "eval", "video", "dataset", "train", "check-data",
            "export", "serve"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the whole usage)
        raise SystemExit(_fail(f"{message} (see '{self.prog} --help')", 2))


def _fail(message: str, code: int) -> int:
    print(f"dinstyle: error: {message}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dinstyle", description="Fast arbitrary style transfer with Dynamic Instance Normalization.")
    parser.add_argument("--version", action="version", version=f"dinstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f".{name.replace('-', '_')}", __name__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    warnings.showwarning = lambda msg, *a, **k: print(f"dinstyle: warning: {msg}", file=sys.stderr)
    try:
        with sigterm_as_interrupt():  # every command cleans up on SIGTERM as on Ctrl-C
            return int(args.func(args) or 0)
    except DinstyleError as e:
        return _fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except OSError as e:  # disk full, permissions, ...: the user's environment, not a bug
        return _fail(_first_line(e), 1)
    except Exception as e:  # out of memory, or a bug: one line for users, the traceback on request
        if _is_oom(e):
            return _fail(f"out of memory ({_first_line(e)}); try a smaller --max-size or --tile", 1)
        if os.environ.get("DINSTYLE_DEBUG"):
            raise
        return _fail(f"internal error: {type(e).__name__}: {_first_line(e)} (set DINSTYLE_DEBUG=1 for the traceback)", 1)


def run() -> None:
    """The ``dinstyle`` command (and ``python -m dinstyle``): ``main``, then exit with its code. After an interrupt
    (Ctrl-C, SIGTERM: 130) every file is already cleaned up and the error printed, so the process ends at once,
    without the interpreter's teardown: there, something an interrupted job leaves behind (cause not found;
    FFmpeg's threads are suspected) crashed the process with SIGSEGV in about 1 in 16 interrupted
    ``dinstyle video`` tests on a loaded machine, and the exit code said "crash" instead of 130. ``main`` itself stays callable in-process."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0][:200]


def _is_oom(e: BaseException) -> bool:
    """``runtime.runner.is_oom``, the one test, imported only when an error needs it (the CLI starts without torch)."""
    from ..runtime.runner import is_oom

    return is_oom(e)


if __name__ == "__main__":
    sys.exit(main())
