"""What the CLI tests share: the dummy components' flags, and the check that a refusal is one line and exit 2."""

from __future__ import annotations

from typing import Any

#: ``vcframe run`` flags selecting the dummy components of vcframe.testing (fast, no weights).
DUMMIES = ["--encoder", "test-tone", "--synthesizer", "test-constant", "--vocoder", "test-sine"]


def one_line_error(result: Any, *needles: str) -> str:
    """The refusal of ``result`` (a CliRunner result): exit 2, one ``error:`` line on stderr holding every needle,
    no traceback and not the "unexpected ... please report it" of a crash. Returns the line."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "unexpected" not in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
