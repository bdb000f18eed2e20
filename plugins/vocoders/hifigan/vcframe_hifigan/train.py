"""Training of the HiFi-GAN vocoder: ``vcframe train vocoder --plugin hifigan <command> ...`` or
``python -m vcframe_hifigan.train <command> ...``.

Commands: ``manifest`` (a list of training audio, shared with the WaveRNN trainer: :mod:`vcframe.datasets`),
``fit`` (the original recipe with exact ``--resume``), ``export`` (safetensors for the vocoder, or the original's
``g_``/``do_`` files), ``widen`` (a wider generator that starts as the same function: :mod:`vcframe_hifigan.widen`).

The recipe is jik876/hifi-gan's (SPEC.md section 8): MPD + MSD, least-squares adversarial losses, feature
matching x2, mel L1 x45 on the loss mel (fmax = sr/2), AdamW (lr 2e-4, betas 0.8/0.99, weight decay 0.01) for
the generator and for both discriminators, ExponentialLR 0.999 stepped once per epoch; each step updates the
discriminators on (y, y_hat.detach()), then the generator through the just-updated discriminators. For a CPU it
adds knobs, all defaulting to the original: the segment length, the batch size, the discriminators' width, a
generator-only warm-up on the mel loss (``--adversarial-start``, as ParallelWaveGAN does), bfloat16 autocast of
the discriminators (``--precision``; the generator too with ``--bf16-generator``), the thread count, Parallel
WaveGAN's STFT loss (``--stft-weight``), input mels smoothed across frequency (``--mel-smoothing``, for the
synthesizer's smooth mels: :class:`vcframe.datasets.MelSmoothing`), each side's learning rate
(``--generator-lr``, ``--discriminator-lr``: a gentler fine-tune of trained weights), the voice beside the mel
(``--speaker-embeddings``) and a loss that asks for it (``--speaker-loss-weight``:
:mod:`vcframe_hifigan.speaker_loss`).

Two exactness choices: a step's generator pass runs the discriminators with their parameters frozen (the same
generator gradient as the original, which also computes discriminator gradients it then discards), and the
segments' mels are windows of each clip's whole mel (see :mod:`vcframe_hifigan.data`).

Run folder: ``checkpoint.pt`` (atomic; generator, discriminators, optimizers, schedulers, step, epoch, batch,
random state: ``--resume`` continues bit for bit), ``config.json``, ``log.jsonl`` (losses every ``--log-every``
steps), ``valid.jsonl`` (held-out mel L1 every ``--valid-every`` steps), ``samples/`` (a wav and a mel plot every
``--sample-every`` steps). On start the logs are cut back to the checkpoint's step and temporary files of a
killed checkpoint write are removed (:func:`vcframe.distributed.prepare_run_folder`).
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import torch
import typer

from vcframe.checkpoints import init_lineage, init_source, load_torch, save_torch
from vcframe.config import parse_json_options
from vcframe.cpu import limit_threads, resolve_precision
from vcframe.datasets import MelCache, MelSmoothing, manifest_command, record_smoothing
from vcframe.errors import CheckpointError, ConfigError, InputError
from vcframe.specs import HIFIGAN_MEL, RTVC_ENCODER_MEL, RTVC_SYNTHESIZER_MEL, MelSpec
from vcframe_hifigan.data import (
    EpochSegments,
    SpeakerVectors,
    TrainingClip,
    collate,
    collate_unpaired,
    load_clips,
    load_speaker_vectors,
    load_unpaired_mels,
    smoothing_sigmas,
    unpaired_picks,
)
from vcframe_hifigan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from vcframe_hifigan.generator import Generator
from vcframe_hifigan.losses import (
    discriminator_loss,
    feature_loss,
    frame_sync_loss,
    generator_loss,
    mel_loss,
    periodicity_loss,
    periodicity_window,
    smoothed_target_mel_loss,
    stft_loss,
)
from vcframe_hifigan.melspec import MelFrontEnd, loss_mel_spec
from vcframe_hifigan.speaker_loss import SpeakerIdentityLoss, chance_loss, load_ge2e_network
from vcframe_hifigan.spec import PRESETS, SIZE_FIELDS, GeneratorConfig, HiFiGANConfig, check_fits

if TYPE_CHECKING:
    from vcframe.distributed import TrainingSession

app = typer.Typer(help="Train the HiFi-GAN vocoder (the original recipe) and export it.", add_completion=False)
app.command("manifest")(manifest_command)  # the vocoder trainers' shared data manifest (vcframe.datasets)

#: The mels a run can train on (``--mel``): RTVC's synthesizer mel (the shipped Tacotron's) or HiFi-GAN's own.
MELS: dict[str, MelSpec] = {"rtvc": RTVC_SYNTHESIZER_MEL, "hifigan": HIFIGAN_MEL}

#: The original's optimiser and schedule (config_v1.json): AdamW with torch's default weight decay 0.01.
LEARNING_RATE, ADAM_BETAS, WEIGHT_DECAY, LR_DECAY = 2e-4, (0.8, 0.99), 0.01, 0.999


# -- the step -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module) -> Iterator[None]:
    """The modules' parameters without gradients inside the block (their previous flags restored after)."""
    parameters = [p for module in modules for p in module.parameters()]
    flags = [p.requires_grad for p in parameters]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(parameters, flags, strict=True):
            parameter.requires_grad_(flag)


