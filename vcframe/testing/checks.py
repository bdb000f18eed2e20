"""The conformance kit: a mechanical answer to "does my component work with vcframe?".

Every check tests one property of the contract in :mod:`vcframe.interfaces` against a tiny instance built
from the spec's ``test_config`` (random weights, network access blocked), the way scikit-learn's
``check_estimator`` tests estimators::

    from vcframe.testing import check_component, parametrize_with_checks

    check_component("griffinlim")                      # runs every check, raises ConformanceError on failure

    @parametrize_with_checks([SPEC])                   # one pytest test per check: test_kit[myvoc-output_length]
    def test_kit(check):
        check()

A check that fails for a deliberate, documented reason goes in ``expected_failures={"check_name": "why"}``;
it is then reported as an expected failure, and as an error once it passes (so the list stays honest).
:data:`CHECKS` lists the checks with the property each one tests.

Most checks test the contract (types, shapes, lengths, seeds, errors); the last ones test what outputs *mean*:
a vocoder turns a silent mel into near-silence and resynthesises a known signal from its mel, an encoder puts
two clips of one signal closer than a different signal. Those a random network cannot pass run only on a
*working* instance (``ComponentSpec.test_instance``, or ``test_instance=`` here); on a placeholder they are
skipped, saying so. Once the component cannot be built, the checks that need it are skipped too: one failure,
not one per check.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

from vcframe.discovery import Registry, build_component, default_registry
from vcframe.interfaces import SpeakerEncoder, StreamingVocoder, Synthesizer, Vocoder
from vcframe.seeding import seeded
from vcframe.specs import KINDS, AudioSpec, ComponentSpec, EmbeddingSpec, MelSpec, api_compatibility
from vcframe.testing.signals import band_noise, speech_like
from vcframe.types import Mel, SpeakerEmbedding, Waveform

#: Largest absolute difference accepted between outputs that must be equal (batch vs items, two seeded
#: runs): embeddings, mel values (in the spec's units) and audio samples.
ATOL = {"encoder": 1e-5, "synthesizer": 1e-4, "vocoder": 1e-4}
#: The seed the kit passes to components (any value would do).
KIT_SEED = 1234
#: Texts the kit synthesizes: two sentences of different lengths.
PROBE_TEXTS = ("Hello there.", "The quick brown fox jumps, twice.")
#: Mel frames of the two mels the kit vocodes, and of the one it streams.
PROBE_FRAMES = (12, 7)
STREAM_FRAMES = 30
#: Loudest RMS and peak accepted from a silent mel: -45 and -30 dBFS. Griffin-Lim gives RMS -60 dBFS / peak 0.005
#: (RTVC's mel, power 1.2), -49 dBFS / 0.016 at power 1.0, -54 dBFS / 0.007 on the test mel; the band-noise fixture
#: -69 dBFS. With full peak normalisation Griffin-Lim gave -12 dBFS / 0.97, and WaveRNN's random weights -4 / 1.0.
SILENCE_RMS = 10 ** (-45 / 20)
SILENCE_PEAK = 10 ** (-30 / 20)
#: Largest spectral distance accepted in a resynthesis, in dB: the mean absolute difference between the long-term
#: mel spectra (dB) of the probe and of the output, over bands within 30 dB of the loudest and after removing
#: the median difference (the level is checked apart). Measured on the 1 s band-noise probe: Griffin-Lim 1.1-1.2
#: (test_config and defaults; 0.3 at power 1.0, 2.8 at RTVC's 1.5), the band-noise fixture 1.7; faults: 5.5
#: (fmax declared 7600 Hz, 8000 used), 7.1 (de-emphasis forgotten), 5.1 (the sine dummy), 7.5 (WaveRNN, random).
RESYNTHESIS_MAX_DB = 4.0
#: Largest level difference accepted in a resynthesis (output RMS against the probe's, in dB). The probe peaks at
#: 0.9, the level of synthesizer training audio. Measured: Griffin-Lim -2.5 to +0.2 dB (powers 1.0-1.5), the
#: band-noise fixture -0.8; faults: -30 (the fixture before its output scale was fixed), -7.9 (the sine dummy),
#: +9.4 (WaveRNN, random).
RESYNTHESIS_MAX_LEVEL_DB = 6.0
#: Smallest margin accepted between an encoder's similarity of two clips of one signal and of a different signal
#: (cosines). Measured: the tone encoder 0.998 vs 0.387, GE2E with pretrained weights 0.997 vs 0.392, GE2E with
#: random tiny weights 0.992-0.996 vs 0.726-0.879 (six initialisations); an encoder blind to content: 0.
SIMILARITY_MARGIN = 0.05
#: Frames of the silent mel, and seconds of the resynthesis probe.
SILENT_FRAMES = 40
RESYNTHESIS_SECONDS = 1.0

Status = Literal["passed", "failed", "skipped", "xfailed", "xpassed"]


class CheckFailed(AssertionError):
    """A check found a property that does not hold; the message says which and with what values."""


class CheckSkipped(Exception):
    """A check cannot run here (no CUDA device, spec module unknown); the message says why."""


class NetworkAccessError(OSError):
    """Raised when a component opens a network connection during a check."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one component."""

    component: str
    check: str
    status: Status
    detail: str = ""
    seconds: float = 0.0


@dataclass
class ConformanceReport:
    """All results of :func:`check_component`; ``ok`` when nothing failed (expected failures are fine)."""

    component: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if result.status in ("failed", "xpassed")]

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        width = max((len(result.check) for result in self.results), default=10)
        lines = [f"conformance of {self.component}:"]
        for result in self.results:
            detail = f"  {result.detail}" if result.detail else ""
            lines.append(f"  {result.check:<{width}}  {result.status.upper():<7} {result.seconds:6.2f} s{detail}")
        return "\n".join(lines)


class ConformanceError(AssertionError):
    """Raised by :func:`check_component` when a check fails; ``report`` holds every result."""

    def __init__(self, report: ConformanceReport) -> None:
        self.report = report
        failed = ", ".join(result.check for result in report.failures)
        super().__init__(f"{report.component} fails {len(report.failures)} check(s): {failed}\n{report}")


# -- the component under test ------------------------------------------------------------------------


