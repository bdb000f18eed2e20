"""``vcframe plugins new KIND NAME``: write a complete, installable plugin package that passes its own tests.

The package is what docs/plugins.md describes: a ``vcframe-<name>`` distribution with an entry point naming a
spec module that imports no torch, a model module with a small working torch model (random weights until you
train it), tests using the conformance kit and an end-to-end ``vcframe run``, and a README. It is written to a
temporary folder first and renamed into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

from vcframe import __version__
from vcframe.discovery import GROUPS
from vcframe.errors import InputError, OutputError
from vcframe.specs import API_VERSION, KINDS

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def core_requirement(version: str = __version__) -> str:
    """The vcframe-core bound a plugin built against ``version`` should declare.

    Before 1.0 a minor release may break plugins (``>=0.1,<0.2``); from 1.0 on only a major one (``>=1.2,<2``).
    """
    major, minor = (int(part) for part in version.split(".")[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f"vcframe-core>={major}.{minor},<{upper}"


@dataclass(frozen=True)
class PluginNames:
    """Every name derived from the component name."""

    kind: str
    name: str

    @property
    def distribution(self) -> str:
        return "vcframe-" + self.name.replace("_", "-")

    @property
    def package(self) -> str:
        return "vcframe_" + self.name.replace("-", "_")

    @property
    def class_name(self) -> str:
        stem = "".join(part.capitalize() for part in re.split(r"[-_]", self.name) if part)
        suffix = {"encoder": "Encoder", "synthesizer": "Synthesizer", "vocoder": "Vocoder"}[self.kind]
        return stem if stem.endswith(suffix) else stem + suffix

    def substitutions(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "name": self.name,
            "distribution": self.distribution,
            "package": self.package,
            "cls": self.class_name,
            "group": GROUPS[self.kind],
            "api_version": API_VERSION,
            "core_requirement": core_requirement(),
            "core_version": __version__,
            "summary": _SUMMARIES[self.kind],
        }


def check_names(kind: str, name: str) -> PluginNames:
    """The derived names, or an InputError saying what is wrong with KIND or NAME."""
    if kind not in KINDS:
        raise InputError(f"unknown plugin kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    if name.startswith(("vcframe-", "vcframe_")):
        raise InputError(
            f"give the component name without the vcframe- prefix (got {name!r})",
            hint=f"the distribution will be called vcframe-{name[8:] or 'NAME'}",
        )
    if not _NAME.fullmatch(name) or len(name) > 32:
        raise InputError(
            f"plugin name {name!r} must start with a lowercase letter and hold up to 32 of a-z, 0-9, '-' and '_'",
            hint="e.g. vcframe plugins new vocoder my-vocoder",
        )
    return PluginNames(kind, name)


def render(names: PluginNames) -> dict[str, str]:
    """Relative path -> file content of the package for ``names``."""
    values = names.substitutions()
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"{names.package}/__init__.py": _INIT,
        f"{names.package}/spec.py": _SPECS[names.kind],
        f"{names.package}/model.py": _MODELS[names.kind],
        f"tests/test_{names.package}.py": _TESTS,
    }
    return {path: Template(template).substitute(values) for path, template in files.items()}


def write_plugin(kind: str, name: str, out: str | os.PathLike[str] = ".") -> tuple[Path, list[str]]:
    """Write the package for a new plugin into ``out/vcframe-<name>``; return its folder and the files written."""
    names = check_names(kind, name)
    parent = Path(out).expanduser()
    if not parent.is_dir():
        raise OutputError(f"output folder {str(parent)!r} does not exist", hint="create it or choose another --out")
    target = parent / names.distribution
    if target.exists():
        raise OutputError(f"{str(target)!r} already exists", hint="choose another NAME or --out, or remove it")
    files = render(names)
    staging = Path(tempfile.mkdtemp(prefix=f".{names.distribution}-", dir=parent))
    try:
        for relative, content in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        staging.chmod(0o777 & ~_umask())
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, sorted(files)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_SUMMARIES = {
    "encoder": "a speaker encoder (audio -> speaker embedding)",
    "synthesizer": "a synthesizer (text + speaker embedding -> mel spectrogram)",
    "vocoder": "a vocoder (mel spectrogram -> waveform)",
}

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "${distribution}"
version = "0.1.0"
description = "${name}: ${summary}, a vcframe plugin"
readme = "README.md"
requires-python = ">=3.11"
license = "MIT"
# vcframe-core: the releases this plugin was written and tested against (see docs/plugins.md, publishing)
dependencies = ["${core_requirement}", "torch>=2.1", "numpy>=1.24"]

[project.optional-dependencies]
test = ["pytest>=8"]

# the entry point names the light spec module; the model module loads only when the component is used
[project.entry-points."${group}"]
${name} = "${package}.spec:SPEC"

[tool.setuptools.packages.find]
include = ["${package}*"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 120

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP"]
"""

