"""The `emnet` dispatcher: help, version, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emnet import __version__
from emnet.cli import COMMANDS, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"emnet {__version__}"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: emnet" in capsys.readouterr().out


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "invalid choice" in err


@pytest.mark.parametrize("name", COMMANDS)
def test_each_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"emnet {name}" in capsys.readouterr().out


def test_console_script_runs_as_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emnet", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"emnet {__version__}"


def test_closed_pipe_is_not_a_traceback() -> None:
    # `emnet ... | head -1` after head has exited: stdout is a pipe with no reader left.
    script = (
        "import os, sys\n"
        "r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
        "from emnet.cli import main\n"
        "sys.exit(main(['shapes', '1x28x28 conv20k5 pool2 conv50k5 pool2 flatten fc500 fc10']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