class Subject:
    """A component under test: its spec, the config the kit builds it with, and (lazily) the instance.

    Args:
        spec: the component's spec.
        overrides: config options of the tiny instance (default: ``spec.test_config``).
        device: where the instance is built and run (default ``"cpu"``).
        instance: an already built component to check instead of building one from the spec.
        spec_module: the module that defines the spec (what the entry point names), if known.
        test_instance: ``"working"`` or ``"placeholder"``: what the instance under test is (default: the spec's
            ``test_instance``, which describes ``test_config``; say ``"working"`` when ``overrides`` or
            ``instance`` bring trained weights). Checks of what outputs mean that only a working model can pass
            are skipped on placeholders.

    The first failure to validate the config or to build the instance is raised to the check that met it; every
    later check that needs them is skipped (:class:`CheckSkipped`) naming that failure.
    """

    def __init__(
        self,
        spec: ComponentSpec,
        *,
        overrides: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        instance: Any = None,
        spec_module: str | None = None,
        test_instance: Literal["working", "placeholder"] | None = None,
    ) -> None:
        if test_instance not in (None, "working", "placeholder"):
            raise ValueError(f"test_instance must be 'working' or 'placeholder', got {test_instance!r}")
        self.spec = spec
        self.overrides = dict(spec.test_config if overrides is None else overrides)
        self.device = torch.device(device)
        self.spec_module = spec_module or _module_defining(spec)
        self.test_instance = test_instance or spec.test_instance
        self._instance = instance
        if instance is not None:
            self.device = torch.device(instance.device)
        self._baseline: Any = None
        self._setup_failure: str | None = None

    @property
    def working(self) -> bool:
        """Whether the instance under test does its job (not random weights or a stand-in)."""
        return self.test_instance == "working"

    def require_working(self, what: str) -> None:
        """CheckSkipped unless the instance under test is working; ``what`` names what the check needs."""
        if not self.working:
            raise CheckSkipped(
                f"{what}, and this {self.spec.kind}'s test instance is a placeholder (spec.test_instance); "
                "to check it, run the kit with overrides that load trained weights and test_instance='working'"
            )

    def _set_up(self, step: str, make: Callable[[], Any]) -> Any:
        """``make()``; its first failure is raised, and later calls are skipped naming it."""
        if self._setup_failure is not None:
            raise CheckSkipped(f"not run: {self._setup_failure}")
        try:
            return make()
        except Exception as error:  # noqa: BLE001 - remembered, then raised to the check that met it
            if self._setup_failure is None:
                first_line = str(error).strip().split("\n")[0]
                self._setup_failure = f"{self.label} {step} ({type(error).__name__}: {first_line})"
            raise

    @property
    def label(self) -> str:
        return f"{self.spec.kind} {self.spec.name!r}"

    @property
    def config(self) -> BaseModel:
        if self._instance is not None:
            config: BaseModel = self._instance.config
            return config
        made: BaseModel = self._set_up("test_config does not validate", lambda: self.spec.make_config(self.overrides))
        return made

    @property
    def io(self) -> tuple[Any, Any]:
        return self.spec.resolve_io(self.config)

    def build(self, device: str | torch.device | None = None) -> Any:
        """A fresh tiny instance (network access blocked while it builds)."""
        with offline():
            return build_component(self.spec, self.config.model_dump(), device=device or self.device)

    @property
    def component(self) -> Any:
        """The instance shared by the behavioural checks (built on first use)."""
        if self._instance is None:
            self._instance = self._set_up("could not be built", self.build)
        return self._instance

    # -- probe inputs ---------------------------------------------------------------------------------

    def probe_batch(self) -> Any:
        """A batch of two items of different sizes: Waveform (encoder), (texts, embedding), or Mel."""
        input_spec = self.io[0]
        if self.spec.kind == "encoder":
            seconds = max(0.5, 1.25 * input_spec.min_duration_s)
            return Waveform.from_numpy(
                [
                    speech_like(seconds * 1.6, input_spec.sample_rate, 130.0),
                    speech_like(seconds, input_spec.sample_rate),
                ],
                input_spec.sample_rate,
            )
        if self.spec.kind == "synthesizer":
            return list(PROBE_TEXTS), probe_embedding(input_spec, len(PROBE_TEXTS))
        return probe_mel(input_spec, PROBE_FRAMES)

    def probe_items(self) -> list[Any]:
        """The probe batch as batches of one, item by item."""
        batch = self.probe_batch()
        if self.spec.kind == "encoder":
            return [Waveform.from_numpy(item, batch.sample_rate) for item in batch.items()]
        if self.spec.kind == "synthesizer":
            texts, embedding = batch
            return [([text], embedding.select(index)) for index, text in enumerate(texts)]
        return [batch.select(index) for index in range(batch.batch_size)]

    def call(self, inputs: Any, *, seed: int | None = KIT_SEED, component: Any = None) -> Any:
        """Run the component's main method on ``inputs`` (``seed`` is ignored by encoders)."""
        target = self.component if component is None else component
        if self.spec.kind == "encoder":
            return target.embed(inputs)
        if self.spec.kind == "synthesizer":
            texts, embedding = inputs
            return target.synthesize(texts, embedding, seed=seed)
        return target.vocode(inputs, seed=seed)

    def baseline(self) -> Any:
        """The output for the probe batch with the kit's seed (computed once)."""
        if self._baseline is None:
            with seeded(KIT_SEED):
                self._baseline = self.call(self.probe_batch())
        return self._baseline


def probe_embedding(spec: EmbeddingSpec, count: int) -> SpeakerEmbedding:
    """``count`` random vectors of ``spec`` (unit norm when the space is L2-normalised)."""
    generator = torch.Generator().manual_seed(7)
    vectors = torch.randn(count, spec.dim, generator=generator)
    if spec.l2_normalized:
        vectors = vectors / vectors.norm(dim=1, keepdim=True)
    return SpeakerEmbedding(vectors, spec)


def probe_mel(spec: MelSpec, frames: Sequence[int]) -> Mel:
    """Mels of speech-like audio, exactly ``frames`` frames each, computed with ``spec``."""
    from vcframe.audio import mel_spectrogram

    items = []
    for index, count in enumerate(frames):
        samples = speech_like(count * spec.hop_length / spec.sample_rate + 0.05, spec.sample_rate, 110.0 + 40 * index)
        items.append(mel_spectrogram(samples, spec)[:, :count])
    return Mel.from_numpy(items, spec)