def _floats(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [tensor.float() for tensor in tensors]


def _float_maps(maps: Sequence[Sequence[torch.Tensor]]) -> list[list[torch.Tensor]]:
    return [_floats(layers) for layers in maps]


@dataclass
class GANStep:
    """One training step of the original recipe on a batch (see the module docstring).

    Attributes:
        generator, mpd, msd: the networks (their state dicts are the checkpoint's).
        optim_g, optim_d: AdamW of the generator and of both discriminators.
        loss_front_end: the loss mel (:func:`vcframe_hifigan.melspec.loss_mel_spec` of the trained mel).
        precision: ``fp32``, or ``bf16``: the discriminators under bfloat16 autocast (losses, the loss mel and
            all parameters and gradients stay float32).
        bf16_generator: with ``bf16``, the generator's forward pass under autocast too.
        stft_weight: weight of the multi-resolution STFT loss added to the generator's
            (:func:`vcframe_hifigan.losses.stft_loss`, spectral convergence + log magnitude; 0: the original recipe).
        train_generator, train_mpd, train_msd: what to call for training forward passes (DDP wrappers in a
            distributed run; the networks themselves otherwise).
        frame_sync_weight: weight of the frame-rate periodicity loss added to the generator's
            (:func:`vcframe_hifigan.losses.frame_sync_loss`; 0: the original recipe); needs ``hop_length``.
        hop_length: samples per mel frame of the trained mel.
        input_front_end: the trained (input) mel, differentiable: what :meth:`unpaired` measures the output with.
        unpaired_weight: factor on the generator's losses in :meth:`unpaired` (0: no unpaired steps).
        unpaired_frame_sync_weight: weight of the frame-sync loss in :meth:`unpaired` (inside ``unpaired_weight``;
            0: none), the output for the synthesizer's mels against the real segments of the batch; needs
            ``hop_length`` and ``unpaired_weight``.
        smoothed_targets: for segments whose input mel was smoothed (``sigmas`` > 0 in :meth:`__call__`), the
            share of their mel loss taken between loss mels smoothed the same way
            (:func:`vcframe_hifigan.losses.smoothed_target_mel_loss`) and of their STFT loss left out (0: the
            original's sharp targets for every segment).
        speaker_loss: the speaker-identity loss (:class:`vcframe_hifigan.speaker_loss.SpeakerIdentityLoss`), for
            ``speaker_loss_weight``.
        speaker_loss_weight: its weight in the generator's losses, in the paired and (inside ``unpaired_weight``)
            the unpaired step (0: none); the steps then need each segment's ``voices``.
        unpaired_speaker_loss_weight: its weight in the unpaired step instead (None: ``speaker_loss_weight``).
        periodicity_weight: weight of the periodicity loss added to the generator's in the paired step
            (:func:`vcframe_hifigan.losses.periodicity_loss`, at ``sample_rate`` and ``hop_length``; segments whose
            input mel was smoothed (``sigmas`` > 0) match the real periodicity's strength only; 0: none).
        sample_rate: the trained mel's sample rate (for ``periodicity_weight``).
    """

    generator: Generator
    mpd: MultiPeriodDiscriminator
    msd: MultiScaleDiscriminator
    optim_g: torch.optim.Optimizer
    optim_d: torch.optim.Optimizer
    loss_front_end: MelFrontEnd
    precision: str = "fp32"
    bf16_generator: bool = False
    stft_weight: float = 0.0
    train_generator: torch.nn.Module | None = None
    train_mpd: torch.nn.Module | None = None
    train_msd: torch.nn.Module | None = None
    device_type: str = field(default="cpu")
    frame_sync_weight: float = 0.0
    hop_length: int = 0
    input_front_end: MelFrontEnd | None = None
    unpaired_weight: float = 0.0
    unpaired_frame_sync_weight: float = 0.0
    smoothed_targets: float = 0.0
    speaker_loss: SpeakerIdentityLoss | None = None
    speaker_loss_weight: float = 0.0
    periodicity_weight: float = 0.0
    sample_rate: int = 0
    unpaired_speaker_loss_weight: float | None = None

    @property
    def unpaired_speaker_weight(self) -> float:
        """The speaker-identity loss's weight in :meth:`unpaired`."""
        if self.unpaired_speaker_loss_weight is None:
            return self.speaker_loss_weight
        return self.unpaired_speaker_loss_weight

    def __post_init__(self) -> None:
        if self.unpaired_speaker_weight and self.speaker_loss is None:
            raise ValueError(
                f"unpaired_speaker_loss_weight {self.unpaired_speaker_weight} needs the speaker_loss, got None"
            )
        if self.periodicity_weight and (self.hop_length < 1 or self.sample_rate < 1):
            raise ValueError(
                f"periodicity_weight {self.periodicity_weight} needs the hop_length and the sample_rate, got "
                f"{self.hop_length} and {self.sample_rate}"
            )
        if self.speaker_loss_weight and self.speaker_loss is None:
            raise ValueError(f"speaker_loss_weight {self.speaker_loss_weight} needs the speaker_loss, got None")
        if self.frame_sync_weight and self.hop_length < 1:
            raise ValueError(f"frame_sync_weight {self.frame_sync_weight} needs the hop_length, got {self.hop_length}")
        if self.unpaired_weight and self.input_front_end is None:
            raise ValueError(f"unpaired_weight {self.unpaired_weight} needs the input_front_end, got None")
        if self.unpaired_frame_sync_weight and (self.hop_length < 1 or not self.unpaired_weight):
            raise ValueError(
                f"unpaired_frame_sync_weight {self.unpaired_frame_sync_weight} needs the hop_length and an "
                f"unpaired_weight, got {self.hop_length} and {self.unpaired_weight}"
            )

    def _autocast(self, enabled: bool) -> contextlib.AbstractContextManager[Any]:
        if enabled and self.precision == "bf16":
            return torch.autocast(self.device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(
        self,
        mels: torch.Tensor,
        audio: torch.Tensor,
        *,
        adversarial: bool = True,
        weight: float = 1.0,
        sigmas: torch.Tensor | None = None,
        speakers: torch.Tensor | None = None,
        voices: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Update the discriminators (if ``adversarial``), then the generator; returns the step's losses (0-d)
        (with ``speaker_loss_weight`` also ``speaker_accuracy`` and the loss of the real segments,
        ``speaker_real``: what the encoder itself achieves on them).

        Args:
            mels: (B, n_mels, F) generator input.
            audio: (B, 1, F * hop) the real segments.
            adversarial: False: the generator learns from the mel loss alone and the discriminators rest.
            weight: factor on every loss before ``backward`` (a distributed shard's weight, 1.0 alone).
            sigmas: (B,) the band smoothing each input mel had (:func:`vcframe_hifigan.data.smoothing_sigmas`;
                None or 0: none), for ``smoothed_targets``.
            speakers: (B, D) each segment's speaker embedding, for a speaker-conditioned generator (None: none).
            voices: (B,) each segment's voice, an index into the ``speaker_loss``'s voices (for
                ``speaker_loss_weight``).
        """
        generator = self.train_generator or self.generator
        with self._autocast(self.bf16_generator):
            generated = generator(mels, speakers)
        generated = generated.float()
        with torch.no_grad():
            target_mel = self.loss_front_end(audio)
        generated_mel = self.loss_front_end(generated)
        losses: dict[str, torch.Tensor] = {}
        if adversarial:
            losses.update(self._update_discriminators(audio, generated, weight))
        self.optim_g.zero_grad(set_to_none=True)
        smoothed = self._smoothed(sigmas, mels.shape[0])
        losses["mel"] = (
            smoothed_target_mel_loss(target_mel, generated_mel, smoothed, self.smoothed_targets)
            if smoothed is not None
            else mel_loss(target_mel, generated_mel)
        )
        total = losses["mel"]
        if adversarial:
            # the discriminators as just updated, frozen: only the generator's gradient is computed
            with frozen(self.mpd, self.msd), self._autocast(True):
                _, mpd_generated, mpd_real_maps, mpd_generated_maps = self.mpd(audio, generated)
                _, msd_generated, msd_real_maps, msd_generated_maps = self.msd(audio, generated)
            losses["fm_f"] = feature_loss(_float_maps(mpd_real_maps), _float_maps(mpd_generated_maps))
            losses["fm_s"] = feature_loss(_float_maps(msd_real_maps), _float_maps(msd_generated_maps))
            losses["gen_f"] = generator_loss(_floats(mpd_generated))[0]
            losses["gen_s"] = generator_loss(_floats(msd_generated))[0]
            total = losses["gen_s"] + losses["gen_f"] + losses["fm_s"] + losses["fm_f"] + losses["mel"]
        if self.stft_weight:
            losses["stft_sc"], losses["stft_mag"] = self._stft_losses(audio, generated, smoothed)
            total = total + self.stft_weight * (losses["stft_sc"] + losses["stft_mag"])
        if self.frame_sync_weight:
            losses["frame_sync"] = frame_sync_loss(audio, generated, self.hop_length)
            total = total + self.frame_sync_weight * losses["frame_sync"]
        if self.speaker_loss_weight:
            losses.update(self._speaker_losses(generated, voices, audio))
            total = total + self.speaker_loss_weight * losses["speaker"]
        if self.periodicity_weight:
            pitch_known = None if sigmas is None else sigmas.detach().to(generated.device) <= 0
            losses["periodicity"] = periodicity_loss(audio, generated, self.sample_rate, self.hop_length, pitch_known)
            total = total + self.periodicity_weight * losses["periodicity"]
        losses["gen"] = total
        torch.autograd.backward(total * weight)
        self.optim_g.step()
        return {name: value.detach() for name, value in losses.items()}

    def _speaker_losses(
        self, generated: torch.Tensor, voices: torch.Tensor | None, audio: torch.Tensor | None = None, prefix: str = ""
    ) -> dict[str, torch.Tensor]:
        """The speaker-identity loss of ``generated`` and its accuracy (and with ``audio``, the real segments' loss
        under ``torch.no_grad``), named with ``prefix``."""
        if self.speaker_loss is None or voices is None:
            raise ValueError("speaker_loss_weight needs the speaker_loss and each segment's voices")
        losses: dict[str, torch.Tensor] = {}
        losses[f"{prefix}speaker"], losses[f"{prefix}speaker_accuracy"] = self.speaker_loss(generated, voices)
        if audio is not None:
            with torch.no_grad():
                losses[f"{prefix}speaker_real"] = self.speaker_loss(audio, voices)[0]
        return losses

    def _smoothed(self, sigmas: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """``sigmas`` (on the CPU) where ``smoothed_targets`` applies to this batch, else None."""
        if not self.smoothed_targets or sigmas is None:
            return None
        sigmas = sigmas.detach().to("cpu", torch.float32)
        if sigmas.shape != (batch,):
            raise ValueError(f"{tuple(sigmas.shape)} smoothing sigmas for a batch of {batch} segments")
        return sigmas if bool((sigmas > 0).any()) else None

    def _stft_losses(
        self, audio: torch.Tensor, generated: torch.Tensor, smoothed: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The STFT loss's two terms; with ``smoothed`` sigmas, the smoothed segments' share weighs
        ``1 - smoothed_targets`` (each group's loss times its share of the batch)."""
        if smoothed is None:
            return stft_loss(audio, generated)
        convergence = torch.zeros((), device=audio.device)
        magnitude = torch.zeros((), device=audio.device)
        is_smoothed = (smoothed > 0).to(audio.device)
        for members, factor in ((~is_smoothed, 1.0), (is_smoothed, 1.0 - self.smoothed_targets)):
            if factor and bool(members.any()):
                share = factor * float(members.float().mean())
                group_convergence, group_magnitude = stft_loss(audio[members], generated[members])
                convergence = convergence + share * group_convergence
                magnitude = magnitude + share * group_magnitude
        return convergence, magnitude

    def _update_discriminators(
        self, audio: torch.Tensor, generated: torch.Tensor, weight: float, prefix: str = ""
    ) -> dict[str, torch.Tensor]:
        """One step of both discriminators on real ``audio`` against ``generated`` (detached); their losses."""
        mpd, msd = self.train_mpd or self.mpd, self.train_msd or self.msd
        self.optim_d.zero_grad(set_to_none=True)
        detached = generated.detach()
        with self._autocast(True):
            mpd_real, mpd_generated, _, _ = mpd(audio, detached)
            msd_real, msd_generated, _, _ = msd(audio, detached)
        losses = {
            f"{prefix}disc_f": discriminator_loss(_floats(mpd_real), _floats(mpd_generated))[0],
            f"{prefix}disc_s": discriminator_loss(_floats(msd_real), _floats(msd_generated))[0],
        }
        losses[f"{prefix}disc"] = losses[f"{prefix}disc_s"] + losses[f"{prefix}disc_f"]
        torch.autograd.backward(losses[f"{prefix}disc"] * weight)
        self.optim_d.step()
        return losses

    def unpaired(
        self,
        mels: torch.Tensor,
        audio: torch.Tensor,
        *,
        weight: float = 1.0,
        speakers: torch.Tensor | None = None,
        voices: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """A step on synthesizer mels that come without audio (``fit --unpaired-mels``; not in the original).

        The discriminators learn to tell real ``audio`` (any real segments of the same shape: the paired batch's)
        from the generator's output for ``mels``; the generator learns, with ``unpaired_weight`` on each term,
        that its output's mel (the trained mel, measured by ``input_front_end``) must be ``mels``
        (``unpaired_mel``: 45 x the mean absolute difference in the mel's own units) and that the discriminators
        must take it for real (``unpaired_gen_f`` + ``unpaired_gen_s``), and with ``unpaired_frame_sync_weight``
        that it repeats once per mel frame no more than the real segments of ``audio`` do (``unpaired_frame_sync``:
        :func:`~vcframe_hifigan.losses.frame_sync_loss` against them, a speech-like bound: no real audio of these
        mels exists), and with ``speaker_loss_weight`` that the speaker encoder takes it for its voice
        (``unpaired_speaker``). Feature matching needs the real audio of the same mel, so it is left out. The
        output's mel frame t is compared with the given frame t, the convention of the paired segments (frame t
        stands for samples from ``hop * t``); the first and last frames of a segment see the output's edge padding,
        as a whole utterance's do in :mod:`vcframe.correction`.
        Returns the losses (0-d), prefixed ``unpaired_``.

        Args:
            mels: (B, n_mels, F) synthesizer mels of the trained spec.
            audio: (B, 1, F * hop) real segments for the discriminators.
            weight: factor on every loss before ``backward`` (a distributed shard's weight, 1.0 alone).
            speakers: (B, D) the speaker embedding of each mel's voice, for a conditioned generator (None: none).
            voices: (B,) each mel's voice, an index into the ``speaker_loss``'s voices (for the speaker-identity
                loss: ``unpaired_speaker_weight``).
        """
        if self.input_front_end is None or not self.unpaired_weight:
            raise ValueError("unpaired steps need an input_front_end and an unpaired_weight above 0")
        generator = self.train_generator or self.generator
        with self._autocast(self.bf16_generator):
            generated = generator(mels, speakers)
        generated = generated.float()
        losses = self._update_discriminators(audio, generated, weight, prefix="unpaired_")
        self.optim_g.zero_grad(set_to_none=True)
        frames = mels.shape[-1]
        losses["unpaired_mel"] = mel_loss(mels, self.input_front_end(generated)[..., :frames])
        with frozen(self.mpd, self.msd), self._autocast(True):
            _, mpd_generated, _, _ = self.mpd(audio, generated)
            _, msd_generated, _, _ = self.msd(audio, generated)
        losses["unpaired_gen_f"] = generator_loss(_floats(mpd_generated))[0]
        losses["unpaired_gen_s"] = generator_loss(_floats(msd_generated))[0]
        objective = losses["unpaired_mel"] + losses["unpaired_gen_f"] + losses["unpaired_gen_s"]
        if self.unpaired_frame_sync_weight:
            losses["unpaired_frame_sync"] = frame_sync_loss(audio, generated, self.hop_length)
            objective = objective + self.unpaired_frame_sync_weight * losses["unpaired_frame_sync"]
        if self.unpaired_speaker_weight:
            losses.update(self._speaker_losses(generated, voices, prefix="unpaired_"))
            objective = objective + self.unpaired_speaker_weight * losses["unpaired_speaker"]
        total = self.unpaired_weight * objective
        losses["unpaired_gen"] = total
        torch.autograd.backward(total * weight)
        self.optim_g.step()
        return {name: value.detach() for name, value in losses.items()}


#: The generator's added loss weights (``fit`` options, 0 = the original recipe) and what a change is called.
LOSS_WEIGHTS = {
    "stft_weight": "the STFT loss weight",
    "frame_sync_weight": "the frame-sync loss weight",
    "unpaired_weight": "the unpaired-mel loss weight",
    "unpaired_frame_sync_weight": "the unpaired frame-sync loss weight",
    "smoothed_targets": "the smoothed-target share",
    "speaker_loss_weight": "the speaker-identity loss weight",
    "periodicity_weight": "the periodicity loss weight",
    "unpaired_speaker_loss_weight": "the unpaired speaker-identity loss weight",
}

#: Loss weights recorded after others existed: a record without one had the weight named here.
LOSS_WEIGHT_FALLBACKS = {"unpaired_speaker_loss_weight": "speaker_loss_weight"}


def record_loss_weights(
    changes: Sequence[dict[str, Any]], weights: dict[str, float], step: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """``changes`` (the checkpoint's ``loss_changes``) with an entry for ``step`` if ``weights`` differ from the
    last recorded ones (a missing key: 0, as in runs that predate that loss, or its
    :data:`LOSS_WEIGHT_FALLBACKS` weight), and a line per changed weight."""
    changes = list(changes)
    last = changes[-1] if changes else {}
    previous = {
        name: float(last.get(name, last.get(LOSS_WEIGHT_FALLBACKS.get(name, name), 0.0))) for name in LOSS_WEIGHTS
    }
    notes = [
        f"{what} changed at step {step}: {previous[name]:g} -> {weights[name]:g}"
        for name, what in LOSS_WEIGHTS.items()
        if weights[name] != previous[name]
    ]
    if notes:
        changes.append({"step": step, **weights})
    return changes, notes


#: The learning rates a run records (``lr_changes``): the rate before the per-epoch decay, per optimiser.
LEARNING_RATES = {
    "generator_lr": "the generator's learning rate",
    "discriminator_lr": "the discriminators' learning rate",
}


def run_learning_rates(changes: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The base learning rates a run's ``lr_changes`` end with (none recorded: the original's for both)."""
    return {name: float(changes[-1][name]) if changes else LEARNING_RATE for name in LEARNING_RATES}


def record_learning_rates(
    changes: Sequence[dict[str, Any]], requested: dict[str, float | None], step: int
) -> tuple[list[dict[str, Any]], dict[str, float], list[str]]:
    """The base learning rates (before the per-epoch decay) from ``step`` on.

    ``changes`` is the checkpoint's ``lr_changes`` (empty for a new run, or a run that predates them: the original's
    :data:`LEARNING_RATE` for both); ``requested`` the ``--generator-lr`` / ``--discriminator-lr`` given (None: keep
    the run's rate; the original's for a new run). Returns the changes with an entry for ``step`` when a rate moves
    (always one at step 0 of a new run), the rates that hold from ``step`` on, and a line per changed rate."""
    changes = list(changes)
    previous = run_learning_rates(changes)
    rates = {name: previous[name] if (rate := requested.get(name)) is None else float(rate) for name in LEARNING_RATES}
    notes = [
        f"{what} changed at step {step}: {previous[name]:g} -> {rates[name]:g}"
        for name, what in LEARNING_RATES.items()
        if rates[name] != previous[name]
    ]
    if notes or (not changes and step == 0):
        changes.append({"step": step, **rates})
    return changes, rates, notes


def rescale_learning_rate(
    optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.ExponentialLR, old: float, new: float
) -> None:
    """Move ``optimizer``'s base rate from ``old`` to ``new``, keeping the per-epoch decay it has had so far (the
    current rate is multiplied by ``new / old``); the scheduler decays from there."""
    if new == old:
        return
    for group in optimizer.param_groups:  # each group keeps its factor on the base rate (generator_parameter_groups)
        group["lr"] = group["lr"] * new / old
        group["initial_lr"] = new * (group["initial_lr"] / old)  # exactly ``new`` for the base group
    scheduler.base_lrs = [new * (rate / old) for rate in scheduler.base_lrs]


def generator_parameter_groups(generator: Generator, speaker_lr_factor: float) -> list[dict[str, Any]]:
    """The generator optimiser's parameter groups: every parameter at the base rate, and for a speaker-conditioned
    generator its speaker projection in a second group at ``speaker_lr_factor`` times that rate (``fit
    --speaker-lr-factor``: a new map on trained weights)."""
    if not generator.config.speaker_embedding_dim:
        return [{"params": list(generator.parameters())}]
    speaker = list(generator.speaker_projection.parameters())
    others = [parameter for parameter in generator.parameters() if all(parameter is not p for p in speaker)]
    return [{"params": others}, {"params": speaker, "lr": LEARNING_RATE * speaker_lr_factor}]


# -- generator sizes ----------------------------------------------------------------------------------------


def generator_sizes(preset: str, options: dict[str, Any], mel: MelSpec) -> GeneratorConfig:
    """The generator config of ``--preset`` with the ``-o`` size overrides, checked against the mel."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown generator preset {preset!r}", hint=f"use one of {', '.join(PRESETS)}")
    unknown = sorted(set(options) - set(SIZE_FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown generator size option {unknown[0]!r}", hint=f"size options: {', '.join(SIZE_FIELDS)}"
        )
    config = HiFiGANConfig.model_validate({"checkpoint": None, "preset": preset, **options})
    sizes = config.generator_config(num_mels=mel.n_mels)
    if sizes.hop_length != mel.hop_length:
        hint = "give upsample_rates whose product is the hop length"
        if mel.hop_length == RTVC_SYNTHESIZER_MEL.hop_length:
            hint = "for the rtvc mel (hop 200): -o upsample_rates=[8,5,5] -o upsample_kernel_sizes=[16,11,11]"
        raise ConfigError(
            f"the {preset} generator upsamples by {sizes.hop_length} but the mel's hop length is {mel.hop_length}",
            hint=hint,
        )
    check_fits(sizes, mel)
    return sizes


# -- validation and samples -------------------------------------------------------------------------------


@dataclass
class HeldOut:
    """Held-out clips measured every ``--valid-every`` steps: the mean over clips of the loss-mel L1 (without
    x45) between each whole clip and the generator's output for its mel (the original's validation error)."""

    name: str
    clips: list[TrainingClip]

    def measure(self, generator: Generator, front_end: MelFrontEnd, device: torch.device) -> float:
        errors = []
        with torch.no_grad():
            for clip in self.clips:
                generated = generator(torch.from_numpy(clip.mel).unsqueeze(0).to(device)).float()
                target = torch.from_numpy(clip.audio).unsqueeze(0).to(device)
                errors.append(float(torch.nn.functional.l1_loss(front_end(target), front_end(generated))))
        return sum(errors) / len(errors)


def held_out_clips(source: Path, spec: MelSpec, count: int) -> HeldOut:
    """``count`` clips of ``source`` spread evenly over it (stable across runs)."""
    clips, _, _ = load_clips([source], spec)
    picks = np.unique(np.linspace(0, len(clips) - 1, min(count, len(clips))).round().astype(int))
    return HeldOut(str(source), [clips[i] for i in picks])


def write_sample(generator: Generator, clip: TrainingClip, spec: MelSpec, folder: Path, step: int) -> None:
    """``folder/step_XXXXXXX.wav`` (the generator's audio for the clip's mel) and ``.png`` (the clip's mel above the
    mel of the generated audio, at the trained spec; skipped without matplotlib)."""
    from vcframe.audio import mel_spectrogram, save_audio
    from vcframe.types import Waveform

    folder.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        device = next(generator.parameters()).device
        generated = generator(torch.from_numpy(clip.mel).unsqueeze(0).to(device)).float().cpu().numpy()[0, 0]
    save_audio(Waveform.from_numpy(generated, spec.sample_rate), folder / f"step_{step:07d}.wav")
    try:
        from vcframe._io import atomic_path
        from vcframe._plots import _pyplot

        plt = _pyplot()
    except Exception:  # noqa: BLE001 - plots are optional (matplotlib missing)
        return
    generated_mel = mel_spectrogram(generated, spec)
    figure, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    low, high = float(clip.mel.min()), float(clip.mel.max())
    for axis, values, title in ((axes[0], clip.mel, f"{clip.name}: input mel"), (axes[1], generated_mel, "generated")):
        axis.imshow(values, origin="lower", aspect="auto", interpolation="none", vmin=low, vmax=high)
        axis.set_title(f"{title} (step {step})")
    axes[1].set_xlabel("frame")
    figure.tight_layout()
    with atomic_path(folder / f"step_{step:07d}.png", suffix=".png") as temp:
        figure.savefig(temp, format="png", dpi=80)
    plt.close(figure)


# -- fit --------------------------------------------------------------------------------------------------------


@app.command()
def fit(
    data: Annotated[
        list[Path],
        typer.Option(help="Training audio: a folder (+ .npy GTA mels beside the audio) or a manifest (repeatable)."),
    ],
    run_dir: Annotated[Path, typer.Option(help="checkpoint.pt, log.jsonl, valid.jsonl and samples/ go here.")],
    mel_cache: Annotated[
        Path | None,
        typer.Option(help="Keep the ground-truth mels here between runs (default: RUN_DIR/mel_cache; shareable)."),
    ] = None,
    mel: Annotated[str, typer.Option(help="The mel the generator reads: rtvc (16 kHz, hop 200) or hifigan.")] = "rtvc",
    preset: Annotated[str, typer.Option(help="Generator layout: v1, v2 or v3 (sizes overridable with -o).")] = "v3",
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Generator size key=JSON (upsample_rates=[8,5,5], ...)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Segments per step, the global batch (original: 16).")] = 16,
    segment_frames: Annotated[
        int, typer.Option(min=1, help="Mel frames per segment (original: 32 = 8192 samples at hop 256).")
    ] = 32,
    disc_width: Annotated[
        float, typer.Option(help="Width of both discriminators (1.0: the original's 70.7 M parameters; 0.25 for CPUs).")
    ] = 1.0,
    adversarial_start: Annotated[
        int, typer.Option(min=0, help="Generator alone on the mel loss before this step; then the GAN (original: 0).")
    ] = 0,
    max_steps: Annotated[int, typer.Option(min=1, help="Stop after this many steps in total.")] = 100000,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Save run_dir/checkpoint.pt every K steps.")] = 200,
    backup_every: Annotated[
        int, typer.Option(min=0, help="Also keep checkpoint_<step>.pt every K steps (0: never).")
    ] = 0,
    log_every: Annotated[int, typer.Option(min=1, help="Print and log the losses every K steps.")] = 10,
    sample_every: Annotated[
        int, typer.Option(min=0, help="A sample wav and mel plot every K steps (0: never).")
    ] = 1000,
    valid_data: Annotated[
        list[Path] | None,
        typer.Option(help="Held-out audio (folder or manifest, repeatable): mel L1 every --valid-every steps."),
    ] = None,
    valid_every: Annotated[int, typer.Option(min=0, help="Measure each --valid-data every K steps (0: never).")] = 1000,
    valid_clips: Annotated[int, typer.Option(min=1, help="Clips measured per --valid-data.")] = 8,
    precision: Annotated[
        str, typer.Option(help="auto (bf16 where the CPU has AMX / AVX-512 BF16), fp32 or bf16 (discriminators).")
    ] = "auto",
    bf16_generator: Annotated[
        bool, typer.Option(help="With bf16: the generator's forward pass under bfloat16 autocast too.")
    ] = False,
    stft_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Add Parallel WaveGAN's multi-resolution STFT loss (spectral convergence + log magnitude) with "
            "this weight; not in the original (0). A change on --resume is recorded in the checkpoint.",
        ),
    ] = 0.0,
    frame_sync_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Add a loss on what repeats once per mel frame beyond the real segment (the frame-rate buzz of a "
            "generator without noise input) with this weight; not in the original (0). Changes on --resume are "
            "recorded in the checkpoint.",
        ),
    ] = 0.0,
    periodicity_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Add a loss on the output's periodicity (frame-wise normalised autocorrelation over 60-500 Hz "
            "pitch periods) against the real segment's, with this weight: voiced where the recording is voiced, "
            "at its period (segments smoothed by --mel-smoothing: as periodic, at any period). Not in the original "
            "(0). Changes on --resume are recorded in the checkpoint.",
        ),
    ] = 0.0,
    mel_smoothing: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Smooth some input mels across frequency (Gaussian, sigma drawn from [0, this] mel bands), the "
            "audio target unchanged: robustness to a synthesizer's smooth mels. Not in the original (0).",
        ),
    ] = 0.0,
    mel_smoothing_probability: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The share of segments --mel-smoothing smooths.")
    ] = 0.5,
    smoothed_targets: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="For segments whose input --mel-smoothing smoothed: this share of their mel loss compares the "
            "output's and the recording's loss mels smoothed the same way, and of their STFT loss is left out "
            "(0: the recording's sharp mel, as the original; 1: all smoothed). Changes on --resume are recorded.",
        ),
    ] = 0.0,
    unpaired_mels: Annotated[
        list[Path] | None,
        typer.Option(
            help="Synthesizer mels without audio (a folder of .npy, e.g. from recipes/demo/free_mels.py; "
            "repeatable): each GAN step adds a step on a batch of them (needs --unpaired-weight). Not in the original."
        ),
    ] = None,
    unpaired_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Weight of the unpaired step's generator losses (its output's mel must be the mel given; the "
            "discriminators must take it for real). Changes on --resume are recorded in the checkpoint.",
        ),
    ] = 0.0,
    unpaired_frame_sync_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="In the unpaired step, add the frame-sync loss with this weight (inside --unpaired-weight): the "
            "output for synthesizer mels may repeat once per mel frame no more than the batch's real segments do. "
            "Needs --unpaired-mels. Changes on --resume are recorded in the checkpoint.",
        ),
    ] = 0.0,
    generator_lr: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="The generator's learning rate before the per-epoch decay (default: the original's 2e-4 for a new "
            "run, the run's own on --resume). A change on --resume is recorded in the checkpoint and keeps the "
            "decay so far.",
        ),
    ] = None,
    discriminator_lr: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="The same for both discriminators (default: 2e-4 for a new run, the run's own on --resume).",
        ),
    ] = None,
    threads: Annotated[int, typer.Option(min=0, help="torch CPU threads (0: torch's default).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the initial weights, the clip order and the segments.")] = 1234,
    init: Annotated[
        Path | None,
        typer.Option(help="Start a new run from generator weights (an original g_XXXXXXXX or a vcframe safetensors)."),
    ] = None,
    init_discriminators: Annotated[
        Path | None, typer.Option(help="... and discriminator weights (an original do_XXXXXXXX file).")
    ] = None,
    speaker_embeddings: Annotated[
        Path | None,
        typer.Option(
            help="Condition the generator on the voice: an .npz of speaker embeddings by voice "
            "(recipes/demo/speaker_embeddings.py) covering every training and unpaired voice. A new run gets "
            "speaker_embedding_dim from it (from --init weights without conditioning: a zero map, the same "
            "function); a conditioned run needs it again on --resume. Not in the original.",
        ),
    ] = None,
    speaker_lr_factor: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="With --speaker-embeddings, the speaker projection learns at this many times the generator's "
            "rate (a new run; a resumed run keeps its own).",
        ),
    ] = 10.0,
    speaker_loss_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Add the speaker-identity loss with this weight (paired and unpaired steps): GE2E's softmax loss of "
            "each output segment against every training voice of --speaker-embeddings (needed), the encoder frozen. "
            "Needs the vcframe-ge2e plugin. Not in the original (0); changes on --resume are recorded.",
        ),
    ] = 0.0,
    unpaired_speaker_loss_weight: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="The speaker-identity loss's weight in the unpaired steps instead of --speaker-loss-weight's "
            "(needs --unpaired-mels and --speaker-embeddings; 0: the paired steps only). Changes on --resume are "
            "recorded.",
        ),
    ] = None,
    speaker_loss_encoder: Annotated[
        str,
        typer.Option(
            help="The GE2E weights the speaker-identity loss embeds with ('default': the pretrained resemblyzer "
            "weights; 'registry:<id>' or a path); their embedding space must be the --speaker-embeddings'.",
        ),
    ] = "default",
    resume: Annotated[bool, typer.Option(help="Continue exactly from run_dir/checkpoint.pt.")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
) -> None:
    """Train the generator against MPD + MSD with the original losses; atomic checkpoints, exact --resume.

    With --resume the run's sizes, mel, seed, batch, segment and width come from the checkpoint; --data may
    change (e.g. to GTA mels for fine-tuning: a new epoch starts over the new clips, recorded in the checkpoint).
    Runs as one process or under ``torchrun --nproc_per_node=N`` (DDP; --batch-size is the global batch).
    """
    arguments = dict(locals())
    from vcframe.distributed import run_fit

    run_fit(_fit, device, arguments)


