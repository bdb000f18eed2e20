"""The HiFi-GAN vocoder component: weights from config, mel -> waveform, batched and streaming.

Checkpoints (SPEC section 5): an original generator file (``{"generator": state_dict}``, weight-normalised
or already folded keys, loaded with ``torch.load(weights_only=True)``) with its ``config.json``, or a
vcframe-hifigan safetensors file whose metadata records the generator sizes, the mel spec, the training
data, the steps and the licence (:func:`save_generator` writes one).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from vcframe.checkpoints import load_state, resolve, save_safetensors, uninitialised
from vcframe.cpu import cpu_has_bf16
from vcframe.errors import CheckpointError, InputError
from vcframe.interfaces import BaseVocoder, stream_chunks
from vcframe.specs import MelSpec
from vcframe.types import SPEAKER_EMBEDDING_KEY, Mel, SpeakerEmbedding, Waveform
from vcframe_hifigan.generator import Generator, receptive_field_frames, to_module_state, to_original_layout
from vcframe_hifigan.inference import PackedGenerator, packed_available
from vcframe_hifigan.spec import (
    CHECKPOINT_FORMAT,
    PRESETS,
    SIZE_FIELDS,
    SPEC,
    GeneratorConfig,
    HiFiGANConfig,
    check_fits,
    checkpoint_mel,
    original_config_path,
    read_original_config,
)

#: The top-level key of an original generator checkpoint (``g_XXXXXXXX``).
ORIGINAL_STATE_KEY = "generator"


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads (None: leave torch's setting), restoring it after."""
    previous = torch.get_num_threads()
    if count is None or count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_precision(requested: str) -> torch.dtype:
    """The dtype a vocoder computes in for ``precision``: ``auto`` picks bfloat16 where the CPU computes it
    natively (AMX or AVX-512 BF16, checked at run time), else float32."""
    if requested == "auto":
        return torch.bfloat16 if cpu_has_bf16() else torch.float32
    return torch.bfloat16 if requested == "bfloat16" else torch.float32


