"""The WaveRNN vocoder component: weights from config, mel -> waveform, batched, seeded and streaming."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vcframe.checkpoints import check_checkpoint_component, load_state, resolve, uninitialised
from vcframe.cpu import cpu_has_bf16
from vcframe.errors import CheckpointError
from vcframe.interfaces import BaseVocoder
from vcframe.seeding import item_generators
from vcframe.specs import with_recorded_sizes
from vcframe.types import Mel, Waveform
from vcframe_wavernn.generate import Generator, choose_folding
from vcframe_wavernn.network import WaveRNN
from vcframe_wavernn.spec import PRESETS, SPEC, UPSAMPLE_FACTORS, WaveRNNConfig


def build_network(config: WaveRNNConfig) -> WaveRNN:
    """A randomly initialised :class:`WaveRNN` of the config's sizes (RTVC's init)."""
    sizes = config.sizes()
    mel = SPEC.input
    return WaveRNN(
        rnn_dims=sizes["rnn_dims"],
        fc_dims=sizes["fc_dims"],
        bits=config.bits,
        pad=config.pad,
        upsample_factors=UPSAMPLE_FACTORS,
        feat_dims=mel.n_mels,  # type: ignore[union-attr]
        compute_dims=sizes["compute_dims"],
        res_out_dims=sizes["res_out_dims"],
        res_blocks=sizes["res_blocks"],
        hop_length=mel.hop_length,  # type: ignore[union-attr]
    )


def load_weights(network: WaveRNN, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` strictly, refusing missing/unexpected keys and shape mismatches with one-line errors."""
    own = network.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(
            f"checkpoint {source!r} is not a WaveRNN vocoder of this layout ({detail})",
            hint="give an RTVC vocoder.pt or a vcframe-wavernn safetensors file",
        )
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"checkpoint {source!r} does not fit the config: {key} has shape {tuple(state[key].shape)} in the "
                f"file but {tuple(value.shape)} in the model",
                hint="choose the preset (or sizes) the checkpoint was trained with",
            )
    network.load_state_dict({key: state[key].to(value.dtype) for key, value in own.items()}, strict=True)


def read_checkpoint(reference: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], Path]:
    """(state dict, metadata, file) of a WaveRNN checkpoint ``reference``: 'default', 'registry:<id>' (verified
    against the registry's sha256) or a path to a vcframe-wavernn safetensors file or an RTVC ``vocoder.pt``.

    Raises CheckpointError when it cannot be found or read, or records another component."""
    resolved = resolve("vocoder", SPEC.name, reference)
    state, metadata = load_state(resolved.path)
    check_checkpoint_component(metadata, "vocoder", SPEC.name, str(resolved.path))
    return state, metadata, resolved.path


def resolve_precision(requested: str, *, kernel: bool) -> str:
    """The generation loop's weight precision for ``precision``: 'auto' = bfloat16 where the C++ kernel runs
    (``kernel``) on a CPU that computes bfloat16 natively (AMX or AVX-512 BF16, :func:`vcframe.cpu.cpu_has_bf16`),
    else float32. The PyTorch loop (engine 'torch', no compiler, a GPU) computes every precision's products in
    float32 from the rounded weights, so there a reduced precision would cost accuracy and save nothing."""
    if requested == "auto":
        return "bfloat16" if kernel and cpu_has_bf16() else "float32"
    return requested


