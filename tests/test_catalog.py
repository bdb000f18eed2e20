"""registry/plugins.toml: the catalog of known plugins validates, and agrees with the installed reference plugins."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vcframe.catalog import CatalogEntry, catalog_entries
from vcframe.discovery import Registry


def test_catalog_validates_and_follows_the_publishing_conventions() -> None:
    entries = catalog_entries()
    keys = [(entry.kind, entry.name) for entry in entries]
    assert keys and len(keys) == len(set(keys))
    for entry in entries:
        assert entry.distribution.startswith("vcframe-"), entry
        assert ":" in entry.entry_point, entry
    with pytest.raises(ValidationError):
        CatalogEntry.model_validate({**entries[0].model_dump(), "unknown_field": 1})


def test_reference_entries_match_what_the_plugins_declare() -> None:
    registry = Registry.from_entry_points()
    references = [entry for entry in catalog_entries() if entry.status == "reference"]
    assert {entry.name for entry in references} >= {"ge2e", "tacotron", "wavernn", "griffinlim"}
    for entry in references:
        row = registry.row(entry.kind, entry.name)
        assert row.ok and row.spec is not None, row.error
        assert (row.distribution, row.entry_point) == (entry.distribution, entry.entry_point)
        assert (row.spec.api_version, row.spec.license) == (entry.api_version, entry.license)