def _fit(session: TrainingSession, **arguments: Any) -> None:
    args = dict(arguments)
    from vcframe.distributed import ShardedBatchSampler, TrainingClock, prepare_run_folder

    if args["threads"]:
        limit_threads(args["threads"])
    run_dir: Path = args["run_dir"]
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / "checkpoint.pt"
    saved: dict[str, Any] | None = None
    if session.should_resume(args["resume"], checkpoint_path):
        if not checkpoint_path.is_file():
            raise CheckpointError(f"nothing to resume: {str(checkpoint_path)!r} does not exist", hint="drop --resume")
        saved = load_torch(checkpoint_path, what="training checkpoint")
        settings = dict(saved["train"])
    else:
        if args["mel"] not in MELS:
            raise ConfigError(f"unknown mel {args['mel']!r}", hint=f"use one of {', '.join(MELS)}")
        settings = {
            "mel": MELS[args["mel"]].model_dump(mode="json"),
            "generator": generator_sizes(
                args["preset"],
                parse_json_options(args["option"], example="-o upsample_initial_channel=128"),
                MELS[args["mel"]],
            ).to_original(),
            **{name: args[name] for name in ("batch_size", "segment_frames", "disc_width", "seed")},
        }
    speaker_vectors = load_speaker_vectors(args["speaker_embeddings"]) if args["speaker_embeddings"] else None
    if saved is None and speaker_vectors is not None:
        settings["generator"] = {**settings["generator"], "speaker_embedding_dim": speaker_vectors.dim}
        settings["speaker_lr_factor"] = args["speaker_lr_factor"]
    spec = MelSpec.model_validate(settings["mel"])
    sizes = GeneratorConfig.from_original(settings["generator"])
    if (speaker_vectors.dim if speaker_vectors else 0) != sizes.speaker_embedding_dim:
        raise ConfigError(
            f"the run's generator reads speaker embeddings of {sizes.speaker_embedding_dim} values (0: none) but "
            f"--speaker-embeddings gives {speaker_vectors.dim if speaker_vectors else 'none'}",
            hint="give the run's own speaker-embeddings file again on --resume, or none for an unconditioned run",
        )
    batch_size, segment_frames, seed = settings["batch_size"], settings["segment_frames"], settings["seed"]
    if batch_size < session.world_size:
        raise ConfigError(f"--batch-size {batch_size} is smaller than the {session.world_size} processes")
    if bool(args["unpaired_mels"]) != bool(args["unpaired_weight"]):
        raise ConfigError(
            "--unpaired-mels and --unpaired-weight go together: "
            f"got {len(args['unpaired_mels'] or [])} unpaired source(s) and weight {args['unpaired_weight']}",
            hint="give both (e.g. --unpaired-mels DIR --unpaired-weight 1) or neither",
        )
    if args["unpaired_frame_sync_weight"] and not args["unpaired_mels"]:
        raise ConfigError(
            f"--unpaired-frame-sync-weight {args['unpaired_frame_sync_weight']:g} acts in the unpaired steps, "
            "and there are none",
            hint="add --unpaired-mels DIR --unpaired-weight W, or drop --unpaired-frame-sync-weight",
        )
    if args["periodicity_weight"] and segment_frames * spec.hop_length < periodicity_window(spec.sample_rate):
        raise ConfigError(
            f"--periodicity-weight compares frames of {periodicity_window(spec.sample_rate)} samples, longer than "
            f"a segment of {segment_frames} frames ({segment_frames * spec.hop_length} samples)",
            hint="raise --segment-frames, or drop --periodicity-weight",
        )
    if args["smoothed_targets"] and not (args["mel_smoothing"] and args["mel_smoothing_probability"]):
        raise ConfigError(
            f"--smoothed-targets {args['smoothed_targets']:g} acts on the segments --mel-smoothing smooths, "
            f"and it smooths none (--mel-smoothing {args['mel_smoothing']:g}, --mel-smoothing-probability "
            f"{args['mel_smoothing_probability']:g})",
            hint="add --mel-smoothing SIGMA (e.g. 2.5), or drop --smoothed-targets",
        )
    if args["unpaired_speaker_loss_weight"] is None:
        args["unpaired_speaker_loss_weight"] = args["speaker_loss_weight"]
    elif args["unpaired_speaker_loss_weight"] and not args["unpaired_mels"]:
        raise ConfigError(
            f"--unpaired-speaker-loss-weight {args['unpaired_speaker_loss_weight']:g} acts in the unpaired steps, "
            "and there are none",
            hint="add --unpaired-mels DIR --unpaired-weight W, or drop --unpaired-speaker-loss-weight",
        )
    speaker_option = next(
        (name for name in ("speaker_loss_weight", "unpaired_speaker_loss_weight") if args[name]), None
    )
    if speaker_option is not None and speaker_vectors is None:
        raise ConfigError(
            f"--{speaker_option.replace('_', '-')} {args[speaker_option]:g} tells the training voices apart, and "
            "there are no speaker embeddings",
            hint="add --speaker-embeddings FILE.npz (recipes/demo/speaker_embeddings.py), or drop the loss",
        )
    for name in LEARNING_RATES:
        if args[name] is not None and args[name] <= 0:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be above 0, got {args[name]:g}", hint=f"e.g. {flag} 1e-4, or leave it out")
    target = session.device
    precision = resolve_precision(args["precision"], target)
    torch.manual_seed(seed)  # the networks first: a bad size or --init is refused before the data loads
    generator = Generator(sizes).to(target)
    mpd = MultiPeriodDiscriminator(width=settings["disc_width"]).to(target)
    msd = MultiScaleDiscriminator(width=settings["disc_width"]).to(target)
    initialised_from: dict[str, Any] | None
    if saved is None:
        initialised_from = _initialise(generator, mpd, msd, args["init"], args["init_discriminators"])
        if initialised_from is not None:
            sources = [initialised_from["source"], initialised_from["discriminators"]]
            session.echo(f"initialised from {' and '.join(source for source in sources if source)}")
    else:  # a resumed run keeps the record of its first start
        initialised_from = saved.get("init")
    mel_cache = MelCache(args["mel_cache"] or run_dir / "mel_cache")
    clips, description, fingerprint = load_clips(args["data"], spec, min_frames=segment_frames, mel_cache=mel_cache)
    session.echo(f"training data: {description} ({mel_cache.describe()})")
    unpaired = (
        load_unpaired_mels(args["unpaired_mels"], spec, min_frames=segment_frames) if args["unpaired_mels"] else None
    )
    if unpaired is not None:
        session.echo(f"unpaired mels: {unpaired.description}")
    speaker_rows: torch.Tensor | None = None
    unpaired_rows: torch.Tensor | None = None
    if speaker_vectors is not None:
        voices = [clip.speaker for clip in clips]
        speaker_rows = speaker_vectors.rows(voices, "training data").to(target)
        unpaired_rows = speaker_vectors.rows(unpaired.speakers, "unpaired mels").to(target) if unpaired else None
        session.echo(
            f"speaker embeddings: {speaker_vectors.space}, {speaker_vectors.dim} values, "
            f"{len(set(voices))} training voices"
        )
        if saved is None:  # the generator standardises embeddings by its training voices' (see Generator)
            mean, scale = speaker_vectors.standardisation(voices)
            with torch.no_grad():
                generator.speaker_embedding_mean.copy_(mean)
                generator.speaker_embedding_scale.copy_(scale)
    speaker_record = (
        {
            "path": str(args["speaker_embeddings"]),
            "space": speaker_vectors.space,
            "fingerprint": speaker_vectors.fingerprint,
        }
        if speaker_vectors is not None
        else None
    )
    speaker_loss: SpeakerIdentityLoss | None = None
    clip_voices: torch.Tensor | None = None
    unpaired_voices: torch.Tensor | None = None
    speaker_loss_record: dict[str, Any] | None = None
    if speaker_option is not None and speaker_vectors is not None:
        table = sorted({clip.speaker for clip in clips} | set(unpaired.speakers if unpaired else []))
        speaker_loss, speaker_loss_record = _speaker_loss(
            args["speaker_loss_encoder"], speaker_vectors, table, spec, target
        )
        index = {voice: position for position, voice in enumerate(table)}
        clip_voices = torch.tensor([index[clip.speaker] for clip in clips], device=target)
        if unpaired is not None:
            unpaired_voices = torch.tensor([index[voice] for voice in unpaired.speakers], device=target)
        speaker_loss_record["voices"] = len(table)
        session.echo(
            f"speaker-identity loss: {len(table)} voices (chance {chance_loss(len(table)):.2f}), encoder "
            f"{speaker_loss_record['checkpoint']} ({speaker_loss_record['space']})"
        )
    held_out = [held_out_clips(path, spec, args["valid_clips"]) for path in args["valid_data"] or []]
    optim_g = torch.optim.AdamW(
        generator_parameter_groups(generator, float(settings.get("speaker_lr_factor", 1.0))),
        LEARNING_RATE,
        betas=ADAM_BETAS,
        weight_decay=WEIGHT_DECAY,
    )
    optim_d = torch.optim.AdamW(
        [*msd.parameters(), *mpd.parameters()], LEARNING_RATE, betas=ADAM_BETAS, weight_decay=WEIGHT_DECAY
    )
    sched_g = torch.optim.lr_scheduler.ExponentialLR(optim_g, gamma=LR_DECAY)
    sched_d = torch.optim.lr_scheduler.ExponentialLR(optim_d, gamma=LR_DECAY)
    requested_rates = {name: args[name] for name in LEARNING_RATES}
    step, epoch, batch_in_epoch = 0, 0, 0
    data_changes: list[dict[str, Any]] = []
    loss_changes: list[dict[str, Any]] = []
    loss_weights = {name: float(args[name]) for name in LOSS_WEIGHTS}
    smoothing = {"mel_smoothing": args["mel_smoothing"], "mel_smoothing_probability": args["mel_smoothing_probability"]}
    smoothing_changes: list[dict[str, Any]] = []
    if saved is not None:
        generator.load_state_dict(saved["generator"])
        mpd.load_state_dict(saved["mpd"])
        msd.load_state_dict(saved["msd"])
        optim_g.load_state_dict(saved["optim_g"])
        optim_d.load_state_dict(saved["optim_d"])
        sched_g.load_state_dict(saved["sched_g"])
        sched_d.load_state_dict(saved["sched_d"])
        step, epoch, batch_in_epoch = int(saved["step"]), int(saved["epoch"]), int(saved["batch_in_epoch"])
        data_changes = list(saved.get("data_changes", []))
        torch.set_rng_state(session.rng_state_of(saved)["torch"])
        if saved["data_fingerprint"] != fingerprint:
            if batch_in_epoch:
                epoch, batch_in_epoch = epoch + 1, 0
            data_changes.append({"step": step, "epoch": epoch, "data": description})
            session.echo(f"the training data changed at step {step}: epoch {epoch} starts over the new clips")
        if saved.get("unpaired_fingerprint") != (unpaired.fingerprint if unpaired else None):
            data_changes.append({"step": step, "unpaired": unpaired.description if unpaired else None})
            session.echo(f"the unpaired mels changed at step {step}: {unpaired.description if unpaired else 'none'}")
        loss_changes, notes = record_loss_weights(saved.get("loss_changes", []), loss_weights, step)
        for note in notes:
            session.echo(note)
        smoothing_changes, smoothing_note = record_smoothing(
            saved.get("smoothing_changes", []), args["mel_smoothing"], args["mel_smoothing_probability"], step
        )
        if smoothing_note:
            session.echo(smoothing_note)
        old_rates = run_learning_rates(saved.get("lr_changes", []))
        lr_changes, rates, notes = record_learning_rates(saved.get("lr_changes", []), requested_rates, step)
        for note in notes:
            session.echo(note)
        session.echo(f"resumed at step {step} (epoch {epoch}, batch {batch_in_epoch})")
    else:
        if any(loss_weights.values()):
            loss_changes.append({"step": 0, **loss_weights})
        smoothing_changes, _ = record_smoothing([], args["mel_smoothing"], args["mel_smoothing_probability"], 0)
        lr_changes, rates, _ = record_learning_rates([], requested_rates, 0)
        old_rates = run_learning_rates([])  # the optimisers were made at the original's rate
    for name, (optimizer, scheduler) in {
        "generator_lr": (optim_g, sched_g),
        "discriminator_lr": (optim_d, sched_d),
    }.items():
        rescale_learning_rate(optimizer, scheduler, old_rates[name], rates[name])
    for note in session.on_main(prepare_run_folder, run_dir, step, ["log.jsonl", "valid.jsonl"]) or []:
        session.echo(note)
    config_record = {
        "train": settings,
        "data": description,
        "precision": precision,
        "bf16_generator": args["bf16_generator"],
        "adversarial_start": args["adversarial_start"],
        **loss_weights,
        "loss_changes": loss_changes,
        **smoothing,
        "smoothing_changes": smoothing_changes,
        **rates,
        "lr_changes": lr_changes,
        "unpaired_mels": unpaired.description if unpaired else None,
        "speaker_embeddings": speaker_record,
        "speaker_loss": speaker_loss_record,
        **({"init": initialised_from} if initialised_from else {}),
        "parameters": {name: sum(p.numel() for p in m.parameters()) for name, m in _networks(generator, mpd, msd)},
    }
    if session.is_main:
        from vcframe._io import atomic_write

        with atomic_write(run_dir / "config.json", "w") as stream:
            json.dump(config_record, stream, indent=1)
    counts = config_record["parameters"]
    session.echo(
        f"generator {sizes.describe()} ({counts['generator'] / 1e6:.2f} M), discriminators width "
        f"{settings['disc_width']} ({(counts['mpd'] + counts['msd']) / 1e6:.2f} M), {precision}"
        f"{' (generator too)' if args['bf16_generator'] and precision == 'bf16' else ''}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    gan = GANStep(
        generator,
        mpd,
        msd,
        optim_g,
        optim_d,
        MelFrontEnd(loss_mel_spec(spec)).to(target),
        precision,
        args["bf16_generator"],
        args["stft_weight"],
        session.wrap(generator),
        session.wrap(mpd),
        session.wrap(msd),
        target.type,
        args["frame_sync_weight"],
        spec.hop_length,
        MelFrontEnd(spec).to(target) if unpaired else None,
        args["unpaired_weight"],
        args["unpaired_frame_sync_weight"],
        args["smoothed_targets"],
        speaker_loss,
        args["speaker_loss_weight"],
        args["periodicity_weight"],
        spec.sample_rate,
        args["unpaired_speaker_loss_weight"],
    )
    networks = torch.nn.ModuleDict(dict(_networks(generator, mpd, msd)))  # every replica's digest covers all three
    clock = TrainingClock(saved)
    clock.pause_on_sigtstp()

    def save(path: Path) -> None:
        states = {"torch": torch.get_rng_state()}
        payload = {
            "generator": generator.state_dict(),
            "mpd": mpd.state_dict(),
            "msd": msd.state_dict(),
            "optim_g": optim_g.state_dict(),
            "optim_d": optim_d.state_dict(),
            "sched_g": sched_g.state_dict(),
            "sched_d": sched_d.state_dict(),
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "train": settings,
            "data": description,
            "data_fingerprint": fingerprint,
            "data_changes": data_changes,
            "loss_changes": loss_changes,
            "smoothing_changes": smoothing_changes,
            "lr_changes": lr_changes,
            "unpaired_data": unpaired.description if unpaired else None,
            "unpaired_fingerprint": unpaired.fingerprint if unpaired else None,
            "speaker_embeddings": speaker_record,
            "speaker_loss": speaker_loss_record,
            **({"init": initialised_from} if initialised_from else {}),
            "rng": states,
            "train_seconds": clock.seconds(),
            **session.checkpoint_extras(states, networks),
        }
        session.on_main(save_torch, payload, path)

    segments = EpochSegments([clip.frames for clip in clips], batch_size, segment_frames, seed)
    mel_smoothing = (
        MelSmoothing(args["mel_smoothing"], args["mel_smoothing_probability"], seed) if args["mel_smoothing"] else None
    )
    sharded = ShardedBatchSampler(segments, session)
    unpaired_frames = [mel.shape[1] for mel in unpaired.mels] if unpaired else []
    log = open(run_dir / "log.jsonl", "a") if session.is_main else None  # noqa: SIM115 - closed in finally
    valid_log = open(run_dir / "valid.jsonl", "a") if session.is_main and held_out else None  # noqa: SIM115
    sample_clip = held_out[0].clips[0] if held_out else clips[0]
    limit, hop = args["max_steps"], spec.hop_length
    for network in (generator, mpd, msd):
        network.train()
    try:
        while step < limit:
            sharded.set_epoch(epoch, skip=batch_in_epoch)
            for shard in sharded:
                if step >= limit:
                    break
                session.fault_point(step + 1)
                mels, audio = collate(clips, shard.items, segment_frames, hop, mel_smoothing)
                sigmas = (
                    smoothing_sigmas(clips, shard.items, mel_smoothing)
                    if args["smoothed_targets"] or args["periodicity_weight"]
                    else None
                )
                adversarial = step >= args["adversarial_start"]
                members = [clip for clip, _ in shard.items]
                speakers = None if speaker_rows is None else speaker_rows[members]
                losses = gan(
                    mels.to(target),
                    audio.to(target),
                    adversarial=adversarial,
                    weight=shard.weight,
                    sigmas=sigmas,
                    speakers=speakers,
                    voices=None if clip_voices is None else clip_voices[members],
                )
                if unpaired is not None and adversarial:
                    picks = unpaired_picks(unpaired_frames, len(shard.batch), segment_frames, seed, step)[
                        shard.start : shard.stop
                    ]
                    unpaired_batch = collate_unpaired(unpaired.mels, picks, segment_frames)
                    chosen = [index for index, _ in picks]
                    losses |= gan.unpaired(
                        unpaired_batch.to(target),
                        audio.to(target),
                        weight=shard.weight,
                        speakers=None if unpaired_rows is None else unpaired_rows[chosen],
                        voices=None if unpaired_voices is None else unpaired_voices[chosen],
                    )
                step, batch_in_epoch = step + 1, shard.index + 1
                if step % args["log_every"] == 0 or step == limit:
                    means = session.weighted_mean(losses, len(shard))
                    record: dict[str, Any] = {
                        "step": step,
                        "epoch": epoch,
                        "lr": float(f"{optim_g.param_groups[0]['lr']:.6g}"),
                        "seconds": round(clock.seconds(), 2),
                        **{name: round(value, 5) for name, value in means.items()},
                    }
                    if log is not None:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    session.echo(" ".join(f"{k}={v}" for k, v in record.items()))
                if held_out and args["valid_every"] and step % args["valid_every"] == 0:
                    for held in held_out:
                        error = session.on_main(held.measure, generator, gan.loss_front_end, target)
                        record = {"step": step, "data": held.name, "clips": len(held.clips), "mel_l1": error}
                        if valid_log is not None and error is not None:
                            record["mel_l1"] = round(error, 5)
                            valid_log.write(json.dumps(record) + "\n")
                            valid_log.flush()
                            session.echo("valid " + " ".join(f"{k}={v}" for k, v in record.items()))
                if args["sample_every"] and step % args["sample_every"] == 0:
                    session.on_main(write_sample, generator, sample_clip, spec, run_dir / "samples", step)
                if step % args["checkpoint_every"] == 0:
                    save(checkpoint_path)
                if args["backup_every"] and step % args["backup_every"] == 0:
                    save(run_dir / f"checkpoint_{step:07d}.pt")
            else:  # the epoch's batches are all done: the original steps both schedulers once per epoch
                batch_in_epoch = len(segments)
            if batch_in_epoch >= len(segments):
                with warnings.catch_warnings():  # in a warm-up the discriminators' optimiser has not stepped yet
                    warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))
                    sched_g.step()
                    sched_d.step()
                epoch, batch_in_epoch = epoch + 1, 0
    finally:
        for open_log in (log, valid_log):
            if open_log is not None:
                open_log.close()
    save(checkpoint_path)
    session.echo(f"stopped at step {step}; checkpoint {checkpoint_path}")


