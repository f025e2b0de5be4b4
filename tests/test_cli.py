"""The `r1video` console script."""

import pytest

from r1video.cli import COMMANDS, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_subcommand_fails_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_tiny_builds_saves_reloads_and_generates(tmp_path, capsys):
    """The console entry point in this interpreter (a fresh one runs `python -m r1video tiny` in
    tests/smoke_runs.py, which the SIGKILL-resume test uses)."""
    assert main(["tiny", "--out", str(tmp_path / "model"), "--frames", "4"]) == 0
    assert "generated a batch of 2" in capsys.readouterr().out
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert (tmp_path / "model" / "processor_config.json").exists()
