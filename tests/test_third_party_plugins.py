"""Third-party plugins installed the way users install them, into a throwaway virtual environment.

tests/fixtures/vcframe-bandnoise is an honest vocoder written against the public API only: vcframe must find it
through its entry point alone, and it must pass its own tests (the conformance kit and an end-to-end run).
tests/fixtures/vcframe-sloppy is deliberately broken: its vocoder fails exactly the conformance checks its
mistakes break, and its unloadable encoder costs one error row in 'vcframe plugins list', not the program.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def installed(plugin_venv, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("third-party")
    plugin_venv.install(FIXTURES / "vcframe-bandnoise", FIXTURES / "vcframe-sloppy", workdir=workdir)
    return plugin_venv, workdir


def test_found_through_entry_points_only_and_a_broken_one_is_one_row(installed) -> None:
    venv, workdir = installed
    assert importlib.util.find_spec("vcframe_bandnoise") is None  # not installed here, only in the venv
    listing = venv.run("-c", "from vcframe.cli import main; main(['plugins', 'list', '--format', 'json'])", cwd=workdir)
    assert listing.returncode == 0, listing.stderr
    rows = {(row["kind"], row["name"]): row for row in json.loads(listing.stdout)["plugins"]}
    bandnoise = rows[("vocoder", "bandnoise")]
    assert bandnoise["status"] == "ok" and bandnoise["distribution"] == "vcframe-bandnoise"
    assert rows[("vocoder", "sloppy")]["status"] == "ok"
    unloadable = rows[("encoder", "unloadable")]
    assert unloadable["status"] == "error" and "vcframe_sloppy_missing_dependency" in unloadable["error"]
    assert "--disable unloadable" in unloadable["hint"]
    assert [name for (_, name), row in rows.items() if row["status"] == "error"] == ["unloadable"]
    assert rows[("vocoder", "griffinlim")]["status"] == "ok"


def test_third_party_plugin_passes_its_own_tests_with_the_kit(installed) -> None:
    venv, workdir = installed
    result = venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=workdir / "vcframe-bandnoise")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "21 passed" in result.stdout  # 20 checks of a working streaming vocoder + the end-to-end run


def test_broken_plugin_fails_exactly_the_checks_it_should(installed) -> None:
    venv, workdir = installed
    code = (
        "import json\n"
        "from vcframe.errors import PluginError\n"
        "from vcframe.testing import check_component\n"
        "report = check_component('sloppy', raise_on_failure=False)\n"
        "print(json.dumps({result.check: result.status for result in report.results}))\n"
        "try:\n"
        "    check_component('unloadable')\n"
        "except PluginError as error:\n"
        "    print(error)\n"
    )
    result = venv.run("-c", code, cwd=workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    statuses = json.loads(lines[-2])
    failed = {check for check, status in statuses.items() if status == "failed"}
    assert failed == {
        "spec_module_imports_without_torch",
        "output_length",
        "reproducible_with_seed",
        "resynthesizes_known_signal",  # one fixed tone, whatever the mel says
    }
    assert {status for check, status in statuses.items() if check not in failed} == {"passed"}
    assert "unloadable' is broken: ModuleNotFoundError" in lines[-1]  # only selecting it fails
