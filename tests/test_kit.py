"""The conformance kit: it passes honest components, and each check catches the defect it is about."""

from __future__ import annotations

import importlib
import sys
from textwrap import dedent

import pytest
import soundfile

from tests import _kit_sabotage as sabotage
from vcframe.discovery import plugin_manager
from vcframe.testing import (
    CHECK_NAMES,
    DUMMY_SPECS,
    SINE_VOCODER,
    ConformanceError,
    check_component,
    iter_checks,
    parametrize_with_checks,
)
from vcframe.testing.checks import _parent_of_torch


@parametrize_with_checks(list(DUMMY_SPECS))
def test_dummy_components_conform(check) -> None:
    check()


def failed(component, **options) -> set[str]:
    report = check_component(component, raise_on_failure=False, **options)
    return {result.check for result in report.results if result.status == "failed"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # a short output fails the length rule and no longer matches the (correct) stream
        (sabotage.WrongLengthVocoder.spec, {"output_length", "streaming_matches_vocode"}),
        (sabotage.SeedIgnoringSynthesizer.spec, {"reproducible_with_seed"}),
        (sabotage.MutatingVocoder.spec, {"inputs_not_mutated"}),
        (sabotage.LeakyBatchEncoder.spec, {"batched_equals_item_by_item"}),
        (sabotage.NanSynthesizer.spec, {"output_values_finite"}),
        (sabotage.UncheckedEncoder.spec, {"too_short_input_handled"}),
        (sabotage.UncheckedVocoder.spec, {"empty_input_raises_value_error"}),
        (sabotage.DriftingStreamVocoder.spec, {"streaming_matches_vocode"}),
        (sabotage.GappyStreamVocoder.spec, {"streaming_matches_vocode"}),
        (sabotage.LOOSE_CONFIG, {"config_forbids_unknown_fields"}),
        (sabotage.UNDOCUMENTED_CONFIG, {"config_exports_json_schema"}),
        (sabotage.REQUIRED_OPTION, {"config_builds_with_defaults"}),
        # what outputs mean
        (sabotage.LoudSilenceVocoder.spec, {"silent_mel_gives_near_silence"}),
        (sabotage.NoDeemphasisVocoder.spec, {"resynthesizes_known_signal"}),
        (sabotage.WrongFmaxVocoder.spec, {"resynthesizes_known_signal"}),
        (sabotage.LengthOnlyEncoder.spec, {"same_signal_embeds_closer"}),
        # one failure, the rest skipped
        (sabotage.UnbuildableVocoder.spec, {"builds_tiny_instance_offline"}),
    ],
    ids=lambda value: value.name if hasattr(value, "name") else None,
)
def test_each_defect_fails_exactly_its_checks(spec, expected) -> None:
    assert failed(spec) == expected


def test_a_component_that_cannot_be_built_fails_once_and_skips_the_rest() -> None:
    report = check_component(sabotage.UnbuildableVocoder.spec, raise_on_failure=False)
    statuses = {result.check: result.status for result in report.results}
    assert [result.check for result in report.failures] == ["builds_tiny_instance_offline"]
    assert "weights.safetensors not found" in report.failures[0].detail
    needing_the_instance = ["output_length", "batched_equals_item_by_item", "output_on_requested_device"]
    assert {statuses[name] for name in needing_the_instance} == {"skipped"}
    skipped = next(result for result in report.results if result.check == "output_length")
    assert skipped.detail == (
        "not run: vocoder 'unbuildable' could not be built (FileNotFoundError: weights.safetensors not found)"
    )
    assert statuses["config_forbids_unknown_fields"] == "passed"  # checks that need no instance still run
    # under pytest each check is a test: the first to build fails, the next ones skip
    checks = {check.name: check for check in iter_checks(sabotage.UnbuildableVocoder.spec)}
    with pytest.raises(FileNotFoundError):
        checks["output_length"].run()
    with pytest.raises(pytest.skip.Exception, match="not run: vocoder 'unbuildable' could not be built"):
        checks["builds_tiny_instance_offline"]()


def test_an_invalid_test_config_fails_once() -> None:
    spec = sabotage.config_variant(sabotage.SineVocoderConfig, {"amplitude": 7})
    report = check_component(spec, raise_on_failure=False)
    assert [(result.check, result.detail) for result in report.failures] == [
        ("spec_is_valid", "test_config does not validate: Input should be less than or equal to 1")
    ]
    assert {result.status for result in report.results if result.check.startswith("output_")} == {"skipped"}


