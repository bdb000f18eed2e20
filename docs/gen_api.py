"""Write docs/api.md, the API reference for plugin authors, from the docstrings of what they use.

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 (naming the first differing line) if docs/api.md is out of date

The page is generated, never edited by hand: improve a docstring, then run this. tests/test_plugin_api.py fails
while the committed page differs from what this writes. The objects documented are listed in ``SECTIONS``;
their signatures come from ``inspect``, their text from their docstrings (reST-ish markup turned into
Markdown: ``code`` and :func:`name` into `code`, ``::`` blocks into code blocks, Args/Returns sections into
lists), the fields of pydantic models from their ``Field(description=...)``, and constants from the ``#:``
comments above them.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import re
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

PAGE = Path(__file__).resolve().parent / "api.md"

#: (title, module, introduction, names) of each section, in page order.
SECTIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "Typed tensors",
        "vcframe.types",
        "What components receive and return: batch-first tensors with per-item lengths and their metadata.",
        ("Waveform", "Mel", "SPEAKER_EMBEDDING_KEY", "SpeakerEmbedding"),
    ),
    (
        "Specs",
        "vcframe.specs",
        "Plain data (pydantic, no torch) describing what a component reads and writes; two components fit when "
        "the producer's output spec equals the consumer's input spec field by field.",
        (
            "MelSpec",
            "RTVC_SYNTHESIZER_MEL",
            "RTVC_ENCODER_MEL",
            "HIFIGAN_MEL",
            "EmbeddingSpec",
            "GE2E_RTVC_EMBEDDING",
            "AudioSpec",
            "TextSpec",
            "ComponentSpec",
            "API_VERSION",
            "KNOWN_CAPABILITIES",
        ),
    ),
    (
        "Mel and audio helpers",
        "vcframe.audio",
        "The core's one mel front-end. Compute training targets, probes and inversions with these, so that "
        "your mels are the ones the rest of vcframe computes.",
        (
            "mel_spectrogram",
            "linear_spectrogram",
            "stft",
            "istft",
            "mel_basis",
            "amplitude_to_mel_values",
            "mel_values_to_amplitude",
            "frames_for",
            "preemphasis",
            "deemphasis",
            "TRAINING_PEAK",
            "rescale_peak",
            "resample",
        ),
    ),
    (
        "Base classes",
        "vcframe.interfaces",
        "Optional base classes that check inputs and call the one method you write; anything satisfying the "
        "protocols (`SpeakerEncoder`, `Synthesizer`, `Vocoder`, `StreamingVocoder`) works too.",
        ("BaseComponent", "BaseSpeakerEncoder", "BaseSynthesizer", "BaseVocoder"),
    ),
    (
        "Speaker adaptation",
        "vcframe.adaptation",
        "The optional synthesizer methods behind `--adapt-speaker`: fit the speaker embedding to the reference clip, "
        "or the synthesizer's output layer (`--adapt-target output`), carried in the embedding's metadata.",
        (
            "SpeakerAdaptation",
            "AdaptedEmbedding",
            "AdaptableSynthesizer",
            "OutputAdaptableSynthesizer",
            "OutputAdapter",
            "output_adapter",
            "without_output_adapter",
            "refuse_foreign_output_adapter",
            "adapt_speaker",
            "reference_mel",
        ),
    ),
    (
        "Seeding",
        "vcframe.seeding",
        "Reproducible randomness that leaves the caller's random streams alone, item by item.",
        ("seeded", "item_generators"),
    ),
    (
        "Errors",
        "vcframe.errors",
        "Raise these for bad input: the CLI prints them as one line with the hint and exits 2.",
        ("VcframeError", "InputError", "AudioInputError", "ConfigError", "CheckpointError"),
    ),
    (
        "Testing",
        "vcframe.testing",
        "The conformance kit and test signals (see [plugins.md](plugins.md#testing-with-the-conformance-kit)).",
        ("check_component", "parametrize_with_checks", "speech_like", "band_noise"),
    ),
)

#: Members whose names start with an underscore that plugin authors override or call, per class.
HOOKS: dict[str, tuple[str, ...]] = {
    "BaseComponent": ("_modules_to",),
    "BaseSpeakerEncoder": ("_embed",),
    "BaseSynthesizer": ("_synthesize",),
    "BaseVocoder": ("_check_mel", "_vocode"),
}

_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_QUALIFIED = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")
_SECTION = re.compile(r"^(Args|Arguments|Returns|Yields|Raises|Attributes|Shapes|Example|Examples|Note):\s*$")


def markdown(docstring: str | None) -> str:
    """A docstring as Markdown (empty for none): roles and literals as code, ``::`` blocks fenced, Google-style
    sections as lists."""
    if not docstring:
        return ""
    lines = inspect.cleandoc(docstring).splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.rstrip().endswith("::"):
            text = line.rstrip()[:-2].rstrip()
            if text:
                out.append(_inline(text) + ":")
            block, index = _indented_block(lines, index + 1)
            out += ["", "```", *block, "```", ""]
            continue
        section = _SECTION.match(line)
        if section:
            items, index = _section_items(lines, index + 1)
            out += [f"**{section.group(1)}:**", ""]
            out += [f"- {_inline(item)}" for item in items]
            out.append("")
            continue
        out.append(_inline(line))
        index += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _indented_block(lines: list[str], start: int) -> tuple[list[str], int]:
    """The blank-or-indented lines from ``start`` (dedented, outer blank lines dropped), and the next index."""
    end = start
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "\t"))):
        end += 1
    block = textwrap.dedent("\n".join(lines[start:end])).strip("\n").splitlines()
    return block, end


def _section_items(lines: list[str], start: int) -> tuple[list[str], int]:
    """The items of an indented section (continuation lines joined), and the index after it."""
    block, end = _indented_block(lines, start)
    items: list[str] = []
    for line in block:
        if not line.strip():
            continue
        if line.startswith((" ", "\t")) and items:
            items[-1] += " " + line.strip()
        else:
            items.append(line.strip())
    return items, end


def _inline(text: str) -> str:
    return _LITERAL.sub(r"`\1`", _ROLE.sub(r"`\1`", text)).rstrip()


def type_name(annotation: Any) -> str:
    """A short, stable spelling of a type annotation (module paths dropped, Annotated unwrapped)."""
    if isinstance(annotation, str):  # as written in the source (postponed annotations)
        return annotation.replace("typing.", "")
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is Any:
        return "Any"
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(arguments[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(argument) for argument in arguments)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(argument) for argument in arguments)}]"
    if origin is not None:
        return f"{type_name(origin)}[{', '.join(type_name(argument) for argument in arguments)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    text = _QUALIFIED.sub(r"\1", str(annotation))
    if " at 0x" in text:
        raise ValueError(f"unstable type spelling {text!r}: the page would change from run to run")
    return text


def signature(function: Callable[..., Any], name: str, *, method: bool = False) -> str:
    """``name(parameters) -> return`` with annotations as written in the source; ``method`` drops ``self``."""
    parameters = []
    seen_keyword_only = False
    listed = list(inspect.signature(function).parameters.values())
    for parameter in listed[1:] if method else listed:
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not seen_keyword_only:
            parameters.append("*")
            seen_keyword_only = True
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            seen_keyword_only = True
        prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
        text = prefix + parameter.name
        if parameter.annotation is not inspect.Parameter.empty:
            text += f": {type_name(parameter.annotation)}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {_value(parameter.default)}"
        parameters.append(text)
    returned = inspect.signature(function).return_annotation
    arrow = "" if returned is inspect.Signature.empty else f" -> {type_name(returned)}"
    return f"{name}({', '.join(parameters)}){arrow}"


def _value(value: Any) -> str:
    if isinstance(value, BaseModel):
        given = [field for field in type(value).model_fields if field in value.model_fields_set]
        fields = [f"{field}={getattr(value, field)!r}" for field in given]
        return f"{type(value).__name__}({', '.join(fields)})"
    if isinstance(value, frozenset):
        return "frozenset({" + ", ".join(repr(item) for item in sorted(value)) + "})" if value else "frozenset()"
    text = repr(value)
    if " at 0x" in text:
        raise ValueError(f"unstable value spelling {text!r}: the page would change from run to run")
    return text


def constant_comments(module: Any) -> dict[str, str]:
    """The ``#:`` comments above each top-level assignment of ``module``, by name."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(module).splitlines():
        if line.startswith("#:"):
            pending.append(line[2:].strip())
            continue
        assigned = re.match(r"^([A-Z_][A-Z0-9_]*)\s*(?::[^=]+)?=", line)
        if assigned and pending:
            comments[assigned.group(1)] = " ".join(pending)
        pending = []
    return comments