# -- helpers ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Block network connections (not Unix sockets) and name lookups while the block runs."""
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def refuse(address: Any) -> NetworkAccessError:
        return NetworkAccessError(
            f"network access to {address!r} during a conformance check; components must not download"
        )

    def connect(self: socket.socket, address: Any) -> None:
        if self.family == getattr(socket, "AF_UNIX", None):
            return original_connect(self, address)
        raise refuse(address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family == getattr(socket, "AF_UNIX", None):
            return original_connect_ex(self, address)
        raise refuse(address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise refuse(host)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = original_getaddrinfo


def _module_defining(spec: ComponentSpec) -> str | None:
    """The module that holds ``spec``: the one an installed entry point names, else an imported module of
    the factory's top-level package holding it as a top-level name (the deepest such module)."""
    from importlib import metadata

    from vcframe.discovery import GROUPS

    for entry in metadata.entry_points(group=GROUPS[spec.kind]):
        if entry.name != spec.name:
            continue
        module_name = entry.value.partition(":")[0]
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - a broken entry point is not this spec's module
            continue
        if any(value is spec or value == spec for value in vars(module).values()):
            return module_name
    package = spec.factory.partition(":")[0].split(".")[0]
    found = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] != package or module is None:
            continue
        try:
            if any(value is spec for value in vars(module).values()):
                found.append(name)
        except TypeError:
            continue
    return max(found, key=lambda name: (name.count("."), name)) if found else None


def _tensors(output: Any) -> dict[str, torch.Tensor]:
    """The tensors an output carries, by field name."""
    if isinstance(output, SpeakerEmbedding):
        return {"vector": output.vector}
    if isinstance(output, Mel):
        tensors = {"frames": output.frames, "lengths": output.lengths}
        if output.alignment is not None:
            tensors["alignment"] = output.alignment
        return tensors
    if isinstance(output, Waveform):
        return {"samples": output.samples, "lengths": output.lengths}
    raise CheckFailed(f"output is a {type(output).__name__}, not a vcframe Waveform, Mel or SpeakerEmbedding")


def _items(output: Any) -> list[np.ndarray]:
    """Each item of an output cut to its valid length, as float64 numpy."""
    if isinstance(output, SpeakerEmbedding):
        return [row.astype(np.float64) for row in output.vector.detach().cpu().numpy()]
    return [output.item(index).astype(np.float64) for index in range(output.batch_size)]


def _compare(what: str, expected: list[np.ndarray], actual: list[np.ndarray], atol: float) -> None:
    if len(expected) != len(actual):
        raise CheckFailed(f"{what}: {len(expected)} items vs {len(actual)}")
    for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
        if left.shape != right.shape:
            raise CheckFailed(f"{what}: item {index} has shape {left.shape} vs {right.shape}")
        if left.size and not np.allclose(left, right, rtol=0, atol=atol, equal_nan=True):
            difference = float(np.max(np.abs(left - right)))
            raise CheckFailed(f"{what}: item {index} differs by up to {difference:.3g} (tolerance {atol:g})")


def _snapshot(inputs: Any) -> list[Any]:
    """Deep copies of everything an input holds (tensors cloned)."""
    if isinstance(inputs, tuple):
        texts, embedding = inputs
        return [list(texts), embedding.vector.clone()]
    return [tensor.clone() for tensor in _tensors(inputs).values()]


def _same_device(actual: torch.device, requested: torch.device) -> bool:
    if actual.type != requested.type:
        return False
    return requested.index is None or actual.index in (None, requested.index)


def _raises_value_error(subject: Subject, description: str, call: Callable[[], Any]) -> None:
    try:
        output = call()
    except ValueError as error:
        message = str(error)
        if not message.strip() or "\n" in message.strip():
            raise CheckFailed(
                f"{description}: the ValueError's message should be one clear line, got {message!r}"
            ) from error
        return
    except Exception as error:  # noqa: BLE001 - any other exception is the failure being reported
        first_line = str(error).strip().split("\n")[0]
        raise CheckFailed(
            f"{description} raised {type(error).__name__} ({first_line}), not a ValueError "
            "(raise vcframe.errors.InputError)"
        ) from error
    raise CheckFailed(f"{description} returned a {type(output).__name__} instead of raising a ValueError")


def _rng_states() -> tuple[torch.Tensor, Any, Any]:
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _rng_unchanged(before: tuple[torch.Tensor, Any, Any]) -> list[str]:
    torch_state, numpy_state, python_state = before
    changed = []
    if not torch.equal(torch_state, torch.get_rng_state()):
        changed.append("torch")
    now: Any = np.random.get_state()
    if numpy_state[0] != now[0] or not np.array_equal(numpy_state[1], now[1]) or numpy_state[2:] != now[2:]:
        changed.append("numpy")
    if python_state != random.getstate():
        changed.append("random")
    return changed


# -- the checks ------------------------------------------------------------------------------------------


def check_spec_is_valid(subject: Subject) -> None:
    """The spec re-validates as a ComponentSpec; an io_resolver returns specs of the kind's types."""
    spec = subject.spec
    try:
        ComponentSpec.model_validate({**spec.model_dump(), "config_model": spec.config_model})
    except ValidationError as error:
        raise CheckFailed(f"the spec does not validate: {error.errors()[0]['msg']}") from error
    expected = {
        "encoder": (AudioSpec, EmbeddingSpec),
        "synthesizer": (EmbeddingSpec, MelSpec),
        "vocoder": (MelSpec, AudioSpec),
    }
    try:
        resolved = subject.io
    except ValidationError as error:
        raise CheckFailed(f"test_config does not validate: {error.errors()[0]['msg']}") from error
    for position, (value, wanted) in enumerate(zip(resolved, expected[spec.kind], strict=True)):
        if not isinstance(value, wanted):
            side = "input" if position == 0 else "output"
            raise CheckFailed(f"resolved {side} is a {type(value).__name__}, a {spec.kind} needs a {wanted.__name__}")


def check_api_version_supported(subject: Subject) -> None:
    """The spec's plugin API version is one this vcframe-core loads (same major version)."""
    accepted, message = api_compatibility(subject.spec.api_version)
    if not accepted:
        raise CheckFailed(message or f"API {subject.spec.api_version} is not supported")


def check_spec_module_imports_without_torch(subject: Subject) -> None:
    """Importing the spec module (in a fresh interpreter) imports no torch: 'plugins list' stays light."""
    module = subject.spec_module
    if module is None:
        raise CheckSkipped("cannot tell which module defines the spec; pass the spec object from its module")
    importer = _torch_importer(module)
    if importer is not None:
        via = f" (through {importer})" if importer != module else ""
        raise CheckFailed(
            f"importing {module} imports torch{via}; a spec module may import only pydantic and vcframe.specs "
            "(put model code in the factory's module)"
        )


_TORCH_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps('torch' in sys.modules))
"""


def _torch_importer(module: str) -> str | None:
    """None if importing ``module`` leaves torch unimported, else the module whose import pulled torch in."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if isinstance(path, str) and path)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _TORCH_PROBE, module],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        raise CheckFailed(f"importing {module} in a fresh interpreter fails: {last}")
    if json.loads(result.stdout.strip().splitlines()[-1]) is False:
        return None
    return _parent_of_torch(result.stderr) or module