class WaveRNNVocoder(BaseVocoder):
    """WaveRNN vocoder (RTVC's fatchord model): mel -> 16 kHz waveform, sample by sample.

    Args:
        config: :class:`~vcframe_wavernn.spec.WaveRNNConfig` (default: RTVC preset, registry default weights).
        device: torch device. Generation runs on the CPU kernel when the device is the CPU; on other devices
            the PyTorch loop runs there.

    Shapes: ``vocode(Mel (B, 80, T)) -> Waveform (B, T * 200)`` with ``lengths = mel.lengths * 200``. The mel
    is divided by 4 (RTVC's ``infer_waveform(normalize=True)``). RTVC itself returns ``(T - 1) * 200``
    samples; with ``rtvc_quirks`` the last 200 samples are zeros, so every vocoder returns ``T * hop``.
    De-emphasis can push samples past full scale (RTVC's demo rescales afterwards); the Waveform is clipped
    to [-1, 1]. :meth:`generate_float64` returns RTVC's unclipped float64 output.
    ``vocode_stream`` yields (1, n) chunks whose concatenation equals ``vocode`` exactly (same seed).
    """

    spec = SPEC

    def __init__(self, config: WaveRNNConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device=device)
        self.config: WaveRNNConfig
        self.checkpoint_metadata: dict[str, Any] = {}
        if self.config.checkpoint is not None:
            state, metadata, path = read_checkpoint(self.config.checkpoint)
            self.config = with_recorded_sizes(self.config, metadata, PRESETS["rtvc"])
            # the weights overwrite every parameter: no random initialisation
            self.network = uninitialised(functools.partial(build_network, self.config))
            load_weights(self.network, state, str(path))
            self.checkpoint_metadata = metadata
        else:
            self.network = build_network(self.config)
        self.network.eval()
        self.network.to(self.device)
        self._generator: Generator | None = None

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            from vcframe_wavernn.kernel import load_kernel

            config = self.config
            engine = "torch" if self.device.type != "cpu" and config.engine == "auto" else config.engine
            if engine == "reference":
                engine = "torch"
            kernel = engine in ("auto", "cpp") and load_kernel() is not None
            self._generator = Generator(
                self.network,
                engine=engine,
                threads=config.threads,
                block_steps=config.block_steps,
                first_block_steps=config.first_block_steps,
                precision=resolve_precision(config.precision, kernel=kernel),
                isa=config.isa,
            )
        return self._generator

    def _modules_to(self, device: torch.device) -> None:
        self.network.to(device)
        self._generator = None

    def _item_mels(self, mel: Mel) -> list[torch.Tensor]:
        scale = mel.spec.max_abs_value
        return [mel.frames[i, :, : int(mel.lengths[i])] / scale for i in range(mel.batch_size)]

    def _generators(self, count: int, seed: int | None) -> list[torch.Generator | None]:
        if self.config.sampler == "argmax":
            return [None] * count
        return [*item_generators(seed, count)]

    def folding(self, frames: int) -> tuple[int, int]:
        """(target, overlap) for a batch whose longest mel has ``frames`` frames: the config's, else chosen from
        the length (:func:`~vcframe_wavernn.generate.choose_folding`)."""
        config = self.config
        target = config.target or choose_folding(frames * self.network.hop_length)
        overlap = config.overlap if config.overlap is not None else target // 10
        return target, min(overlap, target)

    def _chunks(self, mel: Mel, seed: int | None) -> Iterator[list[np.ndarray]]:
        config = self.config
        mels = self._item_mels(mel)
        target, overlap = self.folding(max(int(item.shape[-1]) for item in mels))
        if config.engine == "reference":
            yield self._reference(mels, seed, target, overlap)
            return
        yield from self.generator.run(
            mels,
            batched=config.batched,
            target=target,
            overlap=overlap,
            sampler=config.sampler,
            generators=self._generators(len(mels), seed),
            preemphasis=mel.spec.preemphasis,
            quirks=config.rtvc_quirks,
            rtvc_rng=config.rtvc_rng,
        )

    def _reference(self, mels: list[torch.Tensor], seed: int | None, target: int, overlap: int) -> list[np.ndarray]:
        """RTVC's own loop (slow; rtvc_quirks only): the baseline, for checks and benchmarks."""
        from vcframe.seeding import seeded
        from vcframe_wavernn.generate import reference_generate
        from vcframe_wavernn.spec import reference_engine_conflict

        config = self.config
        if not config.rtvc_quirks:
            raise ValueError("engine='reference' reproduces RTVC only; set rtvc_quirks=True")
        conflict = reference_engine_conflict(config)
        if conflict:
            raise ValueError(conflict)
        outputs = []
        for mel in mels:
            with seeded(seed):
                wave = reference_generate(
                    self.network,
                    mel.unsqueeze(0).cpu(),
                    batched=config.batched,
                    target=target,
                    overlap=overlap,
                    argmax=config.sampler == "argmax",
                )
            outputs.append(np.concatenate([wave, np.zeros(mel.shape[-1] * self.network.hop_length - len(wave))]))
        return outputs

    def _vocode(self, mel: Mel, seed: int | None) -> Waveform:
        pieces: list[list[np.ndarray]] = [[] for _ in range(mel.batch_size)]
        for chunks in self._chunks(mel, seed):
            for index, chunk in enumerate(chunks):
                pieces[index].append(chunk)
        items = [np.clip(np.concatenate(p), -1.0, 1.0).astype(np.float32) for p in pieces]
        waveform = Waveform.from_numpy(items, mel.spec.sample_rate)
        return Waveform(waveform.samples.to(self.device), waveform.sample_rate, waveform.lengths.to(self.device))

    def vocode_stream(self, mel: Mel, *, seed: int | None = None) -> Iterator[Waveform]:
        """Yield (1, n) chunks as soon as they are final: after every ``block_steps`` steps of all folds.

        Needs a batch of one. Concatenated, the chunks equal ``vocode(mel, seed=seed)`` exactly.
        """
        from vcframe.errors import InputError

        mel = self._check_mel(mel)
        if mel.batch_size != 1:
            raise InputError(f"vocode_stream takes one mel at a time, got a batch of {mel.batch_size}")
        for chunks in self._chunks(mel, seed):
            if len(chunks[0]):
                samples = (
                    torch.from_numpy(np.clip(chunks[0], -1.0, 1.0).astype(np.float32)).unsqueeze(0).to(self.device)
                )
                yield Waveform(samples, mel.spec.sample_rate)

    def generate_float64(self, mel: Mel, seed: int | None = None) -> list[np.ndarray]:
        """Like ``vocode`` but float64 numpy per item (RTVC's dtype; what the golden tests compare)."""
        mel = self._check_mel(mel)
        pieces: list[list[np.ndarray]] = [[] for _ in range(mel.batch_size)]
        for chunks in self._chunks(mel, seed):
            for index, chunk in enumerate(chunks):
                pieces[index].append(chunk)
        return [np.concatenate(p) for p in pieces]