def document(module_name: str, name: str) -> Iterator[str]:
    """The Markdown of one object of ``module_name``."""
    module = importlib.import_module(module_name)
    value = getattr(module, name)
    yield f"### `{name}`"
    yield ""
    if inspect.isclass(value) and issubclass(value, BaseModel):
        yield from _pydantic_model(value)
    elif inspect.isclass(value):
        yield from _class(value)
    elif callable(value):
        yield from _code(f"{module_name}.{signature(value, name)}")
        yield from _paragraph(markdown(value.__doc__))
    else:
        yield from _code(f"{module_name}.{name} = {_value(value)}")
        yield from _paragraph(_inline(constant_comments(module).get(name, "")))


def _code(text: str) -> Iterator[str]:
    # no language tag: ruff formats ```python blocks in Markdown files, and signatures are not code to format
    yield "```"
    yield text
    yield "```"
    yield ""


def _paragraph(text: str) -> Iterator[str]:
    if text:
        yield text
        yield ""


def _class(cls: type) -> Iterator[str]:
    bases = [base.__name__ for base in cls.__bases__ if base is not object]
    header = f"class {cls.__module__}.{cls.__name__}" + (f"({', '.join(bases)})" if bases else "")
    if dataclasses.is_dataclass(cls):
        yield from _code(f"{header}\n{_dataclass_signature(cls)}")
    elif "__init__" in vars(cls):
        constructor = signature(vars(cls)["__init__"], cls.__name__, method=True).removesuffix(" -> None")
        yield from _code(f"{header}\n{constructor}")
    else:
        yield from _code(header)
    yield from _paragraph(markdown(cls.__doc__))
    yield from _members(cls)