def _speaker_loss(
    reference: str, speaker_vectors: SpeakerVectors, table: list[str], spec: MelSpec, target: torch.device
) -> tuple[SpeakerIdentityLoss, dict[str, Any]]:
    """The speaker-identity loss over the voices ``table`` names, with the GE2E weights ``reference``, and its
    record; ConfigError (one line) without the vcframe-ge2e plugin, for another embedding space than the speaker
    embeddings', a mel not at 16 kHz or fewer than two voices."""
    if spec.sample_rate != RTVC_ENCODER_MEL.sample_rate:
        raise ConfigError(
            f"the speaker-identity loss embeds {RTVC_ENCODER_MEL.sample_rate} Hz audio (GE2E's) and this run's "
            f"generator makes {spec.sample_rate} Hz",
            hint="train at the RTVC mel (--mel rtvc), or drop --speaker-loss-weight",
        )
    if len(table) < 2:
        raise ConfigError(
            f"the speaker-identity loss tells voices apart and the training data has {len(table)}",
            hint="train on several voices, or drop --speaker-loss-weight",
        )
    try:
        encoder, record = load_ge2e_network(reference, target)
    except ImportError as error:
        raise ConfigError(
            f"--speaker-loss-weight needs the vcframe-ge2e plugin ({error})",
            hint="pip install 'vcframe-hifigan[speaker-loss]' (or ./plugins/encoders/ge2e[pretrained])",
        ) from error
    if record["space"] != speaker_vectors.space:
        raise ConfigError(
            f"the speaker-identity loss's encoder makes {record['space']!r} embeddings and --speaker-embeddings "
            f"holds {speaker_vectors.space!r}",
            hint="make the speaker embeddings with the same encoder (recipes/demo/speaker_embeddings.py)",
        )
    try:
        loss = SpeakerIdentityLoss(encoder, speaker_vectors.rows(table, "training data"), spec.sample_rate)
    except ValueError as error:
        raise ConfigError(f"the speaker-identity loss: {error}", hint="check --speaker-embeddings") from error
    return loss.to(target), record