_INIT = '''\
"""${distribution}: a vcframe ${kind} plugin."""
'''

_README = """\
# ${distribution}

`${name}`: ${summary}, a vcframe plugin. Generated by `vcframe plugins new ${kind} ${name}`
(vcframe-core ${core_version}, plugin API ${api_version}); vcframe's docs/plugins.md is the authoring guide.

The model is a small working placeholder with random weights: replace it with yours in
`${package}/model.py`, keep `${package}/spec.py` free of torch imports, and keep the tests green.

## Install and use

    pip install -e .               # in the environment where vcframe-core is installed
    vcframe plugins list           # shows ${name} (read from the entry point in pyproject.toml)
    vcframe plugins show ${name}   # its spec and every option
    vcframe run --${kind} ${name} -r voice.wav -t "Hello." --out hello.wav

Options go on the command line as `-o ${kind}.${name}.OPTION=VALUE`, or in `vcframe.toml` under
`[components.${kind}.${name}]`.

## Test

    pip install -e ".[test]"
    pytest

`tests/test_${package}.py` runs vcframe's conformance kit (one test per property of the ${kind} contract:
spec, config, offline build, output types and shapes, batching, seeding, input checks, device) on the tiny
`test_config` of the spec, and an end-to-end `vcframe run` with dummy partner components.

## Weights

`checkpoint` takes a `.safetensors` or torch `.pt` file, a `registry:<id>` or a scheme of your own through the
`vcframe_resolve_checkpoint` hook. Weights load with `vcframe.checkpoints.load_state` (safetensors, or
`torch.load(weights_only=True)`): no code runs at load. Never download at run time.

## Publishing

Publish as `${distribution}` with the `vcframe-core` bound in `pyproject.toml` (`${core_requirement}`);
raise it once you have tested against a newer vcframe-core. `api_version` in the spec is the plugin API this
code was written for: vcframe refuses another major version with a clear message.
"""

_LOAD_WEIGHTS = '''

def load_weights(network: torch.nn.Module, reference: str) -> None:
    """Load ``reference`` (a path, ``registry:<id>``, or a hook scheme) into ``network``, strictly.

    ``load_state`` reads safetensors, or torch files with ``weights_only=True``: no code runs at load.
    """
    resolved = resolve(SPEC.kind, SPEC.name, reference)
    state, _metadata = load_state(resolved.path)
    network.load_state_dict(state, strict=True)
'''

