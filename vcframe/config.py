"""Settings: defaults < ``vcframe.toml`` < environment < ``-o key=value``.

Keys (dotted on the command line, ``__``-separated in the environment)::

    encoder = "ge2e"                      VCFRAME_ENCODER=ge2e               -o encoder=ge2e
    device = "cpu"                        VCFRAME_DEVICE=cpu                 -o device=cpu
    [components.vocoder.griffinlim]       VCFRAME_VOCODER__GRIFFINLIM__N_ITER=100
    n_iter = 100                                                             -o vocoder.griffinlim.n_iter=100

``<kind>.<name>.<option>`` is shorthand for ``components.<kind>.<name>.<option>``; the options are
validated against the component's own config model when it is built. Unknown top-level keys are refused.
Values on the command line and in the environment are parsed as TOML values when they parse (``3``,
``true``, ``[1, 2]``, ``"text"``), else taken as strings. TOML has no null: the string ``none`` (any case) sets
an option or setting that accepts None to None (``-o vocoder.griffinlim.peak_normalize=none``), unless the
option also accepts the string itself.

Environment variables: a ``VCFRAME_*`` variable is a setting only when its name is a setting's
(``VCFRAME_DEVICE``, ``VCFRAME_MAX_TEXT_CHARS``) or a component option's, ``VCFRAME_<KIND>__<NAME>__<OPTION>``
with double underscores. Every other ``VCFRAME_*`` variable is not a setting and is left alone, so tools and
plugins name their own variables ``VCFRAME_<PLUGIN>_<WORD>`` with single underscores
(``VCFRAME_WAVERNN_NO_CPP``, ``VCFRAME_CACHE``, ``VCFRAME_SHARED``).
"""

from __future__ import annotations

import functools
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vcframe.errors import ConfigError, validation_problems
from vcframe.specs import KINDS

ENV_PREFIX = "VCFRAME_"
CONFIG_FILE = "vcframe.toml"
#: Environment variables named like a setting that are read elsewhere (discovery reads a comma-separated list).
_NOT_SETTINGS = {"DISABLE_PLUGINS"}
#: The spelling of None on the command line, in the environment and in TOML (which has no null).
NONE_SPELLING = "none"


@functools.lru_cache(maxsize=1)
def default_bundle() -> dict[str, str]:
    """The default component triple named in ``registry/bundles.toml`` (``[bundle.default]``, vcframe.bundles)."""
    from vcframe.bundles import get_bundle

    return get_bundle("default").component_names()


class Settings(BaseModel):
    """Every setting of a vcframe run."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    encoder: str = Field(default_factory=lambda: default_bundle()["encoder"], description="Speaker encoder.")
    synthesizer: str = Field(default_factory=lambda: default_bundle()["synthesizer"], description="Synthesizer.")
    vocoder: str = Field(default_factory=lambda: default_bundle()["vocoder"], description="Vocoder.")
    bundle: str | None = Field(
        None,
        description="Named bundle (registry/bundles.toml, 'vcframe bundles list') whose components and options sit "
        "beneath every setting given explicitly.",
    )
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    threads: int | None = Field(
        None,
        ge=1,
        description="torch's CPU threads for the models (process-wide, set when a pipeline is built); None: "
        "OMP_NUM_THREADS or MKL_NUM_THREADS when set, else 1 (vcframe.cpu.DEFAULT_TORCH_THREADS: measured faster "
        "than one per core on 2 cores, for every vocoder through the server and for a cold run).",
    )
    seed: int | None = Field(None, ge=0, description="Seed for every random draw; None = not reproducible.")
    disable_plugins: list[str] = Field(default_factory=list, description="Plugins not to load.")
    allow_mismatch: bool = Field(False, description="Run incompatible components anyway (recorded in metadata).")
    adapt: bool = Field(False, description="Bridge mel mismatches with a mel-adapter hook.")
    match_spectrum: float | None = Field(
        None,
        ge=0,
        le=2,
        description="Spectrum matching (vcframe.spectrum): move each synthesized mel's long-term spectrum this far "
        "toward the reference clip's (0 = off, 1 = matched). None (the default): 1 where the reference clip is at "
        "hand (a reference or a voice) or a saved embedding stores its clips' spectrum at the synthesizer's mel spec "
        "(vcframe embed), off otherwise; a number above 0 needs the clip or such an embedding.",
    )
    mel_correction: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Mel correction (vcframe.correction): move each sentence's vocoder output this far toward the "
        "spectral envelope of the mel it was given, frame by frame, keeping the vocoder's phase (0 = off; 1 = the "
        "whole measured difference). None (the default): the strength the vocoder's registry checkpoint names "
        "(its mel_correction field), else off. Needs a log mel at the vocoder's output rate.",
    )
    max_text_chars: int = Field(10_000, gt=0, description="Longest text accepted by one run.")
    max_sentence_chars: int = Field(200, ge=10, description="Longer sentences are split at commas and spaces.")
    sentence_pause_s: float = Field(0.15, ge=0, le=5, description="Silence between sentences (RTVC's toolbox: 0.15).")
    synthesis_batch_size: int = Field(8, gt=0, description="Sentences synthesized together.")
    synthesis_first_batch_size: int = Field(
        1,
        gt=0,
        description="Sentences in a run's first synthesis batch (1: the first sentence alone, so streamed audio "
        "starts after one sentence; a value above synthesis_batch_size counts as synthesis_batch_size); the rest "
        "go synthesis_batch_size at a time. Streamed and whole runs use the same batches, so a seed gives the "
        "same audio either way.",
    )
    dataset_root: str | None = Field(
        None, description="LibriSpeech folder for librispeech:<id> references (else $VCFRAME_LIBRISPEECH)."
    )
    reference_processors: list[str] | None = Field(None, description="Names of reference processors to apply.")
    output_processors: list[str] | None = Field(None, description="Names of output processors to apply.")
    components: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="Per-component options: components.<kind>.<name>.<option>."
    )

    def component_options(self, kind: str, name: str) -> dict[str, Any]:
        short = name.rpartition(":")[2]
        return dict(self.components.get(kind, {}).get(short, {}))


def none_spelled(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with each ``"none"`` (any case) replaced by None where ``model``'s field of that name accepts
    None but not the string itself (TOML, ``-o`` and the environment have no null)."""
    from pydantic import TypeAdapter

    spelled = dict(values)
    for name, value in values.items():
        field = model.model_fields.get(name)
        if field is None or field.annotation is None or not isinstance(value, str) or value.lower() != NONE_SPELLING:
            continue
        adapter: TypeAdapter[Any] = TypeAdapter(field.annotation)
        try:
            adapter.validate_python(value)
            continue  # the string itself is a valid value (e.g. a mel normalization called "none")
        except ValidationError:
            pass
        try:
            adapter.validate_python(None)
        except ValidationError:
            continue
        spelled[name] = None
    return spelled


