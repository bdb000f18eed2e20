"""Every validator of a name or an id matches the whole string.

``re.match`` with a pattern ending in ``$`` lets a trailing newline through (``$`` also matches before a final
``\\n``): ``nl\\n`` passed as a voice name, was stored as a folder with a newline in its name and broke the
server's response headers. Each validator is fed a valid value (accepted) and the same value with a trailing
newline (refused).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from vcframe.errors import InputError


def _voice_name(value: str, tmp_path: Path) -> None:
    from vcframe.voices import check_voice_name

    check_voice_name(value)


def _librispeech_id(value: str, tmp_path: Path) -> None:
    from vcframe.voices import resolve_reference

    try:
        resolve_reference(f"librispeech:{value}", dataset_root=tmp_path)
    except InputError as error:
        if "not a LibriSpeech utterance id" in error.message:
            raise
        # a well-formed id that is not on disk: the format passed


def _plugin_scaffold_name(value: str, tmp_path: Path) -> None:
    from vcframe._scaffold import check_names

    check_names("vocoder", value)


def _grid_label(value: str, tmp_path: Path) -> None:
    from vcframe.compare.grid import SystemEntry, TextEntry, VoiceEntry

    SystemEntry(name=value)
    VoiceEntry(name=value, reference="clara")
    TextEntry(id=value, text="Hello.")


def _annotated(type_path: str) -> Callable[[str, Path], None]:
    module_name, attribute = type_path.rsplit(".", 1)

    def validate(value: str, tmp_path: Path) -> None:
        import importlib

        TypeAdapter(getattr(importlib.import_module(module_name), attribute)).validate_python(value)

    return validate


def _catalog_api_version(value: str, tmp_path: Path) -> None:
    from vcframe.catalog import CatalogEntry, catalog_entries

    CatalogEntry.model_validate({**catalog_entries()[0].model_dump(), "api_version": value})


def _checkpoint_sha256(value: str, tmp_path: Path) -> None:
    from vcframe.checkpoints import CheckpointEntry, registry_entries

    CheckpointEntry.model_validate({**registry_entries()[0].model_dump(), "sha256": value})


VALIDATORS = {
    "voice name": (_voice_name, "clara"),
    "librispeech utterance id": (_librispeech_id, "1089-134686-0000"),
    "plugin name (vcframe plugins new)": (_plugin_scaffold_name, "my-vocoder"),
    "comparison labels": (_grid_label, "gl-1.2"),
    "component name": (_annotated("vcframe.specs.ComponentName"), "griffinlim"),
    "api version": (_annotated("vcframe.specs.ApiVersionString"), "1.0"),
    "import string": (_annotated("vcframe.specs.ImportString"), "package.module:attribute"),
    "metric column": (_annotated("vcframe.metrics.spec.ColumnName"), "speaker_similarity"),
    "catalog api version": (_catalog_api_version, "1.0"),
    "checkpoint sha256": (_checkpoint_sha256, "0" * 64),
}


@pytest.mark.parametrize("name", list(VALIDATORS))
def test_a_trailing_newline_is_refused(name: str, tmp_path: Path) -> None:
    validate, valid = VALIDATORS[name]
    validate(valid, tmp_path)
    with pytest.raises((InputError, ValidationError, ValueError)):
        validate(valid + "\n", tmp_path / "second")