_ENCODER_SPEC = '''\
"""Spec of the ${name} speaker encoder: pydantic and vcframe.specs only, never torch.

``vcframe plugins list`` imports this module to list the plugin, so it must stay light; the model is named by
an import string (``factory``) and imported only when the encoder is used.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from vcframe.specs import RTVC_ENCODER_MEL, AudioSpec, ComponentSpec, EmbeddingSpec

#: The space of the embeddings: a synthesizer is trained for one space, so name yours (and bump the version
#: when retraining changes what the vectors mean).
EMBEDDING = EmbeddingSpec(space="${name}/v1", dim=64, l2_normalized=True)
#: The mel the encoder computes from its input audio (40 bands, 25 ms window, 10 ms hop at 16 kHz).
MEL = RTVC_ENCODER_MEL


class ${cls}Config(BaseModel):
    """Options of the ${name} encoder.

    Set them with ``-o encoder.${name}.OPTION=VALUE`` or in vcframe.toml.
    """

    model_config = ConfigDict(extra="forbid")  # unknown options are refused

    checkpoint: str | None = Field(
        None,
        description="Weights: a .safetensors or .pt path, 'registry:<id>', or None for random weights.",
    )
    hidden_size: int = Field(128, gt=0, description="Width of the frame network.")
    min_duration_s: float = Field(0.5, gt=0, description="Shortest clip accepted, in seconds.")
    init_seed: int = Field(0, ge=0, description="Seed of the random initial weights.")


def resolve_io(config: ${cls}Config) -> tuple[AudioSpec, EmbeddingSpec]:
    """16 kHz audio of at least ``min_duration_s`` in, unit-norm embeddings out."""
    return AudioSpec(sample_rate=MEL.sample_rate, min_duration_s=config.min_duration_s), EMBEDDING


SPEC = ComponentSpec(
    name="${name}",
    kind="encoder",
    api_version="${api_version}",  # the plugin API this code was written for
    summary="Speaker encoder: a frame network over a 40-band mel, averaged over time",
    factory="${package}.model:${cls}",
    config_model=${cls}Config,
    input=AudioSpec(sample_rate=MEL.sample_rate, min_duration_s=0.5),
    output=EMBEDDING,
    io_resolver="${package}.spec:resolve_io",
    capabilities=frozenset({"batched", "speaker_embedding"}),
    test_config={"checkpoint": None, "hidden_size": 16},  # a tiny random-weight instance for the kit
    test_instance="placeholder",  # random weights: the kit skips the checks only a trained model passes
    license="MIT",
)
'''

_ENCODER_MODEL = (
    '''\
"""The ${name} speaker encoder.

Log-mel frames -> frame network -> masked mean over time -> projection -> unit vector.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from vcframe.audio import mel_spectrogram
from vcframe.checkpoints import load_state, resolve
from vcframe.interfaces import BaseSpeakerEncoder
from vcframe.seeding import seeded
from vcframe.types import SpeakerEmbedding, Waveform

from ${package}.spec import (
    EMBEDDING,
    MEL,
    SPEC,
    ${cls}Config,
)


class FrameNetwork(torch.nn.Module):
    """Log-mel frames (B, T, n_mels) with lengths (B,) -> unit-norm embeddings (B, dim).

    Args:
        n_mels: mel bands per frame.
        hidden_size: width of the two frame layers.
        dim: embedding size.
    """

    def __init__(self, n_mels: int, hidden_size: int, dim: int) -> None:
        super().__init__()
        self.frames = torch.nn.Sequential(
            torch.nn.Linear(n_mels, hidden_size),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden_size, hidden_size),
            torch.nn.ReLU(),
        )
        self.project = torch.nn.Linear(hidden_size, dim)

    def forward(self, mels: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.frames(mels)
        # padded frames must not count: a batch then equals item-by-item calls
        mask = torch.arange(mels.shape[1], device=mels.device)[None, :] < lengths[:, None]
        pooled = (hidden * mask[..., None]).sum(dim=1) / lengths[:, None]
        return F.normalize(self.project(pooled), dim=1)


class ${cls}(BaseSpeakerEncoder):
    """The ${name} speaker encoder.

    ``embed(Waveform (B, T) at 16 kHz) -> SpeakerEmbedding (B, 64)``, unit L2 norm.

    Args:
        config: ${cls}Config (default: random weights, hidden size 128).
        device: where the network runs (default ``"cpu"``).

    The base class refuses empty batches and clips shorter than ``min_duration_s`` with an InputError
    (a ValueError), and averages clips for ``embed_speaker``.
    """

    spec = SPEC

    def __init__(
        self,
        config: ${cls}Config | None = None,
        *,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(config, device=device)
        self.config: ${cls}Config
        with seeded(self.config.init_seed):
            self.network = FrameNetwork(MEL.n_mels, self.config.hidden_size, EMBEDDING.dim)
        if self.config.checkpoint is not None:
            load_weights(self.network, self.config.checkpoint)
        self.network.eval().to(self.device)

    def _embed(self, waveform: Waveform) -> SpeakerEmbedding:
        mels = [np.log(mel_spectrogram(item, MEL).T + 1e-6) for item in waveform.items()]
        lengths = torch.tensor([len(mel) for mel in mels])
        padded = torch.zeros(len(mels), int(lengths.max()), MEL.n_mels)
        for row, mel in enumerate(mels):
            padded[row, : len(mel)] = torch.from_numpy(mel)
        with torch.inference_mode():
            vectors = self.network(padded.to(self.device), lengths.to(self.device))
        return SpeakerEmbedding(vectors.clone(), EMBEDDING)
'''
    + _LOAD_WEIGHTS
)