def test_placeholders_skip_the_checks_only_a_working_model_passes() -> None:
    """The sine dummy declares test_instance='placeholder': it keeps neither spectrum nor level, and says so."""
    report = check_component(SINE_VOCODER, raise_on_failure=False)
    meaning = {
        r.check: r for r in report.results if r.check in ("silent_mel_gives_near_silence", "resynthesizes_known_signal")
    }
    assert {r.status for r in meaning.values()} == {"skipped"} and report.ok
    assert "test instance is a placeholder (spec.test_instance)" in meaning["resynthesizes_known_signal"].detail
    assert failed(SINE_VOCODER, test_instance="working") == {"resynthesizes_known_signal"}
    with pytest.raises(ValueError, match="test_instance must be 'working' or 'placeholder', got 'trained'"):
        check_component(SINE_VOCODER, test_instance="trained")


def test_a_download_while_building_fails_the_offline_build() -> None:
    check = next(c for c in iter_checks(sabotage.DownloadingVocoder.spec) if c.name == "builds_tiny_instance_offline")
    with pytest.raises(OSError, match="network access to .*192.0.2.1.* during a conformance check"):
        check.run()


def test_spec_module_importing_torch_is_named_with_the_culprit(tmp_path, monkeypatch) -> None:
    package = tmp_path / "kit_torchy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("import torch\n")
    (package / "spec.py").write_text(
        dedent(
            """
            import kit_torchy.helpers
            from vcframe.testing.dummy_specs import SINE_VOCODER
            SPEC = SINE_VOCODER.model_copy(update={"factory": "kit_torchy.model:Vocoder"})
            """
        )
    )
    (package / "model.py").write_text(
        "from vcframe.testing._dummy_models import SineVocoder\nclass Vocoder(SineVocoder):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        spec = importlib.import_module("kit_torchy.spec").SPEC
        check = next(c for c in iter_checks(spec) if c.name == "spec_module_imports_without_torch")
        with pytest.raises(
            AssertionError, match=r"importing kit_torchy.spec imports torch \(through kit_torchy.helpers\)"
        ):
            check.run()
    finally:
        for name in [m for m in sys.modules if m.startswith("kit_torchy")]:
            del sys.modules[name]


def test_importtime_parsing_finds_the_importer() -> None:
    importtime = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:        10 |         10 |       torch._C",
            "import time:        20 |         30 |     torch",
            "import time:         5 |         35 |   pkg.helpers",
            "import time:         5 |         40 | pkg.spec",
        ]
    )
    assert _parent_of_torch(importtime) == "pkg.helpers"


def test_expected_failures_are_reported_and_must_keep_failing() -> None:
    spec = sabotage.WrongLengthVocoder.spec
    reasons = {"output_length": "drops half a hop on purpose", "streaming_matches_vocode": "same"}
    report = check_component(spec, expected_failures=reasons)
    assert report.ok and {r.check for r in report.results if r.status == "xfailed"} == set(reasons)
    with pytest.raises(ConformanceError, match="fails 1 check") as caught:
        check_component(DUMMY_SPECS[2], expected_failures={"output_length": "not true any more"})
    assert [r.status for r in caught.value.report.failures] == ["xpassed"]
    with pytest.raises(ValueError, match="unknown checks \\['output_lenght'\\]"):
        check_component(spec, expected_failures={"output_lenght": "typo"})
    with pytest.raises(ValueError, match="needs a reason"):
        check_component(spec, expected_failures={"output_length": " "})


def test_failures_raise_with_a_readable_report() -> None:
    with pytest.raises(ConformanceError) as caught:
        check_component(sabotage.MutatingVocoder.spec)
    text = str(caught.value)
    assert "vocoder/mutating fails 1 check(s): inputs_not_mutated" in text
    assert "modified its input's frames in place" in text and "output_length" in text and "PASSED" in text


def test_parametrize_gives_one_readable_id_per_check_and_strict_xfails() -> None:
    mark = parametrize_with_checks([DUMMY_SPECS[2]], expected_failures={"output_length": "just to see the mark"})
    params = mark.args[1]
    ids = [param.id for param in params]
    assert ids[0] == "test-sine-spec_is_valid" and "test-sine-streaming_matches_vocode" in ids
    # a streaming vocoder gets every check but the encoders' own
    assert len(ids) == len(set(ids)) == len(CHECK_NAMES) - 1 and "test-sine-same_signal_embeds_closer" not in ids
    xfails = [param for param in params if param.marks]
    assert [p.id for p in xfails] == ["test-sine-output_length"] and xfails[0].marks[0].kwargs["strict"] is True
    encoder_ids = [p.id for p in parametrize_with_checks([DUMMY_SPECS[0]]).args[1]]
    assert "test-tone-output_length" not in encoder_ids and "test-tone-streaming_matches_vocode" not in encoder_ids
    assert "test-tone-same_signal_embeds_closer" in encoder_ids
    assert "test-tone-resynthesizes_known_signal" not in encoder_ids


