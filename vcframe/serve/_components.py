"""The installed components of ``vcframe serve``: ``GET /v1/plugins`` and ``GET /v1/plugins/{kind}/{name}``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path

from vcframe.errors import PluginError, VcframeError
from vcframe.serve import models
from vcframe.serve._state import ServerState, State
from vcframe.serve.problems import NotFound, responses
from vcframe.specs import KINDS

router = APIRouter(tags=["plugins"])


def min_reference_seconds(state: ServerState, encoder: str) -> float | None:
    """The shortest reference ``encoder`` accepts with the server's options (None if it cannot be built)."""
    try:
        pipeline = state.engine.encoder_pipeline(encoder)
        return float(pipeline.specs["encoder"].resolve_io(pipeline.configs["encoder"])[0].min_duration_s)
    except (VcframeError, ValueError):
        return None


def _weights_fields(state: ServerState, kind: str, spec: Any) -> dict[str, str | None]:
    """``weights_status`` and ``weights`` of a component with the server's options (nothing when they do not
    validate: choosing it then fails with that error)."""
    from vcframe.bundles import configured_entry, weights_label
    from vcframe.discovery import make_config

    if spec is None:
        return {}
    try:
        config = make_config(spec, state.settings.component_options(kind, spec.name))
    except VcframeError:
        return {}
    entry = configured_entry(kind, spec.name, config)
    return {"weights_status": entry.status if entry else None, "weights": weights_label(kind, spec.name, config)}


@router.get("/v1/plugins", response_model=models.PluginList, responses=responses())
def plugins(state: State) -> models.PluginList:
    """Installed components of every kind (specs only; no model is loaded)."""
    defaults = state.engine.defaults()
    rows = []
    for row in state.registry:
        rows.append(
            models.PluginSummary(
                kind=row.kind,
                name=row.name,
                distribution=row.distribution,
                version=row.version,
                status=row.status,
                summary=row.spec.summary if row.spec else None,
                api_version=row.spec.api_version if row.spec else None,
                capabilities=sorted(row.spec.capabilities) if row.spec else [],
                error=row.error,
                warning=row.warning,
                default=defaults.get(row.kind) in (row.name, row.qualified_name),
                min_reference_seconds=min_reference_seconds(state, row.qualified_name)
                if row.kind == "encoder" and row.status in ("ok", "warning")
                else None,
                **_weights_fields(state, row.kind, row.spec),
            )
        )
    return models.PluginList(defaults=defaults, plugins=rows)


@router.get("/v1/plugins/{kind}/{name}", response_model=models.PluginDetail, responses=responses(404))
def plugin(
    kind: Annotated[str, Path(description="encoder, synthesizer or vocoder")],
    name: Annotated[str, Path(max_length=120, description="Component name (or DISTRIBUTION:NAME).")],
    state: State,
) -> models.PluginDetail:
    """One component's spec and the JSON schema of its options."""
    if kind not in KINDS:
        raise NotFound(f"no component kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    try:
        spec = state.registry.get(kind, name)
    except PluginError as error:
        raise NotFound(error.message, hint=error.hint) from error
    payload = json.loads(json.dumps(spec.model_dump(mode="json", exclude={"config_model"}), default=str))
    return models.PluginDetail(
        kind=kind, name=spec.name, spec=payload, config_schema=spec.config_model.model_json_schema()
    )