def _parent_of_torch(importtime: str) -> str | None:
    """From ``-X importtime`` output (children before parents), the first non-torch module importing torch."""
    rows = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        name_column = line.split("|")[-1]
        stripped = name_column.lstrip()
        rows.append(((len(name_column) - len(stripped)) // 2, stripped.strip()))
    for position, (depth, name) in enumerate(rows):
        if name != "torch":
            continue
        for parent_depth, parent in rows[position + 1 :]:
            if parent_depth < depth:
                return parent
    return None


def check_config_builds_with_defaults(subject: Subject) -> None:
    """The config model builds with no arguments (every option has a default)."""
    try:
        subject.spec.make_config()
    except ValidationError as error:
        missing = ", ".join(".".join(str(p) for p in issue["loc"]) for issue in error.errors())
        raise CheckFailed(f"the config model needs values for: {missing}; give every option a default") from error


def check_config_forbids_unknown_fields(subject: Subject) -> None:
    """An unknown option is refused (``model_config = ConfigDict(extra="forbid")``), so typos are caught."""
    try:
        subject.spec.make_config({**subject.overrides, "no_such_option_kit": 1})
    except ValidationError:
        return
    raise CheckFailed("the config model accepts an unknown option; set model_config = ConfigDict(extra='forbid')")


def check_config_exports_json_schema(subject: Subject) -> None:
    """The config model exports a JSON schema, and every option has a description ('plugins show')."""
    model = subject.spec.config_model
    try:
        json.dumps(model.model_json_schema())
    except Exception as error:  # noqa: BLE001 - any schema failure is the finding
        raise CheckFailed(f"the config model has no JSON schema: {type(error).__name__}: {error}") from error
    undocumented = [name for name, info in model.model_fields.items() if not (info.description or "").strip()]
    if undocumented:
        raise CheckFailed(f"options without a description: {', '.join(undocumented)} (use Field(..., description=))")


def check_builds_tiny_instance_offline(subject: Subject) -> None:
    """``test_config`` builds a tiny instance with no download, satisfying the kind's protocol."""
    try:
        _ = subject.config  # validated once; a failure here skips the checks that need the instance
    except ValidationError as error:
        raise CheckFailed(f"test_config does not validate: {error.errors()[0]['msg']}") from error
    component = subject.component
    protocol = {"encoder": SpeakerEncoder, "synthesizer": Synthesizer, "vocoder": Vocoder}[subject.spec.kind]
    if not isinstance(component, protocol):
        raise CheckFailed(f"{type(component).__name__} does not implement vcframe.interfaces.{protocol.__name__}")
    if component.spec != subject.spec and component.spec.name != subject.spec.name:
        raise CheckFailed(f"the instance's spec is {component.spec.name!r}, not {subject.spec.name!r}")
    if not isinstance(component.config, subject.spec.config_model):
        raise CheckFailed(f"the instance's config is a {type(component.config).__name__}, not the spec's config model")


def check_output_types_and_specs(subject: Subject) -> None:
    """Outputs are the kind's typed tensors and carry the spec the component declares (resolved from config)."""
    output, output_spec = subject.baseline(), subject.io[1]
    kind = subject.spec.kind
    if kind == "encoder":
        _expect_type(output, SpeakerEmbedding)
        _expect_spec("embedding", output.spec, output_spec)
        if "speaker_embedding" in subject.spec.capabilities:
            speaker = subject.component.embed_speaker(subject.probe_batch())
            _expect_type(speaker, SpeakerEmbedding)
            if speaker.batch_size != 1:
                raise CheckFailed(f"embed_speaker returned {speaker.batch_size} embeddings, not one")
            _expect_spec("embed_speaker's embedding", speaker.spec, output_spec)
    elif kind == "synthesizer":
        _expect_type(output, Mel)
        _expect_spec("mel", output.spec, output_spec)
        if "alignment" in subject.spec.capabilities and output.alignment is None:
            raise CheckFailed("the spec declares 'alignment' but the mel carries no alignment")
    else:
        _expect_type(output, Waveform)
        if output.sample_rate != output_spec.sample_rate:
            raise CheckFailed(f"audio at {output.sample_rate} Hz, the spec declares {output_spec.sample_rate} Hz")


def _expect_type(output: Any, wanted: type) -> None:
    if not isinstance(output, wanted):
        raise CheckFailed(f"output is a {type(output).__name__}, not a {wanted.__name__}")


def _expect_spec(what: str, actual: Any, declared: Any) -> None:
    if actual != declared:
        fields = ", ".join(
            f"{name}: {mine!r} (output) vs {theirs!r} (spec)" for name, mine, theirs in actual.diff(declared)
        )
        raise CheckFailed(f"the {what} carries another spec than declared: {fields}")


def check_output_shapes_and_dtypes(subject: Subject) -> None:
    """Batch-first float32 outputs of the declared sizes, with one length per item."""
    output, output_spec = subject.baseline(), subject.io[1]
    batch = len(PROBE_TEXTS) if subject.spec.kind == "synthesizer" else 2
    tensors = _tensors(output)
    for name, tensor in tensors.items():
        expected_dtype = torch.int64 if name == "lengths" else torch.float32
        if tensor.dtype != expected_dtype:
            raise CheckFailed(f"{name} is {tensor.dtype}, not {expected_dtype}")
        if tensor.shape[0] != batch:
            raise CheckFailed(f"{name} has batch size {tensor.shape[0]} for {batch} inputs")
    if isinstance(output, SpeakerEmbedding) and tuple(output.vector.shape) != (batch, output_spec.dim):
        raise CheckFailed(f"vector has shape {tuple(output.vector.shape)}, expected ({batch}, {output_spec.dim})")
    if isinstance(output, Mel):
        if output.frames.shape[1] != output_spec.n_mels:
            raise CheckFailed(f"frames have {output.frames.shape[1]} bands, the spec declares {output_spec.n_mels}")
        if int(output.lengths.min()) < 1:
            raise CheckFailed(f"a mel has no frames (lengths {output.lengths.tolist()})")
        if output.alignment is not None and output.alignment.dim() != 3:
            raise CheckFailed(f"alignment has shape {tuple(output.alignment.shape)}, expected (B, steps, characters)")
    if isinstance(output, Waveform) and int(output.lengths.min()) < 1:
        raise CheckFailed(f"a waveform has no samples (lengths {output.lengths.tolist()})")


def check_output_values_finite(subject: Subject) -> None:
    """No NaN or infinity; audio within [-1, 1]; embeddings unit-norm when the space is L2-normalised."""
    output, output_spec = subject.baseline(), subject.io[1]
    for index, item in enumerate(_items(output)):
        if not np.isfinite(item).all():
            raise CheckFailed(f"output item {index} holds NaN or infinite values")
    if isinstance(output, Mel) and output.alignment is not None and not torch.isfinite(output.alignment).all():
        raise CheckFailed("the alignment holds NaN or infinite values")
    if isinstance(output, Waveform):
        peak = max(float(np.max(np.abs(item))) for item in _items(output))
        if peak > 1.0:
            raise CheckFailed(f"audio peaks at {peak:.3f}, outside [-1, 1] (clip or normalise it)")
    if isinstance(output, SpeakerEmbedding) and output_spec.l2_normalized:
        norms = output.vector.norm(dim=1)
        if not torch.allclose(norms, torch.ones_like(norms), atol=1e-4):
            raise CheckFailed(f"embedding norms are {norms.tolist()}, the space is L2-normalised")


def check_output_length(subject: Subject) -> None:
    """A vocoder returns ``frames x hop_length`` samples per item (within the spec's declared padding)."""
    mel = subject.probe_batch()
    output = subject.baseline()
    hop, padding = mel.spec.hop_length, subject.spec.length_padding_samples
    for index, (frames, samples) in enumerate(zip(mel.lengths.tolist(), output.lengths.tolist(), strict=True)):
        if abs(samples - frames * hop) > padding:
            allowed = f" +- {padding}" if padding else ""
            raise CheckFailed(
                f"item {index}: {frames} frames gave {samples} samples, expected {frames} x {hop} = {frames * hop}"
                f"{allowed} (declare a difference with length_padding_samples in the spec)"
            )


def check_batched_equals_item_by_item(subject: Subject) -> None:
    """A batch gives the same items as one call per item (padding never leaks into results)."""
    atol = ATOL[subject.spec.kind]
    batch = subject.baseline()
    singles = []
    for inputs in subject.probe_items():
        with seeded(KIT_SEED):
            singles.extend(_items(subject.call(inputs)))
    _compare("batch vs item-by-item", singles, _items(batch), atol)


def check_reproducible_with_seed(subject: Subject) -> None:
    """The same seed gives the same output whatever the global random state, and leaves that state alone.

    Encoders take no seed: their output must not depend on the global random state at all.
    """
    inputs = subject.probe_batch()
    outputs = []
    for global_seed in (11, 98765):
        with seeded(global_seed):
            outputs.append(_items(subject.call(inputs)))
    what = "two calls" if subject.spec.kind == "encoder" else f"two calls with seed={KIT_SEED}"
    try:
        _compare(f"{what} under different global random states", outputs[0], outputs[1], ATOL[subject.spec.kind])
    except CheckFailed as failure:
        hint = "" if subject.spec.kind == "encoder" else " (draw random numbers under vcframe.seeding.seeded(seed))"
        raise CheckFailed(f"{failure}{hint}") from None
    if subject.spec.kind != "encoder":
        before = _rng_states()
        subject.call(inputs)
        changed = _rng_unchanged(before)
        if changed:
            raise CheckFailed(
                f"a call with seed={KIT_SEED} changed the caller's global random state ({', '.join(changed)}); "
                "use vcframe.seeding.seeded(seed) or a torch.Generator"
            )


def check_inputs_not_mutated(subject: Subject) -> None:
    """Calls leave their inputs exactly as they were."""
    inputs = subject.probe_batch()
    before = _snapshot(inputs)
    subject.call(inputs)
    after = _snapshot(inputs)
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        same = old == new if isinstance(old, list) else (old.shape == new.shape and torch.equal(old, new))
        if not same:
            names = ["texts", "embedding"] if isinstance(inputs, tuple) else list(_tensors(inputs))
            raise CheckFailed(f"the call modified its input's {names[index]} in place")


def check_empty_input_raises_value_error(subject: Subject) -> None:
    """Empty input (no items, or an item with nothing in it) raises a ValueError with a one-line message."""
    input_spec = subject.io[0]
    kind = subject.spec.kind
    cases: list[tuple[str, Callable[[], Any]]]
    if kind == "encoder":
        rate = input_spec.sample_rate
        cases = [
            ("an empty clip", lambda: subject.call(Waveform(torch.zeros(1, 0), rate))),
            ("an empty batch", lambda: subject.call(Waveform(torch.zeros(0, rate), rate))),
        ]
    elif kind == "synthesizer":
        one = probe_embedding(input_spec, 1)
        cases = [
            ("no texts", lambda: subject.call(([], one))),
            ("an empty text", lambda: subject.call(([""], one))),
            ("a blank text", lambda: subject.call((["   "], one))),
        ]
    else:
        bands = input_spec.n_mels
        cases = [
            ("a mel with no frames", lambda: subject.call(Mel(torch.zeros(1, bands, 0), input_spec))),
            ("an empty batch of mels", lambda: subject.call(Mel(torch.zeros(0, bands, 4), input_spec))),
        ]
    for description, call in cases:
        _raises_value_error(subject, description, call)


def check_too_short_input_handled(subject: Subject) -> None:
    """Input below the declared minimum raises a ValueError; the shortest legal input works.

    Encoders: a clip half the spec's ``min_duration_s`` must raise. Synthesizers: a one-letter text, and
    vocoders: a one-frame mel, must give one non-empty finite item or a ValueError, never another exception
    (the output's length is ``output_length``'s business).
    """
    input_spec, kind = subject.io[0], subject.spec.kind
    if kind == "encoder" and input_spec.min_duration_s > 0:
        samples = max(1, int(input_spec.min_duration_s * input_spec.sample_rate / 2))
        clip = Waveform.from_numpy(
            speech_like(samples / input_spec.sample_rate, input_spec.sample_rate), input_spec.sample_rate
        )
        _raises_value_error(subject, f"a clip of {samples} samples (below min_duration_s)", lambda: subject.call(clip))
        return
    inputs: Any
    if kind == "encoder":
        description, inputs = "a one-sample clip", Waveform(torch.full((1, 1), 0.1), input_spec.sample_rate)
    elif kind == "synthesizer":
        description, inputs = "a one-letter text", (["a"], probe_embedding(input_spec, 1))
    else:
        description, inputs = "a one-frame mel", probe_mel(input_spec, (1,))
    try:
        output = subject.call(inputs)
    except ValueError:
        return
    except Exception as error:  # noqa: BLE001 - reported
        first_line = str(error).strip().split("\n")[0]
        raise CheckFailed(
            f"{description} raised {type(error).__name__} ({first_line}); give an output or raise a ValueError"
        ) from error
    items = _items(output)
    if len(items) != 1 or not items[0].size or not np.isfinite(items[0]).all():
        raise CheckFailed(f"{description} gave {len(items)} items, an empty item or non-finite values")


def check_streaming_matches_vocode(subject: Subject) -> None:
    """``vocode_stream`` yields more than one (1, n) chunk, and the chunks concatenate to ``vocode``'s output."""
    component = subject.component
    if not isinstance(component, StreamingVocoder):
        raise CheckFailed("the spec declares 'streaming' but the component has no vocode_stream method")
    mel = probe_mel(subject.io[0], (STREAM_FRAMES,))
    with seeded(KIT_SEED):
        whole = subject.call(mel).item(0).astype(np.float64)
    with seeded(KIT_SEED):
        chunks = list(component.vocode_stream(mel, seed=KIT_SEED))
    for index, chunk in enumerate(chunks):
        _expect_type(chunk, Waveform)
        if chunk.batch_size != 1:
            raise CheckFailed(f"chunk {index} holds {chunk.batch_size} items, not one")
        if not _same_device(chunk.samples.device, subject.device):
            raise CheckFailed(f"chunk {index} is on {chunk.samples.device}, the component on {subject.device}")
    if len(chunks) < 2:
        raise CheckFailed(
            f"vocode_stream yielded {len(chunks)} chunk(s) for {STREAM_FRAMES} frames; it does not stream"
        )
    joined = np.concatenate([chunk.item(0).astype(np.float64) for chunk in chunks])
    tolerance = subject.spec.streaming_tolerance
    if joined.shape != whole.shape:
        raise CheckFailed(f"the chunks add up to {len(joined)} samples, vocode gives {len(whole)}")
    if subject.spec.streaming_spectrum_db is not None:
        from vcframe.audio import mel_spectrogram

        mel_spec = subject.io[0]
        distance = frame_spectral_distance(
            mel_spectrogram(whole, mel_spec), mel_spectrogram(joined, mel_spec), mel_spec
        )
        if not distance <= subject.spec.streaming_spectrum_db:
            raise CheckFailed(
                f"the chunks' mel differs from vocode's output's by {distance:.2f} dB in its worst frame (declared "
                f"streaming_spectrum_db {subject.spec.streaming_spectrum_db:g})"
            )
        return
    difference = float(np.nanmax(np.abs(joined - whole))) if whole.size else 0.0
    if not np.allclose(joined, whole, rtol=0, atol=tolerance, equal_nan=True):
        raise CheckFailed(
            f"the chunks differ from vocode's output by up to {difference:.3g} (declared streaming_tolerance "
            f"{tolerance:g})"
        )


def check_output_on_requested_device(subject: Subject) -> None:
    """Built on a device, a component returns its outputs there (and CUDA works when declared and present)."""
    devices = [subject.device]
    if subject.device.type != "cuda" and "cuda" in subject.spec.capabilities and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    for device in devices:
        component = subject.component if device == subject.device else subject.build(device)
        if not _same_device(torch.device(component.device), device):
            raise CheckFailed(f"built for {device}, the component reports device {component.device}")
        with seeded(KIT_SEED):
            output = subject.call(subject.probe_batch(), component=component)
        for name, tensor in _tensors(output).items():
            if not _same_device(tensor.device, device):
                raise CheckFailed(f"on {device}, the output's {name} is on {tensor.device}")


def check_silent_mel_gives_near_silence(subject: Subject) -> None:
    """Vocoders: a silent mel gives near-silence, RMS under -45 dBFS and peak under -30 dBFS (working instances).

    The mel holds the spec's ``silence_value`` in every bin for :data:`SILENT_FRAMES` frames. A vocoder that
    scales every output to a fixed peak turns it into loud noise.
    """
    subject.require_working("only a working vocoder can be asked for silence")
    spec = subject.io[0]
    silent = Mel(torch.full((1, spec.n_mels, SILENT_FRAMES), spec.silence_value), spec)
    with seeded(KIT_SEED):
        samples = subject.call(silent).item(0).astype(np.float64)
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if rms > SILENCE_RMS or peak > SILENCE_PEAK:
        raise CheckFailed(
            f"a silent mel ({SILENT_FRAMES} frames at {spec.silence_value:g}) gave RMS {rms:.3g} "
            f"({_decibels(rms):.0f} dBFS) and peak {peak:.3g}; near-silence is RMS under {SILENCE_RMS:.2g} "
            f"(-45 dBFS) and peak under {SILENCE_PEAK:.2g} (-30 dBFS): does the vocoder normalise every output "
            "to a fixed peak?"
        )


def check_resynthesizes_known_signal(subject: Subject) -> None:
    """Vocoders: from the core's mel of a known signal, the output has its spectrum and level (working instances).

    The signal is :func:`~vcframe.testing.signals.band_noise`: 1 s of noise in eight quarter-octave bands from
    300 Hz (or twice fmin) to 0.85 fmax, peaking at 0.9. Its mel, computed by :func:`vcframe.audio.mel_spectrogram`
    with the vocoder's input spec, is vocoded; the mel of the output is compared with it. The long-term spectra
    must agree within :data:`RESYNTHESIS_MAX_DB` dB (shape, level removed) and the RMS levels within
    :data:`RESYNTHESIS_MAX_LEVEL_DB` dB. A forgotten de-emphasis tilts the spectrum; a declared fmax other than
    the one the vocoder uses moves every band.
    """
    from vcframe.audio import mel_spectrogram

    subject.require_working("only a working vocoder can resynthesise a signal")
    spec = subject.io[0]
    high = 0.85 * spec.fmax
    low = min(max(300.0, 2 * spec.fmin), high / 4)
    probe = band_noise(RESYNTHESIS_SECONDS, spec.sample_rate, low, high).astype(np.float64)
    frames = len(probe) // spec.hop_length
    mel_values = mel_spectrogram(probe, spec)[:, :frames]
    with seeded(KIT_SEED):
        output = subject.call(Mel.from_numpy([mel_values], spec)).item(0).astype(np.float64)
    length = min(len(output), frames * spec.hop_length)
    level = _decibels(_rms(output[:length])) - _decibels(_rms(probe[:length]))
    if not abs(level) <= RESYNTHESIS_MAX_LEVEL_DB:
        raise CheckFailed(
            f"resynthesised band noise (RMS {_rms(probe[:length]):.3g}) comes back at RMS {_rms(output[:length]):.3g}, "
            f"{level:+.1f} dB (allowed: +-{RESYNTHESIS_MAX_LEVEL_DB:g} dB): is the output scaled as the mel says?"
        )
    resynthesised = mel_spectrogram(output[:length], spec)
    compared = min(frames, resynthesised.shape[1])
    distance = spectral_distance(mel_values[:, :compared], resynthesised[:, :compared], spec)
    if distance > RESYNTHESIS_MAX_DB:
        undo = f", and undo its pre-emphasis ({spec.preemphasis:g})" if spec.preemphasis else ""
        raise CheckFailed(
            f"resynthesised band noise has another spectrum: {distance:.1f} dB from the probe's (allowed: "
            f"{RESYNTHESIS_MAX_DB:g} dB); does the vocoder read the mel with the spec it declares (fmax "
            f"{spec.fmax:g} Hz, {spec.n_mels} bands){undo}?"
        )


def check_same_signal_embeds_closer(subject: Subject) -> None:
    """Encoders: two clips of one signal are closer (cosine) than a different signal, by at least 0.05.

    The clips are two excerpts (0.33 s apart) of a speech-like signal at 120 Hz and one of the same signal at
    300 Hz, each 2.5 s or 1.5 times ``min_duration_s``. Any working encoder passes, and so do random networks
    (measured), so this runs on placeholders too.
    """
    spec = subject.io[0]
    rate = spec.sample_rate
    seconds = max(2.5, 1.5 * spec.min_duration_s)
    count = int(seconds * rate)
    signal = speech_like(2 * seconds + 0.33, rate, 120.0)
    first, second = signal[:count], signal[int((seconds + 0.33) * rate) :][:count]
    other = speech_like(seconds, rate, 300.0)[:count]
    vectors = subject.call(Waveform.from_numpy([first, second, other], rate)).vector.detach().cpu().double().numpy()
    norms = np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
    same = float(vectors[0] @ vectors[1] / (norms[0] * norms[1]))
    different = float(vectors[0] @ vectors[2] / (norms[0] * norms[2]))
    if same - different < SIMILARITY_MARGIN:
        raise CheckFailed(
            f"two clips of one signal have similarity {same:.3f}, a different signal {different:.3f}: a margin of "
            f"{same - different:.3f}, under {SIMILARITY_MARGIN:g}; does the embedding depend on the sound?"
        )


def spectral_distance(reference: np.ndarray, other: np.ndarray, spec: MelSpec, *, within_db: float = 30.0) -> float:
    """Mean absolute difference in dB between the long-term spectra of two (n_mels, frames) mels of ``spec``.

    Each mel's power per band is averaged over its frames; the comparison covers the bands of ``reference``
    within ``within_db`` (default 30) dB of its loudest, after removing the median difference (so a level change
    alone gives 0).
    """
    reference_db, other_db = _long_term_db(reference, spec), _long_term_db(other, spec)
    bands = reference_db >= reference_db.max() - within_db
    difference = other_db[bands] - reference_db[bands]
    return float(np.mean(np.abs(difference - np.median(difference))))


def frame_spectral_distance(
    reference: np.ndarray, other: np.ndarray, spec: MelSpec, *, within_db: float = 30.0
) -> float:
    """The largest over frames of the mean absolute difference in dB between two (n_mels, frames) mels of
    ``spec`` (the shorter length), over the cells of ``reference`` within ``within_db`` (default 30) dB of its
    loudest cell, after removing the median difference over those cells (a level change alone gives 0). Unlike
    :func:`spectral_distance` it sees where in time two signals differ: a 25 ms gap in a 0.4 s Griffin-Lim
    output gives 7.1-7.4 dB, the same mel vocoded with another seed 3.3 dB."""
    from vcframe.audio import mel_values_to_amplitude

    frames = min(reference.shape[1], other.shape[1])

    def decibels(mel_values: np.ndarray) -> np.ndarray:
        amplitude = mel_values_to_amplitude(mel_values[:, :frames], spec) ** (1.0 / spec.magnitude_power)
        return np.asarray(20.0 * np.log10(np.maximum(amplitude, 1e-15)))

    reference_db, other_db = decibels(reference), decibels(other)
    cells = reference_db >= reference_db.max() - within_db
    difference = np.abs(other_db - reference_db - np.median((other_db - reference_db)[cells]))
    per_frame = [float(difference[cells[:, frame], frame].mean()) for frame in range(frames) if cells[:, frame].any()]
    return max(per_frame)


def _long_term_db(mel_values: np.ndarray, spec: MelSpec) -> np.ndarray:
    """(n_mels,) mean power per band over the frames of a (n_mels, frames) mel, in dB."""
    from vcframe.audio import mel_values_to_amplitude

    power = mel_values_to_amplitude(mel_values, spec) ** (2.0 / spec.magnitude_power)
    return np.asarray(10.0 * np.log10(np.maximum(power.mean(axis=1), 1e-30)))


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def _decibels(amplitude: float) -> float:
    return 20.0 * float(np.log10(max(amplitude, 1e-12)))


@dataclass(frozen=True)
class CheckDefinition:
    """A check, and which components it applies to."""

    name: str
    function: Callable[[Subject], None]
    applies: Callable[[ComponentSpec], bool] = lambda spec: True

    @property
    def description(self) -> str:
        return (self.function.__doc__ or "").strip().split("\n")[0]


#: Every check, in the order they run.
CHECKS: tuple[CheckDefinition, ...] = (
    CheckDefinition("spec_is_valid", check_spec_is_valid),
    CheckDefinition("api_version_supported", check_api_version_supported),
    CheckDefinition("spec_module_imports_without_torch", check_spec_module_imports_without_torch),
    CheckDefinition("config_builds_with_defaults", check_config_builds_with_defaults),
    CheckDefinition("config_forbids_unknown_fields", check_config_forbids_unknown_fields),
    CheckDefinition("config_exports_json_schema", check_config_exports_json_schema),
    CheckDefinition("builds_tiny_instance_offline", check_builds_tiny_instance_offline),
    CheckDefinition("output_types_and_specs", check_output_types_and_specs),
    CheckDefinition("output_shapes_and_dtypes", check_output_shapes_and_dtypes),
    CheckDefinition("output_values_finite", check_output_values_finite),
    CheckDefinition("output_length", check_output_length, lambda spec: spec.kind == "vocoder"),
    CheckDefinition("batched_equals_item_by_item", check_batched_equals_item_by_item),
    CheckDefinition("reproducible_with_seed", check_reproducible_with_seed),
    CheckDefinition("inputs_not_mutated", check_inputs_not_mutated),
    CheckDefinition("empty_input_raises_value_error", check_empty_input_raises_value_error),
    CheckDefinition("too_short_input_handled", check_too_short_input_handled),
    CheckDefinition(
        "streaming_matches_vocode",
        check_streaming_matches_vocode,
        lambda spec: spec.kind == "vocoder" and "streaming" in spec.capabilities,
    ),
    CheckDefinition("output_on_requested_device", check_output_on_requested_device),
    CheckDefinition(
        "silent_mel_gives_near_silence", check_silent_mel_gives_near_silence, lambda spec: spec.kind == "vocoder"
    ),
    CheckDefinition(
        "resynthesizes_known_signal", check_resynthesizes_known_signal, lambda spec: spec.kind == "vocoder"
    ),
    CheckDefinition("same_signal_embeds_closer", check_same_signal_embeds_closer, lambda spec: spec.kind == "encoder"),
)
CHECK_NAMES = tuple(definition.name for definition in CHECKS)


# -- running checks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentCheck:
    """One check bound to one component; call it to run it (pytest shows ``id``)."""

    definition: CheckDefinition
    subject: Subject
    expected_failure: str | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def id(self) -> str:
        return f"{self.subject.spec.name}-{self.name}"

    def run(self) -> None:
        """Run the check: CheckFailed (an AssertionError) or CheckSkipped when it does not hold or apply."""
        with offline():
            self.definition.function(self.subject)

    def __call__(self) -> None:
        """Run the check; under pytest a CheckSkipped becomes a skip."""
        try:
            self.run()
        except CheckSkipped as skip:
            if "pytest" in sys.modules:
                import pytest

                pytest.skip(f"{self.id}: {skip}")
            raise

    def __repr__(self) -> str:
        return self.id


ComponentLike = ComponentSpec | str | Any
ExpectedFailures = Mapping[str, str] | Callable[[ComponentSpec], Mapping[str, str] | None] | None
TestInstance = Literal["working", "placeholder"] | None


def resolve_subject(
    component_or_name: ComponentLike,
    *,
    registry: Registry | None = None,
    overrides: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    test_instance: TestInstance = None,
) -> Subject:
    """A :class:`Subject` from a spec, a built component, or a name (``name``, ``kind/name``, ``dist:name``)."""
    if isinstance(component_or_name, Subject):
        return component_or_name
    if isinstance(component_or_name, ComponentSpec):
        return Subject(component_or_name, overrides=overrides, device=device, test_instance=test_instance)
    if isinstance(component_or_name, str):
        found = default_registry() if registry is None else registry
        kind, _, name = component_or_name.rpartition("/")
        candidates = [kind] if kind else list(KINDS)
        rows = []
        for candidate in candidates:
            rows += [row for row in found.of_kind(candidate) if name in (row.name, row.qualified_name)]
        if not rows:
            raise ValueError(f"no installed component named {component_or_name!r} (see 'vcframe plugins list')")
        if len(rows) > 1:
            choices = ", ".join(f"{row.kind}/{row.qualified_name}" for row in rows)
            raise ValueError(f"{component_or_name!r} is ambiguous: {choices}; write KIND/NAME or DISTRIBUTION:NAME")
        row = rows[0]
        found_spec = found.get(row.kind, row.qualified_name)
        module = None if row.entry_point.startswith("<") else row.entry_point.partition(":")[0]
        return Subject(found_spec, overrides=overrides, device=device, spec_module=module, test_instance=test_instance)
    spec = getattr(component_or_name, "spec", None)
    if not isinstance(spec, ComponentSpec):
        raise TypeError(
            f"check a ComponentSpec, a component name or a built component, not a {type(component_or_name).__name__}"
        )
    return Subject(spec, overrides=overrides, instance=component_or_name, test_instance=test_instance)


def _expected_for(spec: ComponentSpec, expected_failures: ExpectedFailures) -> dict[str, str]:
    chosen = expected_failures(spec) if callable(expected_failures) else expected_failures
    chosen = dict(chosen or {})
    unknown = sorted(set(chosen) - set(CHECK_NAMES))
    if unknown:
        raise ValueError(f"expected_failures names unknown checks {unknown}; known checks: {', '.join(CHECK_NAMES)}")
    for name, reason in chosen.items():
        if not str(reason).strip():
            raise ValueError(f"expected failure {name!r} needs a reason")
    return chosen


def iter_checks(
    component_or_name: ComponentLike,
    *,
    expected_failures: ExpectedFailures = None,
    overrides: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    registry: Registry | None = None,
    test_instance: TestInstance = None,
) -> Iterator[ComponentCheck]:
    """The checks that apply to a component, one :class:`ComponentCheck` per property."""
    subject = resolve_subject(
        component_or_name, registry=registry, overrides=overrides, device=device, test_instance=test_instance
    )
    expected = _expected_for(subject.spec, expected_failures)
    for definition in CHECKS:
        if definition.applies(subject.spec):
            yield ComponentCheck(definition, subject, expected.get(definition.name))


def check_component(
    component_or_name: ComponentLike,
    *,
    expected_failures: ExpectedFailures = None,
    overrides: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    registry: Registry | None = None,
    raise_on_failure: bool = True,
    test_instance: TestInstance = None,
) -> ConformanceReport:
    """Run every check that applies to a component and report each result.

    Args:
        component_or_name: a ComponentSpec, a built component, or an installed component's name
            (``griffinlim``, ``vocoder/griffinlim``, ``vcframe-griffinlim:griffinlim``).
        expected_failures: ``{check name: reason}`` of deliberate, documented departures (or a function of
            the spec giving that mapping). Such a check failing is ``xfailed``; passing is ``xpassed``, an error.
        overrides: config options of the instance under test (default: the spec's ``test_config``).
        device: where the instance is built and run.
        registry: where names are looked up (default: the current registry, i.e. installed entry points).
        raise_on_failure: raise :class:`ConformanceError` when a check fails (default) or just report.
        test_instance: ``"working"`` or ``"placeholder"`` (default: the spec's ``test_instance``): whether the
            checks of what outputs mean that need a working model run. Say ``"working"`` when ``overrides`` or a
            built component bring trained weights.

    Once the component's config fails to validate or the component fails to build, the checks that need it are
    reported as skipped, naming that failure: one failure, not one per check.
    """
    checks = list(
        iter_checks(
            component_or_name,
            expected_failures=expected_failures,
            overrides=overrides,
            device=device,
            registry=registry,
            test_instance=test_instance,
        )
    )
    subject = checks[0].subject
    report = ConformanceReport(f"{subject.spec.kind}/{subject.spec.name}")
    for check in checks:
        report.results.append(_run_one(check))
    if raise_on_failure and not report.ok:
        raise ConformanceError(report)
    return report


def _run_one(check: ComponentCheck) -> CheckResult:
    component = f"{check.subject.spec.kind}/{check.subject.spec.name}"
    started = time.perf_counter()
    status: Status = "passed"
    detail = ""
    try:
        check.run()
    except CheckSkipped as skip:
        status, detail = "skipped", str(skip)
    except Exception as error:  # noqa: BLE001 - every failure is reported, not raised
        message = str(error) if isinstance(error, AssertionError) else f"{type(error).__name__}: {error}"
        first_line = message.strip().split("\n")[0]
        if check.expected_failure is not None:
            status, detail = "xfailed", f"{check.expected_failure} ({first_line})"
        else:
            status, detail = "failed", first_line
    else:
        if check.expected_failure is not None:
            status = "xpassed"
            detail = f"passes now: remove it from expected_failures ({check.expected_failure})"
    return CheckResult(component, check.name, status, detail, time.perf_counter() - started)


def parametrize_with_checks(
    components: Sequence[ComponentLike],
    *,
    expected_failures: ExpectedFailures = None,
    overrides: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    test_instance: TestInstance = None,
) -> Any:
    """A pytest decorator: one test per (component, check), with ids like ``griffinlim-output_length``.

    The decorated test takes one argument, ``check``, and calls it::

        @parametrize_with_checks([SPEC], expected_failures={"output_length": "why"})
        def test_conformance(check):
            check()

    Expected failures become strict xfails (a check that starts passing fails the run until it is removed).
    Names are looked up when the module is collected; instances are built when the first check runs. The
    arguments are :func:`check_component`'s.
    """
    import pytest

    params = []
    for component in components:
        checks = iter_checks(
            component,
            expected_failures=expected_failures,
            overrides=overrides,
            device=device,
            test_instance=test_instance,
        )
        for check in checks:
            marks = [pytest.mark.xfail(reason=check.expected_failure, strict=True)] if check.expected_failure else []
            params.append(pytest.param(check, id=check.id, marks=marks))
    return pytest.mark.parametrize("check", params)