def _networks(
    generator: Generator, mpd: MultiPeriodDiscriminator, msd: MultiScaleDiscriminator
) -> list[tuple[str, torch.nn.Module]]:
    return [("generator", generator), ("mpd", mpd), ("msd", msd)]


def _initialise(
    generator: Generator,
    mpd: MultiPeriodDiscriminator,
    msd: MultiScaleDiscriminator,
    init: Path | None,
    init_discriminators: Path | None,
) -> dict[str, Any] | None:
    """Load ``--init`` (generator) and ``--init-discriminators`` (an original ``do_`` file's mpd and msd).

    Returns where the weights came from, recorded in the run's checkpoints and its export (None without
    ``--init``): ``{"source": "PATH (NAME, N steps)", "steps": N, "discriminators": PATH or None}``, N the steps the
    file records (0 when it records none, e.g. an original ``g_`` file), so that the steps a generator has seen
    are its run's plus ``steps``."""
    from vcframe.checkpoints import load_state
    from vcframe_hifigan.model import ORIGINAL_STATE_KEY, load_generator_state

    record: dict[str, Any] | None = None
    if init is not None:
        state, metadata = load_state(init, state_keys=(ORIGINAL_STATE_KEY,))
        load_generator_state(generator, state, str(init), add_speaker=True)
        steps = int(metadata.get("steps", 0) or 0)
        record = {"source": init_source(init, init.name, steps), "steps": steps, "discriminators": None}
    if init_discriminators is not None:
        for name, network in (("mpd", mpd), ("msd", msd)):
            state, _ = load_state(init_discriminators, state_keys=(name,))
            try:
                network.load_state_dict(state)
            except RuntimeError as error:
                lines = str(error).splitlines()
                raise CheckpointError(
                    f"the {name} weights of {str(init_discriminators)!r} do not fit discriminators of width "
                    f"{_width_of(network)} ({(lines[1] if len(lines) > 1 else lines[0]).strip()})",
                    hint="give an original do_XXXXXXXX file; the original's discriminators are --disc-width 1.0",
                ) from error
        record = {**(record or {"source": None, "steps": 0}), "discriminators": str(init_discriminators)}
    return record