def test_components_by_name_and_by_instance() -> None:
    for name in ("griffinlim", "vocoder/griffinlim", "vcframe-griffinlim:griffinlim"):
        subject = next(iter_checks(name)).subject
        assert subject.spec.name == "griffinlim" and subject.spec_module == "vcframe_griffinlim.spec"
    with pytest.raises(ValueError, match="no installed component named 'nope'"):
        check_component("nope")
    from vcframe.discovery import build_component

    built = build_component(DUMMY_SPECS[0], {"min_duration_s": 0.2})
    report = check_component(built)
    assert report.ok and next(iter_checks(built)).subject.config.min_duration_s == 0.2


# -- the pytest fixtures -------------------------------------------------------------------------------


def test_isolated_registry_loads_no_installed_plugin_until_asked(vcframe_registry) -> None:
    assert list(vcframe_registry) == []
    assert plugin_manager().hook.vcframe_text_frontend(name="rtvc-english") is None  # the Tacotron hook plugin

    class Frontend:
        name, symbols = "kit-frontend", ("a",)

    class Provider:
        from vcframe import hookimpl

        @hookimpl
        def vcframe_text_frontend(self, name):
            return Frontend() if name == "kit-frontend" else None

    vcframe_registry.register_hooks(Provider())
    assert plugin_manager().hook.vcframe_text_frontend(name="kit-frontend").name == "kit-frontend"
    vcframe_registry.add_installed()
    assert vcframe_registry.row("vocoder", "griffinlim").ok
    assert plugin_manager().hook.vcframe_text_frontend(name="rtvc-english") is not None
    assert plugin_manager().hook.vcframe_text_frontend(name="kit-frontend").name == "kit-frontend"


def test_everything_registered_goes_away_after_the_block() -> None:
    from vcframe.discovery import default_registry
    from vcframe.testing.pytest_plugin import isolated_registry

    class Provider:
        from vcframe import hookimpl

        @hookimpl
        def vcframe_text_frontend(self, name):
            return "found" if name == "kit-frontend" else None

    with isolated_registry() as registry:
        registry.register(DUMMY_SPECS[0])
        registry.register_hooks(Provider())
        assert default_registry() is registry and plugin_manager().hook.vcframe_text_frontend(name="kit-frontend")
    assert plugin_manager().hook.vcframe_text_frontend(name="kit-frontend") is None
    assert plugin_manager().hook.vcframe_text_frontend(name="rtvc-english") is not None  # installed hooks are back
    assert not any(row.name == "test-tone" for row in default_registry())


@pytest.mark.parametrize("module", ["vcframe_ge2e.spec", "vcframe_tacotron.spec", "vcframe_griffinlim.spec"])
def test_cli_end_to_end_with_partners(module, vcframe_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    spec = importlib.import_module(module).SPEC
    selection = vcframe_registry.register_with_partners(spec)
    assert selection[selection.index(f"--{spec.kind}") + 1] == spec.name
    out = tmp_path / "out.wav"
    result = vcframe_cli(
        "run", *selection, "-r", speech_like_wav(), "--text", "Hi there.", "--out", out, "--seed", 1, "--metadata"
    )
    assert result.exit_code == 0, result.stderr
    samples, rate = soundfile.read(str(out))
    assert rate == 16000 and len(samples) > 0
    assert (tmp_path / "out.wav.json").is_file()


def test_plugins_validate_runs_the_kit(dummy_registry, vcframe_cli) -> None:
    passing = vcframe_cli("plugins", "validate", "test-sine")
    assert passing.exit_code == 0 and "streaming_matches_vocode" in passing.stdout and "failed" not in passing.stdout
    dummy_registry.register(sabotage.MutatingVocoder.spec)
    failing = vcframe_cli("plugins", "validate", "mutating")
    assert failing.exit_code == 2, failing.stderr
    assert "error: vocoder 'mutating' fails inputs_not_mutated" in failing.stderr


def test_the_authoring_guide_documents_every_check() -> None:
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    assert [name for name in CHECK_NAMES if f"| `{name}` |" not in guide] == []