_SYNTHESIZER_SPEC = '''\
"""Spec of the ${name} synthesizer: pydantic and vcframe.specs only, never torch.

``vcframe plugins list`` imports this module to list the plugin, so it must stay light; the model is named by
an import string (``factory``) and imported only when the synthesizer is used.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from vcframe.specs import GE2E_RTVC_EMBEDDING, RTVC_SYNTHESIZER_MEL, ComponentSpec, TextSpec

#: The embeddings it reads (the reference GE2E encoder's) and the mel it writes (what the reference vocoders
#: read). Compatibility is decided from these specs before any weights load.
EMBEDDING = GE2E_RTVC_EMBEDDING
MEL = RTVC_SYNTHESIZER_MEL
#: The characters the model knows; others are dropped.
SYMBOLS = " abcdefghijklmnopqrstuvwxyz'.,;:?!-"


class ${cls}Config(BaseModel):
    """Options of the ${name} synthesizer.

    Set them with ``-o synthesizer.${name}.OPTION=VALUE`` or in vcframe.toml.
    """

    model_config = ConfigDict(extra="forbid")  # unknown options are refused

    checkpoint: str | None = Field(
        None,
        description="Weights: a .safetensors or .pt path, 'registry:<id>', or None for random weights.",
    )
    hidden_size: int = Field(128, gt=0, description="Width of the character network.")
    frames_per_char: int = Field(5, ge=1, le=50, description="Mel frames generated per character.")
    init_seed: int = Field(0, ge=0, description="Seed of the random initial weights.")


SPEC = ComponentSpec(
    name="${name}",
    kind="synthesizer",
    api_version="${api_version}",  # the plugin API this code was written for
    summary="Synthesizer: characters + speaker embedding -> mel, a fixed number of frames per character",
    factory="${package}.model:${cls}",
    config_model=${cls}Config,
    input=EMBEDDING,
    output=MEL,
    text=TextSpec(language="en", frontend="${name}-characters", max_chars=500),
    capabilities=frozenset({"batched"}),
    test_config={"checkpoint": None, "hidden_size": 16},  # a tiny random-weight instance for the kit
    test_instance="placeholder",  # random weights: the kit skips the checks only a trained model passes
    license="MIT",
)
'''