def _width_of(network: torch.nn.Module) -> float:
    first = next(module for module in network.modules() if isinstance(module, torch.nn.Conv1d | torch.nn.Conv2d))
    return first.out_channels / (32 if isinstance(network, MultiPeriodDiscriminator) else 128)


# -- export -----------------------------------------------------------------------------------------------------


def load_run(run_dir: Path) -> tuple[dict[str, Any], Generator, MelSpec]:
    """(checkpoint, generator with its weights, mel spec) of a training run."""
    path = run_dir / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"no training checkpoint at {str(path)!r}", hint="run 'fit' first")
    saved = load_torch(path, what="training checkpoint")
    generator = Generator(GeneratorConfig.from_original(saved["train"]["generator"]))
    generator.load_state_dict(saved["generator"])
    return saved, generator, MelSpec.model_validate(saved["train"]["mel"])


@app.command()
def export(
    run_dir: Annotated[Path, typer.Option(help="The training run (reads run_dir/checkpoint.pt).")],
    out: Annotated[Path | None, typer.Option(help="Output .safetensors (the vocoder's checkpoint format).")] = None,
    original_dir: Annotated[
        Path | None,
        typer.Option(help="Also write the original's g_XXXXXXXX, do_XXXXXXXX and config.json into this folder."),
    ] = None,
    training_data: Annotated[str, typer.Option(help="What the weights were trained on (default: the run's).")] = "",
    license: Annotated[str, typer.Option(help="Licence of the weights.")] = "MIT",
) -> None:
    """Write the generator (weight norm folded) as safetensors with its sizes, mel spec, steps, data and licence;
    optionally the original's training files. ``steps`` counts those of the run's ``--init`` too (recorded as
    ``init``; ``run_steps`` is the run's alone)."""
    if out is None and original_dir is None:
        raise InputError("nothing to export", hint="give --out FILE.safetensors and/or --original-dir DIR")
    saved, generator, spec = load_run(run_dir)
    step = int(saved["step"])
    if out is not None:
        from vcframe_hifigan.model import save_generator

        # a run started from other weights (--init) records them: the generator has seen their steps and the run's
        lineage = init_lineage(saved.get("init"), step)
        save_generator(
            generator,
            spec,
            out,
            steps=lineage.steps,
            training_data=training_data or saved["data"],
            license=license,
            discriminator_width=saved["train"]["disc_width"],
            **lineage.metadata,
            **{key: saved[key] for key in ("loss_changes", "smoothing_changes", "lr_changes") if saved.get(key)},
            **(
                {"speaker_embedding_space": saved["speaker_embeddings"]["space"]}
                if saved.get("speaker_embeddings")
                else {}
            ),
        )
        typer.echo(f"wrote {out} (step {step}{lineage.note}, {generator.config.describe()})")
    if original_dir is not None:
        _export_original(saved, generator, spec, original_dir)
        typer.echo(f"wrote g_{step:08d}, do_{step:08d} and config.json into {original_dir}")


