"""The CLI's last line of defence: unexpected errors become one line and exit 1, never a traceback."""
import pytest

import dinstyle.cli.profile as profile_cmd
from dinstyle.cli import main


def test_unexpected_errors_are_one_line(monkeypatch, capsys):
    def boom(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(profile_cmd, "run", boom)
    assert main(["profile"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: ZeroDivisionError" in err and "Traceback" not in err
    monkeypatch.setenv("DINSTYLE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["profile"])


def test_os_errors_are_one_line(monkeypatch, capsys):
    def full(args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(profile_cmd, "run", full)
    assert main(["profile"]) == 1
    assert "No space left on device" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