_SYNTHESIZER_MODEL = (
    '''\
"""The ${name} synthesizer.

Each character, conditioned on the speaker embedding, becomes a few mel frames.
"""

from __future__ import annotations

import torch
from vcframe.checkpoints import load_state, resolve
from vcframe.errors import InputError
from vcframe.interfaces import BaseSynthesizer
from vcframe.seeding import seeded
from vcframe.types import Mel, SpeakerEmbedding

from ${package}.spec import (
    EMBEDDING,
    MEL,
    SPEC,
    SYMBOLS,
    ${cls}Config,
)


class CharacterNetwork(torch.nn.Module):
    """Character ids (B, L) and embeddings (B, D) -> mel frames (B, n_mels, L) in [-1, 1].

    Args:
        num_symbols: size of the character table.
        embedding_dim: speaker embedding size.
        hidden_size: width of the network.
        n_mels: mel bands.
    """

    def __init__(self, num_symbols: int, embedding_dim: int, hidden_size: int, n_mels: int) -> None:
        super().__init__()
        self.characters = torch.nn.Embedding(num_symbols, hidden_size)
        self.speaker = torch.nn.Linear(embedding_dim, hidden_size)
        self.decode = torch.nn.Sequential(
            torch.nn.Linear(hidden_size, hidden_size), torch.nn.Tanh(), torch.nn.Linear(hidden_size, n_mels)
        )

    def forward(self, ids: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.characters(ids) + self.speaker(embedding)[:, None, :])
        return torch.tanh(self.decode(hidden)).transpose(1, 2)


class ${cls}(BaseSynthesizer):
    """The ${name} synthesizer.

    ``synthesize(texts (B), SpeakerEmbedding (B, 256)) -> Mel (B, 80, T)`` with lengths.

    Args:
        config: ${cls}Config (default: random weights, 5 frames per character).
        device: where the network runs (default ``"cpu"``).

    The base class refuses empty texts and embeddings of another space with an InputError (a ValueError).
    Every item is computed on its own characters only, so a batch equals item-by-item calls; the model
    draws no random numbers, so ``seed`` changes nothing (the spec does not declare "seeded").
    """

    spec = SPEC

    def __init__(
        self,
        config: ${cls}Config | None = None,
        *,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(config, device=device)
        self.config: ${cls}Config
        with seeded(self.config.init_seed):
            self.network = CharacterNetwork(len(SYMBOLS), EMBEDDING.dim, self.config.hidden_size, MEL.n_mels)
        if self.config.checkpoint is not None:
            load_weights(self.network, self.config.checkpoint)
        self.network.eval().to(self.device)

    def text_to_ids(self, index: int, text: str) -> list[int]:
        ids = [SYMBOLS.index(char) for char in text.lower() if char in SYMBOLS]
        if not any(SYMBOLS[i].isalpha() for i in ids):
            raise InputError(f"text {index} has no letters this model can say", hint="use English letters")
        return ids

    def _synthesize(self, texts: list[str], embedding: SpeakerEmbedding, seed: int | None) -> Mel:
        ids = [self.text_to_ids(index, text) for index, text in enumerate(texts)]
        characters = torch.zeros(len(ids), max(len(item) for item in ids), dtype=torch.long)
        for row, item in enumerate(ids):
            characters[row, : len(item)] = torch.tensor(item)
        with torch.inference_mode():
            values = self.network(characters.to(self.device), embedding.vector.to(self.device))
        frames = (MEL.max_abs_value * values).repeat_interleave(self.config.frames_per_char, dim=2)
        lengths = torch.tensor([len(item) * self.config.frames_per_char for item in ids], device=self.device)
        padding = torch.arange(frames.shape[2], device=self.device)[None, :] >= lengths[:, None]
        frames = frames.masked_fill(padding[:, None, :], MEL.silence_value)
        return Mel(frames.clone(), MEL, lengths)
'''
    + _LOAD_WEIGHTS
)

_VOCODER_SPEC = '''\
"""Spec of the ${name} vocoder: pydantic and vcframe.specs only, never torch.

``vcframe plugins list`` imports this module to list the plugin, so it must stay light; the model is named by
an import string (``factory``) and imported only when the vocoder is used.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from vcframe.specs import RTVC_SYNTHESIZER_MEL, AudioSpec, ComponentSpec

#: The mel it reads (what the reference Tacotron writes): compatibility is decided from it, field by field.
MEL = RTVC_SYNTHESIZER_MEL


class ${cls}Config(BaseModel):
    """Options of the ${name} vocoder.

    Set them with ``-o vocoder.${name}.OPTION=VALUE`` or in vcframe.toml.
    """

    model_config = ConfigDict(extra="forbid")  # unknown options are refused

    checkpoint: str | None = Field(
        None,
        description="Weights: a .safetensors or .pt path, 'registry:<id>', or None for random weights.",
    )
    hidden_size: int = Field(128, gt=0, description="Width of the frame network.")
    chunk_frames: int = Field(16, ge=1, description="Mel frames per chunk of vocode_stream.")
    init_seed: int = Field(0, ge=0, description="Seed of the random initial weights.")


SPEC = ComponentSpec(
    name="${name}",
    kind="vocoder",
    api_version="${api_version}",  # the plugin API this code was written for
    summary="Vocoder: each mel frame becomes hop_length samples through a small network",
    factory="${package}.model:${cls}",
    config_model=${cls}Config,
    input=MEL,
    output=AudioSpec(sample_rate=MEL.sample_rate),
    capabilities=frozenset({"batched", "streaming"}),
    test_config={"checkpoint": None, "hidden_size": 16},  # a tiny random-weight instance for the kit
    test_instance="placeholder",  # random weights: the kit skips the checks only a trained model passes
    license="MIT",
)
'''