@app.command()
def widen(
    init: Annotated[Path, typer.Option(help="Generator weights to widen (a vcframe-hifigan .safetensors).")],
    out: Annotated[Path, typer.Option(help="Output .safetensors: the wider generator, computing the same function.")],
    factor: Annotated[int, typer.Option(min=2, help="Channel multiplier at every stage.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the random shares that tell the channel copies apart.")] = 0,
) -> None:
    """Write a generator FACTOR times wider than --init that starts as the same function (``vcframe_hifigan.widen``),
    to go on training with more capacity: ``fit --init OUT -o upsample_initial_channel=C0*FACTOR``. The file keeps
    --init's mel spec, steps, training data and licence, and records ``widened`` (source, factor, seed)."""
    from vcframe.checkpoints import load_state
    from vcframe_hifigan.model import ORIGINAL_STATE_KEY, load_generator_state, save_generator
    from vcframe_hifigan.spec import CHECKPOINT_FORMAT
    from vcframe_hifigan.widen import widen_generator

    state, metadata = load_state(init, state_keys=(ORIGINAL_STATE_KEY,))
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise InputError(
            f"{str(init)!r} is not a vcframe-hifigan safetensors file (it records no generator sizes or mel spec)",
            hint="load it in a run (fit --init) and export that, or widen an exported .safetensors",
        )
    config = GeneratorConfig.model_validate(metadata["config"])
    spec = MelSpec.model_validate(metadata["mel_spec"])
    network = Generator(config, weight_norm=False)
    load_generator_state(network, state, str(init))
    wide = widen_generator(network, factor, seed=seed)
    kept = {key: metadata[key] for key in ("steps", "training_data", "license") if key in metadata}
    save_generator(wide, spec, out, **kept, widened={"source": str(init), "factor": factor, "seed": seed})
    typer.echo(f"wrote {out} ({wide.config.describe()}; from {config.describe()}, the same function)")