def _expected_shapes(config: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        network = Generator(config, weight_norm=False)
    return {key: tuple(value.shape) for key, value in network.state_dict().items()}


def describe_state(state: Mapping[str, torch.Tensor]) -> str:
    """Which generator config a state dict fits: ``'V1'``/``'V2'``/``'V3'``, or the sizes its shapes show.

    The upsample rates and the dilations are not stored in the weights, so a custom config is named by its
    channels and kernel sizes.
    """
    folded = to_module_state(state, weight_norm=False)
    shapes = {key: tuple(value.shape) for key, value in folded.items()}
    for name, preset in PRESETS.items():
        if _expected_shapes(preset) == shapes:
            return name.upper()
    conv_pre = shapes.get("conv_pre.weight")
    if conv_pre is None or len(conv_pre) != 3:
        return "no HiFi-GAN generator (it has no conv_pre.weight)"
    stages = sorted({int(key.split(".")[1]) for key in shapes if key.startswith("ups.")})
    kernels = [shapes[f"ups.{stage}.weight"][2] for stage in stages if f"ups.{stage}.weight" in shapes]
    blocks = sorted({int(key.split(".")[1]) for key in shapes if key.startswith("resblocks.")})
    per_stage = len(blocks) // max(1, len(stages))
    resblock = "1" if any(".convs1." in key for key in shapes) else "2"
    first = "convs1" if resblock == "1" else "convs"
    block_kernels = [
        shapes[f"resblocks.{block}.{first}.0.weight"][2]
        for block in blocks[:per_stage]
        if f"resblocks.{block}.{first}.0.weight" in shapes
    ]
    speaker = shapes.get("speaker_projection.weight")
    return (
        f"a generator with num_mels {conv_pre[1]}, upsample_initial_channel {conv_pre[0]}, upsample_kernel_sizes "
        f"{kernels}, resblock '{resblock}', resblock_kernel_sizes {block_kernels}"
        + (f", speaker_embedding_dim {speaker[1]}" if speaker else "")
    )


#: State keys of speaker conditioning (:class:`~vcframe_hifigan.generator.Generator`), which a conditioned run
#: started from unconditioned weights (``fit --init ... --speaker-embeddings``) begins without.
SPEAKER_KEYS = (
    "speaker_projection.weight",
    "speaker_projection.bias",
    "speaker_embedding_mean",
    "speaker_embedding_scale",
)


def load_generator_state(
    network: Generator, state: Mapping[str, torch.Tensor], source: str, *, add_speaker: bool = False
) -> None:
    """Load an original, folded or parametrized state dict into ``network``, refusing (in one line, naming the
    config the weights fit) missing or unexpected keys and shape mismatches. With ``add_speaker``, a conditioned
    ``network`` may take unconditioned weights: its :data:`SPEAKER_KEYS` keep their values (zero: the same
    function)."""
    converted = to_module_state(state, weight_norm=network.has_weight_norm)
    own = network.state_dict()
    if add_speaker and not any(key in converted for key in SPEAKER_KEYS):
        converted.update({key: own[key] for key in SPEAKER_KEYS if key in own})
    mismatched = sorted(set(own) ^ set(converted)) or [
        key for key, value in own.items() if tuple(converted[key].shape) != tuple(value.shape)
    ]
    if mismatched:
        raise CheckpointError(
            f"checkpoint {source!r} holds {describe_state(state)}, but the config builds "
            f"{network.config.describe()} (first difference: {mismatched[0]})",
            hint="choose the preset or sizes the checkpoint was trained with (its config.json: "
            "-o vocoder.hifigan.config_json=PATH)",
        )
    network.load_state_dict({key: converted[key].to(value.dtype) for key, value in own.items()}, strict=True)


def checkpoint_metadata(generator: GeneratorConfig, mel: MelSpec, **extra: Any) -> dict[str, Any]:
    """Metadata of a vcframe-hifigan safetensors file: format, generator sizes (config.json spelling), mel spec,
    and whatever ``extra`` adds (``training_data``, ``steps``, ``license``, ...)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config": generator.to_original(),
        "mel_spec": mel.model_dump(mode="json"),
        **extra,
    }


def save_generator(
    network: Generator, mel: MelSpec, path: str | os.PathLike[str], *, fold: bool = True, **metadata: Any
) -> None:
    """Write ``network`` as a vcframe-hifigan safetensors file, atomically.

    Args:
        network: the generator (with or without weight norm).
        mel: the mel spec it reads (recorded; the vocoder takes it from here).
        path: target file.
        fold (default True): store folded ``weight`` keys (inference; smaller); False keeps weight norm as the
            original's ``weight_g`` / ``weight_v`` keys (a training snapshot).
        metadata: recorded too, e.g. ``training_data="..."``, ``steps=2500``, ``license="MIT"``.
    """
    check_fits(network.config, mel)
    state = to_original_layout(network.state_dict())
    if fold:
        state = to_module_state(state, weight_norm=False)
    save_safetensors(state, path, checkpoint_metadata(network.config, mel, **metadata))


def _original_generator_config(
    config: HiFiGANConfig, path: Path, state: Mapping[str, torch.Tensor]
) -> GeneratorConfig | None:
    """The sizes of an original checkpoint: its config.json, else the released config its shapes fit."""
    json_path = original_config_path(path, config.config_json)
    if json_path.is_file() or config.config_json:
        values = read_original_config(json_path)
        try:
            return GeneratorConfig.from_original(values)
        except ValueError as error:
            message = str(error).splitlines()[0]
            raise CheckpointError(
                f"HiFi-GAN config {str(json_path)!r}: {message}", hint="give the original config.json"
            ) from error
    if config.preset != "auto":
        return None
    fits = describe_state(state)
    if fits.lower() in PRESETS:
        return PRESETS[fits.lower()]
    raise CheckpointError(
        f"checkpoint {str(path)!r} has no config.json beside it and holds {fits}, not a released V1/V2/V3",
        hint="give its config.json with -o vocoder.hifigan.config_json=PATH",
    )


class HiFiGANVocoder(BaseVocoder):
    """HiFi-GAN vocoder: log-mel -> waveform, in parallel.

    Args:
        config: :class:`~vcframe_hifigan.spec.HiFiGANConfig` (default: registry default weights).
        device: torch device.

    Shapes: ``vocode(Mel (B, n_mels, T)) -> Waveform (B, T * hop_length)`` with ``lengths = mel.lengths *
    hop_length``; items of equal length run as one batch, so a batch gives exactly what item-by-item calls give.
    The output is ``tanh`` of the generator, in (-1, 1), at the mel's sample rate; no peak normalisation.
    ``vocode_stream`` yields ``stream_chunk_frames * hop_length`` samples at a time, each computed from the
    chunk's frames plus ``stream_context_frames`` (default: the generator's receptive field) on each side,
    so the chunks concatenate to ``vocode``'s output within ``SPEC.streaming_tolerance``.
    Weight norm is folded at load; computation runs on ``config.threads`` threads. Where torch has oneDNN the
    generator runs as a :class:`~vcframe_hifigan.inference.PackedGenerator` (channels-last, weights laid out
    once: equal to the generator within about 1e-7 in float32), else as the plain generator. ``config.precision``
    ``auto`` computes in bfloat16 where the CPU has AMX / AVX-512 BF16 (3 to 4 times faster than the original
    once warm; the waveform moves by about 2e-4 on average, 45 dB below the signal) and in float32 elsewhere;
    ``float32`` keeps the original's arithmetic within the fixtures' tolerances. :meth:`repack` re-reads the
    weights after ``network`` was changed in place.
    """

    spec = SPEC

    def __init__(self, config: HiFiGANConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device=device)
        self.config: HiFiGANConfig
        mel = checkpoint_mel(self.config)
        self.checkpoint_metadata: dict[str, Any] = {}
        if self.config.checkpoint is not None:
            resolved = resolve("vocoder", SPEC.name, self.config.checkpoint)
            state, metadata = load_state(resolved.path, state_keys=(ORIGINAL_STATE_KEY,))
            if metadata.get("format") == CHECKPOINT_FORMAT:
                base: GeneratorConfig | None = GeneratorConfig.model_validate(metadata.get("config", {}))
            else:
                base = _original_generator_config(self.config, resolved.path, state)
            generator_config = self.config.generator_config(base)
            check_fits(generator_config, mel)
            # the weights overwrite every parameter: no random initialisation
            self.network = uninitialised(functools.partial(Generator, generator_config, weight_norm=False))
            load_generator_state(self.network, state, str(resolved.path))
            self.checkpoint_metadata = metadata
        else:
            generator_config = self.config.generator_config(num_mels=mel.n_mels)
            check_fits(generator_config, mel)
            self.network = Generator(generator_config, weight_norm=False)
        # the config now names the mel and the sizes, so input_spec never reads the checkpoint again
        sizes = {name: getattr(generator_config, name) for name in SIZE_FIELDS}
        self.config = self.config.model_copy(update={"mel": mel, **sizes})
        self.network.eval().requires_grad_(False)
        self.network.to(self.device)
        #: the dtype the generator computes in (``config.precision`` resolved for this machine)
        self.dtype = resolve_precision(self.config.precision)
        self._packed: tuple[Generator, PackedGenerator] | None = None
        self.repack()

    def repack(self) -> None:
        """Lay out ``network``'s weights for the packed generator again (after they were changed in place)."""
        self._packed = None
        if self.device.type == "cpu" and packed_available() and not self.network.has_weight_norm:
            self._packed = (self.network, PackedGenerator(self.network, self.dtype))

    @property
    def packed(self) -> PackedGenerator | None:
        """The packed form of ``network`` that vocoding runs, or None where the plain generator runs (no oneDNN,
        not on the CPU, or weight norm kept); a ``network`` replaced since is packed again."""
        if self._packed is not None and self._packed[0] is not self.network:
            self.repack()
        return None if self._packed is None else self._packed[1]

    @property
    def context_frames(self) -> int:
        """Mel frames of context on each side of a streamed chunk."""
        if self.config.stream_context_frames is not None:
            return self.config.stream_context_frames
        return receptive_field_frames(self.network.config)

    @property
    def speaker_embedding_space(self) -> str | None:
        """The embedding space a speaker-conditioned generator was trained on (its checkpoint's
        ``speaker_embedding_space``, e.g. ``ge2e/rtvc``), or None for a generator that reads no embedding."""
        if not self.network.config.speaker_embedding_dim:
            return None
        return str(self.checkpoint_metadata.get("speaker_embedding_space") or "unrecorded")

    def speaker_vectors(self, mel: Mel) -> torch.Tensor | None:
        """(B, D) or (1, D): the embedding a conditioned generator reads for ``mel`` (its metadata's
        :data:`~vcframe.types.SPEAKER_EMBEDDING_KEY`, as the pipeline puts it there), or None: no conditioning,
        or no embedding given (the generator then reads the mean of its training voices). An embedding of
        another space or size, or of another batch size, is an InputError naming both."""
        space = self.speaker_embedding_space
        embedding = mel.metadata.get(SPEAKER_EMBEDDING_KEY)
        if space is None or embedding is None:
            return None
        if not isinstance(embedding, SpeakerEmbedding):
            raise InputError(
                f"mel metadata {SPEAKER_EMBEDDING_KEY!r} must be a SpeakerEmbedding, got {type(embedding).__name__}"
            )
        dim = self.network.config.speaker_embedding_dim
        if (embedding.spec.space, embedding.spec.dim) != (space, dim):
            raise InputError(
                f"this HiFi-GAN reads {space} speaker embeddings of {dim} values, but the mel comes with a "
                f"{embedding.spec.space} embedding of {embedding.spec.dim}",
                hint="use the speaker encoder it was trained with (e.g. --encoder ge2e), or an unconditioned vocoder",
            )
        if embedding.batch_size not in (1, mel.batch_size):
            raise InputError(f"{embedding.batch_size} speaker embeddings for a batch of {mel.batch_size} mels")
        return embedding.vector.to(self.device, torch.float32)

    def _generate(self, frames: torch.Tensor, speaker: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_mels, T) -> (B, T * hop) float32, without autograd, on the configured threads and precision;
        ``speaker`` as :meth:`speaker_vectors` gives it."""
        packed = self.packed
        with torch_threads(self.config.threads), torch.inference_mode():
            if packed is not None:
                return packed(frames.to(torch.float32), speaker)
            bfloat16 = self.dtype == torch.bfloat16  # the fallback: autocast around the plain generator
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bfloat16):
                audio: torch.Tensor = self.network(frames.to(torch.float32), speaker)
        return audio[:, 0].to(torch.float32)

    def _vocode(self, mel: Mel, seed: int | None) -> Waveform:
        hop = self.network.hop_length
        lengths = [int(length) for length in mel.lengths.tolist()]
        speaker = self.speaker_vectors(mel)
        samples = torch.zeros(mel.batch_size, max(lengths) * hop, device=self.device)
        for length in sorted(set(lengths)):
            indices = [index for index, item_length in enumerate(lengths) if item_length == length]
            rows = speaker if speaker is None or speaker.shape[0] == 1 else speaker[indices]
            samples[indices, : length * hop] = self._generate(mel.frames[indices, :, :length], rows)
        return Waveform(samples, mel.spec.sample_rate, torch.tensor(lengths, device=self.device) * hop)

    def vocode_stream(self, mel: Mel, *, seed: int | None = None) -> Iterator[Waveform]:
        """Yield (1, n) chunks: ``stream_first_chunk_frames * hop_length`` samples first, then twice as many each
        time up to ``stream_chunk_frames * hop_length`` (:func:`stream_chunks`; the last may be shorter).

        Needs a batch of one. Each chunk is generated from its frames with ``context_frames`` on each side,
        and equals the matching part of ``vocode``'s output within ``SPEC.streaming_tolerance`` (float32).
        """
        mel = self._check_mel(mel)
        if mel.batch_size != 1:
            raise InputError(f"vocode_stream takes one mel at a time, got a batch of {mel.batch_size}")
        hop, context = self.network.hop_length, self.context_frames
        speaker = self.speaker_vectors(mel)
        total = int(mel.lengths[0])
        for start, end in stream_chunks(total, self.config.stream_first_chunk_frames, self.config.stream_chunk_frames):
            first, last = max(0, start - context), min(total, end + context)
            audio = self._generate(mel.frames[:, :, first:last], speaker)
            yield Waveform(audio[:, (start - first) * hop : (end - first) * hop], mel.spec.sample_rate)