_VOCODER_MODEL = (
    '''\
"""The ${name} vocoder.

Every mel frame becomes one hop of samples through a small frame network.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from vcframe.checkpoints import load_state, resolve
from vcframe.errors import InputError
from vcframe.interfaces import BaseVocoder
from vcframe.seeding import seeded
from vcframe.types import Mel, Waveform

from ${package}.spec import (
    MEL,
    SPEC,
    ${cls}Config,
)


class FrameNetwork(torch.nn.Module):
    """Mel frames (B, T, n_mels), scaled to [-1, 1] -> samples (B, T * hop_length) in [-1, 1].

    Args:
        n_mels: mel bands per frame.
        hidden_size: width of the hidden layer.
        hop_length: samples per frame.
    """

    def __init__(self, n_mels: int, hidden_size: int, hop_length: int) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(n_mels, hidden_size), torch.nn.Tanh(), torch.nn.Linear(hidden_size, hop_length)
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layers(frames)).flatten(1)


class ${cls}(BaseVocoder):
    """The ${name} vocoder.

    ``vocode(Mel (B, 80, T)) -> Waveform (B, T * 200)`` at 16 kHz, items cut to their lengths.

    Args:
        config: ${cls}Config (default: random weights, hidden size 128).
        device: where the network runs (default ``"cpu"``).

    The base class checks the mel's spec and refuses empty mels with an InputError (a ValueError). Each frame
    is rendered on its own, so batches equal item-by-item calls and streamed chunks concatenate exactly to
    ``vocode``'s output.
    """

    spec = SPEC

    def __init__(
        self,
        config: ${cls}Config | None = None,
        *,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(config, device=device)
        self.config: ${cls}Config
        with seeded(self.config.init_seed):
            self.network = FrameNetwork(MEL.n_mels, self.config.hidden_size, MEL.hop_length)
        if self.config.checkpoint is not None:
            load_weights(self.network, self.config.checkpoint)
        self.network.eval().to(self.device)

    def _render(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) mel values -> (B, T * hop_length) samples."""
        with torch.inference_mode():
            return self.network((frames / MEL.max_abs_value).transpose(1, 2)).clone()

    def _vocode(self, mel: Mel, seed: int | None) -> Waveform:
        samples = self._render(mel.frames)
        return Waveform(samples, MEL.sample_rate, mel.lengths * MEL.hop_length)

    def vocode_stream(self, mel: Mel, *, seed: int | None = None) -> Iterator[Waveform]:
        """Yield (1, chunk_frames * hop_length) chunks; concatenated they equal ``vocode(mel)``."""
        mel = self._check_mel(mel)
        if mel.batch_size != 1:
            raise InputError(f"vocode_stream takes one mel, got a batch of {mel.batch_size}")
        frames = mel.frames[:, :, : int(mel.lengths[0])]
        for start in range(0, frames.shape[2], self.config.chunk_frames):
            yield Waveform(self._render(frames[:, :, start : start + self.config.chunk_frames]), MEL.sample_rate)
'''
    + _LOAD_WEIGHTS
)

_TESTS = '''\
"""Tests of ${distribution}: vcframe's conformance kit, discovery and an end-to-end run."""

from __future__ import annotations

from vcframe.discovery import Registry
from vcframe.testing import parametrize_with_checks

from ${package}.spec import SPEC


@parametrize_with_checks([SPEC])  # one test per property of the ${kind} contract, on SPEC.test_config
def test_conformance(check) -> None:
    check()


def test_found_through_the_installed_entry_point() -> None:
    assert Registry.from_entry_points().get("${kind}", "${name}") == SPEC


def test_vcframe_run_end_to_end(vcframe_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    # vcframe_registry: no installed plugin is loaded; register this one (tiny test config) with dummy partners
    selection = vcframe_registry.register_with_partners(SPEC)
    out = tmp_path / "hello.wav"
    result = vcframe_cli("run", *selection, "-r", speech_like_wav(), "-t", "Hello there.", "--out", out, "--seed", 1)
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_size > 44  # more than a WAV header
'''

_SPECS = {"encoder": _ENCODER_SPEC, "synthesizer": _SYNTHESIZER_SPEC, "vocoder": _VOCODER_SPEC}
_MODELS = {"encoder": _ENCODER_MODEL, "synthesizer": _SYNTHESIZER_MODEL, "vocoder": _VOCODER_MODEL}