def parse_value(text: str) -> Any:
    """A TOML value if ``text`` is one, else the string itself."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def parse_json_options(items: Sequence[str] | None, *, example: str = "-o key=VALUE") -> dict[str, Any]:
    """A trainer's ``-o key=value`` options as a dict: each value read as JSON (``256``, ``[8,5,5]``, ``true``),
    or kept as the string when it is not JSON. ConfigError for an item without ``=`` or without a key."""
    parsed: dict[str, Any] = {}
    for item in items or []:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ConfigError(f"option {item!r} is not key=value", hint=f"e.g. {example}")
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            parsed[key] = value
    return parsed


def _assign(tree: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = [part for part in dotted.strip().split(".") if part]
    if not parts:
        raise ConfigError(f"empty setting name in {source}")
    if parts[0] in KINDS and len(parts) > 1:
        parts = ["components", *parts]
    if parts[0] == "components" and len(parts) < 4:
        raise ConfigError(f"{'.'.join(parts)!r} in {source} is incomplete", hint="use <kind>.<name>.<option>=VALUE")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted!r} in {source} conflicts with the value of {part!r}")
        node = child
    node[parts[-1]] = value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        loaded = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"config file {str(path)!r} not found") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML ({error})") from error
    tree: dict[str, Any] = {}
    for key, value in loaded.items():
        if key in KINDS and isinstance(value, dict):
            for name, options in value.items():
                tree = _merge(tree, {"components": {key: {name: options}}})
        else:
            tree = _merge(tree, {key: value})
    return tree


def is_setting_variable(key: str) -> bool:
    """Whether the environment variable ``key`` is a setting: ``VCFRAME_<SETTING>`` for a field of
    :class:`Settings`, or ``VCFRAME_<KIND>__<NAME>__<OPTION>``; any other ``VCFRAME_*`` name is not one."""
    if not key.startswith(ENV_PREFIX):
        return False
    name = key.removeprefix(ENV_PREFIX)
    if name in _NOT_SETTINGS:
        return False
    lowered = name.lower()
    return lowered in Settings.model_fields or any(lowered.startswith(f"{kind}__") for kind in KINDS)


def environment_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings given by ``VCFRAME_*`` variables (see :func:`is_setting_variable`; others are ignored)."""
    tree: dict[str, Any] = {}
    for key, value in environ.items():
        if not is_setting_variable(key):
            continue
        dotted = key.removeprefix(ENV_PREFIX).lower().replace("__", ".")
        _assign(tree, dotted, parse_value(value), f"environment variable {key}")
    return tree


def override_layer(overrides: Sequence[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for item in overrides:
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise ConfigError(f"-o {item!r} is not KEY=VALUE", hint="e.g. -o vocoder.griffinlim.n_iter=100")
        _assign(tree, key, parse_value(value.strip()), f"-o {item}")
    return tree


def find_config_file(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if environ.get("VCFRAME_CONFIG"):
        return Path(environ["VCFRAME_CONFIG"])
    local = Path.cwd() / CONFIG_FILE
    return local if local.is_file() else None


def load_settings(
    overrides: Sequence[str] = (),
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    explicit: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers; ``explicit`` (CLI flags such as --vocoder) sits on top of ``overrides``, and the bundle
    the result names (``bundle``, e.g. from ``--bundle``) beneath them all."""
    env = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    path = find_config_file(config_file, env)
    if path is not None:
        tree = _merge(tree, read_config_file(path))
    tree = _merge(tree, environment_layer(env))
    tree = _merge(tree, override_layer(overrides))
    tree = _merge(tree, {key: value for key, value in (explicit or {}).items() if value is not None})
    if isinstance(tree.get("bundle"), str) and tree["bundle"].lower() != NONE_SPELLING:
        from vcframe.bundles import get_bundle

        tree = _merge(get_bundle(tree["bundle"]).settings_layer(), tree)
    try:
        return Settings.model_validate(none_spelled(Settings, tree))
    except ValidationError as error:
        problems = validation_problems(error)
        raise ConfigError(
            f"invalid settings: {problems}", hint=f"valid keys: {', '.join(Settings.model_fields)}"
        ) from error
