from __future__ import annotations

import subprocess
import sys

import pytest

from tests._fake_dist import GOOD_VOCODER, GOOD_VOCODER_MODEL, install_fake_distribution
from vcframe.discovery import Registry
from vcframe.errors import PluginError
from vcframe.specs import API_VERSION


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    yield folder
    sys.path[:] = [p for p in sys.path if p != str(folder)]
    for name in [m for m in sys.modules if m.startswith("thirdparty")]:
        del sys.modules[name]


def _vocoder(site, distribution, name, module, api=API_VERSION):
    install_fake_distribution(
        site,
        distribution,
        {
            module: GOOD_VOCODER.format(name=name, api=api, module=module),
            f"{module}_model": GOOD_VOCODER_MODEL.format(module=module),
        },
        {"vcframe.vocoders": {name: f"{module}:SPEC"}},
    )


def test_installed_third_party_plugin_is_found(site) -> None:
    _vocoder(site, "thirdparty-one", "flat", "thirdparty_one")
    registry = Registry.from_entry_points()
    row = registry.row("vocoder", "flat")
    assert row.ok and row.distribution == "thirdparty-one" and row.version == "0.1.0"
    assert registry.get("vocoder", "flat").summary == "third-party test vocoder"


def test_broken_plugin_is_one_error_row(site) -> None:
    install_fake_distribution(
        site,
        "thirdparty-broken",
        {"thirdparty_broken": "raise RuntimeError('boom')"},
        {"vcframe.vocoders": {"broken": "thirdparty_broken:SPEC"}},
    )
    install_fake_distribution(
        site,
        "thirdparty-notspec",
        {"thirdparty_notspec": "SPEC = 42"},
        {"vcframe.encoders": {"notspec": "thirdparty_notspec:SPEC"}},
    )
    registry = Registry.from_entry_points()
    broken = registry.row("vocoder", "broken")
    assert broken.status == "error" and "RuntimeError: boom" in (broken.error or "")
    assert "--disable broken" in (broken.hint or "")
    assert "not a vcframe ComponentSpec" in (registry.row("encoder", "notspec").error or "")
    assert registry.row("vocoder", "griffinlim").ok  # the others still load
    with pytest.raises(PluginError, match="is broken: RuntimeError: boom"):
        registry.get("vocoder", "broken")


def test_other_major_api_is_refused_with_version_hint(site) -> None:
    _vocoder(site, "thirdparty-future", "future", "thirdparty_future", api="9.0")
    row = Registry.from_entry_points().row("vocoder", "future")
    assert row.status == "error" and "API 9.x" in (row.error or "")


def test_duplicates_are_reported_and_selectable(site) -> None:
    _vocoder(site, "thirdparty-a", "twin", "thirdparty_a")
    _vocoder(site, "thirdparty-b", "twin", "thirdparty_b")
    registry = Registry.from_entry_points()
    assert [r.distribution for r in registry.duplicates()[("vocoder", "twin")]] == ["thirdparty-a", "thirdparty-b"]
    with pytest.raises(PluginError, match="thirdparty-a:twin, thirdparty-b:twin"):
        registry.get("vocoder", "twin")
    assert registry.get("vocoder", "thirdparty-b:twin").factory == "thirdparty_b_model:Vocoder"


def test_disable_by_argument_and_environment(site, monkeypatch) -> None:
    install_fake_distribution(
        site,
        "thirdparty-broken",
        {"thirdparty_broken": "raise RuntimeError('boom')"},
        {"vcframe.vocoders": {"broken": "thirdparty_broken:SPEC"}},
    )
    assert Registry.from_entry_points(["broken"]).row("vocoder", "broken").status == "disabled"
    assert "thirdparty_broken" not in sys.modules  # a disabled plugin is never imported
    monkeypatch.setenv("VCFRAME_DISABLE_PLUGINS", "thirdparty-broken:broken, other")
    registry = Registry.from_entry_points()
    assert registry.row("vocoder", "broken").disabled
    with pytest.raises(PluginError, match="disabled"):
        registry.get("vocoder", "broken")


def test_unknown_plugin_lists_available() -> None:
    with pytest.raises(PluginError, match=r"unknown vocoder 'nope' \(available: .*griffinlim"):
        Registry.from_entry_points().get("vocoder", "nope")


def test_listing_plugins_imports_no_torch_and_no_model_code() -> None:
    code = (
        "import sys, json\n"
        "from vcframe.cli import main\n"
        "try:\n    main(['plugins', 'list', '--format', 'json'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m.endswith('.model'))\n"
        "print('HEAVY', json.dumps(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_the_registry_and_the_disable_check_scan_the_installed_distributions_once(site, monkeypatch) -> None:
    """Each ``importlib.metadata.entry_points`` call reads every distribution's metadata (cold start, issue 26)."""
    from importlib import metadata

    from vcframe.discovery import unknown_plugin_names

    calls: list[object] = []
    real = metadata.entry_points

    def counted(**selection: str) -> metadata.EntryPoints:
        calls.append(selection)
        return real(**selection)

    _vocoder(site, "thirdparty-one", "flat", "thirdparty_one")
    monkeypatch.setattr(metadata, "entry_points", counted)
    registry = Registry.from_entry_points()
    assert registry.row("vocoder", "flat").ok and registry.of_kind("encoder") and registry.of_kind("synthesizer")
    assert len(calls) == 1
    assert unknown_plugin_names(["flat", "thirdparty-one:flat", "no-such-plugin"]) == ["no-such-plugin"]
    assert len(calls) == 2