def _dataclass_signature(cls: type) -> str:
    """``Name(field: type = default, ...)`` of a dataclass, defaults from factories spelled as calls."""
    parameters = []
    for item in dataclasses.fields(cls):
        text = f"{item.name}: {type_name(item.type)}"
        if item.default_factory is not dataclasses.MISSING:
            text += f" = {getattr(item.default_factory, '__name__', 'factory')}()"
        elif item.default is not dataclasses.MISSING:
            text += f" = {_value(item.default)}"
        parameters.append(text)
    return f"{cls.__name__}({', '.join(parameters)})"


def _pydantic_model(cls: type[BaseModel]) -> Iterator[str]:
    yield from _code(f"class {cls.__module__}.{cls.__name__}(pydantic.BaseModel)")
    yield from _paragraph(markdown(cls.__doc__))
    yield "| field | type | default | description |"
    yield "|---|---|---|---|"
    for field, info in cls.model_fields.items():
        if info.default_factory is not None:
            default = f"`{getattr(info.default_factory, '__name__', 'factory')}()`"
        elif info.default is PydanticUndefined:
            default = "required"
        else:
            default = f"`{_value(info.default)}`"
        description = _inline(info.description or "").replace("|", "\\|")
        annotation = type_name(info.annotation).replace("|", "\\|")
        yield f"| `{field}` | `{annotation}` | {default} | {description} |"
    yield ""
    yield from _members(cls, skip=set(dir(BaseModel)))


def _members(cls: type, skip: set[str] | None = None) -> Iterator[str]:
    """Public methods and properties defined by ``cls`` (and its documented hooks), in source order."""
    wanted = HOOKS.get(cls.__name__, ())
    for name, member in vars(cls).items():
        if (name.startswith("_") and name not in wanted) or (skip and name in skip):
            continue
        if isinstance(member, property):
            heading = f"{cls.__name__}.{name}"
            returned = (member.fget.__annotations__ or {}).get("return") if member.fget else None
            kind = f" -> {type_name(returned)}" if returned else ""
            yield f"#### `{heading}` (property{kind})"
            yield ""
            yield from _paragraph(markdown(member.__doc__))
        elif isinstance(member, (staticmethod, classmethod)) or inspect.isfunction(member):
            function = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            decorator = {staticmethod: "@staticmethod\n", classmethod: "@classmethod\n"}.get(type(member), "")
            yield f"#### `{cls.__name__}.{name}`"
            yield ""
            call = signature(function, f"{cls.__name__}.{name}", method=not isinstance(member, staticmethod))
            yield from _code(decorator + call)
            yield from _paragraph(markdown(function.__doc__))


def render() -> str:
    """The whole page."""
    lines = [
        "# API reference for plugin authors",
        "",
        "<!-- Generated by docs/gen_api.py from the docstrings; do not edit by hand. -->",
        "",
        "What a plugin uses from vcframe-core, generated from the docstrings (regenerate with",
        "`python docs/gen_api.py`; a test fails while this page is out of date). The contract itself, the",
        "conformance kit and publishing are in [plugins.md](plugins.md).",
        "",
    ]
    for title, module_name, _introduction, _names in SECTIONS:
        lines.append(f"- [{title}](#{title.lower().replace(' ', '-')}) (`{module_name}`)")
    lines.append("")
    for title, module_name, introduction, names in SECTIONS:
        lines += [f"## {title}", "", f"`{module_name}`: {introduction}", ""]
        for name in names:
            lines += list(document(module_name, name))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is out of date")
    arguments = parser.parse_args(argv)
    page = render()
    if arguments.check:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current != page:
            print(f"{PAGE} is out of date: {first_difference(current, page)}; run python docs/gen_api.py")
            return 1
        return 0
    from vcframe._io import atomic_write

    with atomic_write(PAGE, "w") as handle:
        handle.write(page)
    print(f"wrote {PAGE} ({len(page.splitlines())} lines)")
    return 0


def first_difference(current: str, expected: str) -> str:
    """Where two versions of the page first differ, as one line."""
    for number, (old, new) in enumerate(zip(current.splitlines(), expected.splitlines(), strict=False), start=1):
        if old != new:
            return f"line {number} is {old!r}, the docstrings give {new!r}"
    return f"the page has {len(current.splitlines())} lines, the docstrings give {len(expected.splitlines())}"


if __name__ == "__main__":
    sys.exit(main())