def _export_original(saved: dict[str, Any], generator: Generator, spec: MelSpec, folder: Path) -> None:
    """The original's layout: ``g_`` ({"generator": weight_g/weight_v state}), ``do_`` (discriminators, optimizers,
    steps, epoch) and ``config.json`` (generator sizes, the mel's fields, the training settings)."""
    from vcframe._io import atomic_write
    from vcframe_hifigan.generator import to_original_layout

    folder.mkdir(parents=True, exist_ok=True)
    step = int(saved["step"])
    save_torch({"generator": to_original_layout(generator.state_dict())}, folder / f"g_{step:08d}")
    save_torch(
        {
            "mpd": saved["mpd"],
            "msd": saved["msd"],
            "optim_g": saved["optim_g"],
            "optim_d": saved["optim_d"],
            "steps": step,
            "epoch": int(saved["epoch"]),
        },
        folder / f"do_{step:08d}",
    )
    train = saved["train"]
    config = {
        **generator.config.to_original(),
        "segment_size": train["segment_frames"] * spec.hop_length,
        "num_freq": spec.n_fft // 2 + 1,
        "n_fft": spec.n_fft,
        "hop_size": spec.hop_length,
        "win_size": spec.win_length,
        "sampling_rate": spec.sample_rate,
        "fmin": spec.fmin,
        "fmax": spec.fmax,
        "fmax_for_loss": None,
        "batch_size": train["batch_size"],
        "learning_rate": run_learning_rates(saved.get("lr_changes", []))["generator_lr"],
        "adam_b1": ADAM_BETAS[0],
        "adam_b2": ADAM_BETAS[1],
        "lr_decay": LR_DECAY,
        "seed": train["seed"],
        "vcframe_mel_spec": spec.model_dump(mode="json"),
    }
    with atomic_write(folder / "config.json", "w") as stream:
        json.dump(config, stream, indent=2)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
