"""``vcframe plugins new`` (alias ``vcframe plugin new``): the generated packages install with ``pip install -e``
and pass their own tests (the conformance kit, discovery through the entry point, an end-to-end run)."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from vcframe._scaffold import core_requirement
from vcframe.specs import KINDS


def test_generated_packages_install_and_pass_their_own_tests(plugin_venv, vcframe_cli, tmp_path) -> None:
    out = tmp_path / "generated"
    out.mkdir()
    for kind in KINDS:
        command = "plugin" if kind == "encoder" else "plugins"  # the alias writes the same package
        result = vcframe_cli(command, "new", kind, f"kit-{kind}", "--out", out)
        assert result.exit_code == 0, result.stderr
        assert f"vcframe-kit-{kind}" in result.stderr and "pip install -e '.[test]'" in result.stderr
    packages = sorted(out.iterdir())
    assert [p.name for p in packages] == ["vcframe-kit-encoder", "vcframe-kit-synthesizer", "vcframe-kit-vocoder"]
    for package, kind in zip(packages, KINDS, strict=True):
        project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
        assert project["name"] == package.name and core_requirement() in project["dependencies"]
        entry = project["entry-points"][f"vcframe.{kind}s"]
        assert entry == {f"kit-{kind}": f"vcframe_kit_{kind}.spec:SPEC"}
        assert {"README.md", "tests"} <= {path.name for path in package.iterdir()}
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--quiet", *map(str, packages)], capture_output=True)
    assert lint.returncode == 0, lint.stdout.decode()

    plugin_venv.install(*packages, editable=True)
    result = plugin_venv.run(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", *[str(p / "tests") for p in packages], cwd=out
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # 17 checks for the encoder, 16 for the synthesizer, 20 for a streaming vocoder (the two that need a trained
    # model skipped: the template's random weights are a placeholder), plus two tests each
    assert "57 passed, 2 skipped" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["decoder", "mine"], "unknown plugin kind 'decoder'; use one of encoder, synthesizer, vocoder"),
        (["vocoder", "My Vocoder"], "plugin name 'My Vocoder' must start with a lowercase letter"),
        (["vocoder", "vcframe-mine"], "without the vcframe- prefix"),
        (["vocoder", "mine", "--out", "missing-folder"], "output folder 'missing-folder' does not exist"),
    ],
)
def test_bad_requests_are_one_line_errors(vcframe_cli, tmp_path, args, needle) -> None:
    result = vcframe_cli("plugins", "new", *args)
    assert result.exit_code == 2 and needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_an_existing_package_is_never_overwritten(vcframe_cli, tmp_path) -> None:
    assert vcframe_cli("plugins", "new", "vocoder", "mine").exit_code == 0
    (tmp_path / "vcframe-mine" / "vcframe_mine" / "model.py").write_text("# my work\n")
    again = vcframe_cli("plugins", "new", "vocoder", "mine")
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert (tmp_path / "vcframe-mine" / "vcframe_mine" / "model.py").read_text() == "# my work\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["vcframe-mine"]  # no staging folder left


def test_core_requirement_bounds() -> None:
    assert core_requirement("0.1.0") == "vcframe-core>=0.1,<0.2"
    assert core_requirement("1.4.2") == "vcframe-core>=1.4,<2"
