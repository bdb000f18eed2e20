"""The Tacotron synthesizer component: text + speaker embedding -> mel, batched, with the alignment."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal

import torch
import torch.nn.functional as F

from vcframe.adaptation import (
    OUTPUT_ADAPTER_HINT,
    OUTPUT_ADAPTER_KEY,
    AdaptedEmbedding,
    OutputAdapter,
    SpeakerAdaptation,
    output_adapter,
    refuse_foreign_output_adapter,
)
from vcframe.checkpoints import check_checkpoint_component, load_state, resolve, uninitialised
from vcframe.cpu import inference_dtype
from vcframe.errors import CheckpointError, ConfigError, InputError
from vcframe.interfaces import BaseSynthesizer
from vcframe.seeding import seeded
from vcframe.specs import EmbeddingSpec, MelSpec, with_recorded_sizes
from vcframe.types import Mel, SpeakerEmbedding
from vcframe_tacotron.frontend import get_frontend
from vcframe_tacotron.inference import DecoderStep
from vcframe_tacotron.spec import SIZE_FIELDS, SPEC, TacotronConfig
from vcframe_tacotron.tacotron import Tacotron

#: Pre-net dropout at synthesis when neither the config nor the checkpoint names one: RTVC keeps it on.
RTVC_INFERENCE_DROPOUT = 0.5

#: What an RTVC ``synthesizer.pt`` (no metadata) was trained with.
RTVC_FRONTEND = "rtvc-english"


def build_network(config: TacotronConfig) -> Tacotron:
    """A randomly initialised network of the config's sizes (r set from the config, default 2 or preset)."""
    sizes = config.sizes()
    network = Tacotron(
        embed_dims=sizes["embed_dims"],
        num_chars=config.num_chars,
        encoder_dims=sizes["encoder_dims"],
        decoder_dims=sizes["decoder_dims"],
        n_mels=config.mel.n_mels,
        postnet_dims=sizes["postnet_dims"],
        encoder_K=sizes["encoder_K"],
        postnet_K=sizes["postnet_K"],
        lstm_dims=sizes["lstm_dims"],
        num_highways=sizes["num_highways"],
        speaker_embedding_size=config.embedding.dim,
        max_r=config.max_r,
    )
    network.r = sizes["r"]
    return network


def checkpoint_metadata(config: TacotronConfig, symbols: list[str] | tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """Metadata written into safetensors exports and checked at load."""
    return {
        "format": "vcframe-tacotron-v1",
        "config": {"preset": config.preset, "max_r": config.max_r, **config.sizes()},
        "frontend": config.frontend,
        "symbols": list(symbols),
        "embedding_spec": config.embedding.model_dump(),
        "mel_spec": config.mel.model_dump(mode="json"),
        **extra,
    }


def check_state_against(network: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse a state dict whose keys or shapes differ from the network's, naming the key and both shapes."""
    expected = network.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(
            f"checkpoint {source!r} is not a Tacotron of this layout ({detail})", hint="is it a synthesizer checkpoint?"
        )
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"checkpoint {source!r} does not fit the config: {key} has shape {tuple(state[key].shape)} in the "
                f"checkpoint but {tuple(tensor.shape)} in the model",
                hint="choose the preset (or sizes) the checkpoint was trained with",
            )


def check_metadata_against(
    config: TacotronConfig, symbols: tuple[str, ...], metadata: Mapping[str, Any], source: str
) -> None:
    """Refuse a checkpoint trained with another frontend, symbol table, embedding space or mel spec."""
    if metadata.get("format") != "vcframe-tacotron-v1":
        return  # an RTVC .pt: rtvc-english, GE2E, RTVC mel; the shape check covers the table size
    if metadata.get("frontend") != config.frontend:
        raise CheckpointError(
            f"checkpoint {source!r} was trained with text frontend {metadata.get('frontend')!r}, the config "
            f"uses {config.frontend!r}",
            hint=f"set frontend={metadata.get('frontend')}",
        )
    if list(metadata.get("symbols", [])) != list(symbols):
        raise CheckpointError(
            f"checkpoint {source!r} was trained with another symbol table ({len(metadata.get('symbols', []))} "
            f"symbols) than frontend {config.frontend!r} ({len(symbols)} symbols)",
            hint="use the frontend it was trained with",
        )
    embedding = EmbeddingSpec.model_validate(metadata["embedding_spec"])
    if embedding != config.embedding:
        diff = ", ".join(f"{n}: {a!r} vs {b!r}" for n, a, b in embedding.diff(config.embedding))
        raise CheckpointError(
            f"checkpoint {source!r} reads another speaker embedding ({diff}; checkpoint vs config)",
            hint="set embedding to the checkpoint's space and use a matching encoder",
        )
    mel = MelSpec.model_validate(metadata["mel_spec"])
    if mel != config.mel:
        diff = ", ".join(f"{n}: {a!r} vs {b!r}" for n, a, b in mel.diff(config.mel))
        raise CheckpointError(
            f"checkpoint {source!r} writes another mel ({diff}; checkpoint vs config)",
            hint="set mel to the checkpoint's spec",
        )


def _versions(parameters: Iterable[torch.Tensor]) -> tuple[int, ...] | None:
    """The in-place version counters of ``parameters`` (None for inference tensors, which have none)."""
    try:
        return tuple(parameter._version for parameter in parameters)
    except RuntimeError:
        return None


def _state_sha256(state: Mapping[str, torch.Tensor]) -> Any:
    """A sha256 (hashlib object) of ``state``'s names, shapes, dtypes and bytes, in its order."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        flat = tensor.detach().reshape(-1).contiguous().cpu()
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest


class TacotronSynthesizer(BaseSynthesizer):
    """RTVC's Tacotron synthesizer behind the vcframe Synthesizer interface.

    Args:
        config (TacotronConfig, default: ``SPEC.make_config()``): sizes (preset), checkpoint, inference behaviour.
        device (torch.device or str, default "cpu").

    ``synthesize(texts (B), SpeakerEmbedding (B, D) or (1, D), seed=None) -> Mel (B, n_mels, T)`` with
    ``lengths`` (B,) after the stop rule and trailing-silence trim, and ``alignment`` (B, T_dec, L) where
    ``T_dec`` is the number of decoder steps (each ``r`` frames) and ``L`` the longest id sequence.
    Texts are synthesized ``config.batch_size`` at a time; with ``masking="clean"`` and no dropout a batch
    gives the same result as one-at-a-time synthesis. ``seed`` pins the pre-net dropout masks.

    Speaker adaptation (:mod:`vcframe.adaptation`): :meth:`adapt_embedding` fits the embedding,
    :meth:`adapt_output` the output layer ``post_proj`` (an adapter the embedding's metadata carries, which
    ``synthesize`` applies to every text of that call when it fits these weights: :meth:`check_output_adapter`).
    """

    #: The layer an output adapter replaces: the post-net's last projection (n_mels, postnet_dims), no bias.
    OUTPUT_LAYER = "post_proj"

    spec = SPEC

    def __init__(self, config: TacotronConfig | None = None, *, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device=device)
        self.config: TacotronConfig
        self.frontend = get_frontend(self.config.frontend)
        if len(self.frontend.symbols) != self.config.num_chars:
            raise ConfigError(
                f"frontend {self.config.frontend!r} has {len(self.frontend.symbols)} symbols but num_chars is "
                f"{self.config.num_chars}",
                hint=f"set num_chars={len(self.frontend.symbols)}",
            )
        self.checkpoint_metadata: dict[str, Any] = {}
        self._decoder_step: tuple[tuple[Any, ...], DecoderStep] | None = None
        self._parameters_sha256: tuple[tuple[Any, ...], bytes] | None = None
        self.recommended_inference_dropout: float | None = None
        loaded: tuple[Mapping[str, torch.Tensor], Mapping[str, Any], str] | None = None
        if self.config.checkpoint is not None:
            resolved = resolve("synthesizer", SPEC.name, self.config.checkpoint)
            state, metadata = load_state(resolved.path)
            loaded = (state, metadata, str(resolved.path))
            check_checkpoint_component(metadata, "synthesizer", SPEC.name, str(resolved.path))
            self.config = with_recorded_sizes(self.config, metadata, SIZE_FIELDS, always=("max_r",))
        # weights about to load need no random initialisation (0.07 s of CPU at the default sizes)
        self.network = (
            build_network(self.config)
            if loaded is None
            else uninitialised(functools.partial(build_network, self.config))
        )
        if loaded is not None:
            self.load_weights(*loaded)
        self.network.to(self.device).eval()

    def load_weights(self, state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any], source: str) -> None:
        """Load an RTVC or vcframe state dict after checking metadata, keys and shapes."""
        check_metadata_against(self.config, self.frontend.symbols, metadata, source)
        check_state_against(self.network, state, source)
        self.network.load_state_dict(dict(state), strict=True)
        if self.config.r is not None:
            self.network.r = self.config.r
        elif not 1 <= self.network.r <= self.config.max_r:
            raise CheckpointError(
                f"checkpoint {source!r} has decoder.r = {self.network.r}, outside [1, {self.config.max_r}]"
            )
        self.checkpoint_metadata = dict(metadata)
        synthesis = metadata.get("synthesis")
        recommended = synthesis.get("inference_dropout") if isinstance(synthesis, Mapping) else None
        if recommended is not None:
            if isinstance(recommended, bool) or not isinstance(recommended, int | float) or not 0 <= recommended < 1:
                raise CheckpointError(
                    f"checkpoint {source!r} recommends inference_dropout {recommended!r}, outside [0, 1)",
                    hint="set inference_dropout in the synthesizer's options, or re-export the checkpoint",
                )
            self.recommended_inference_dropout = float(recommended)

    @property
    def inference_dropout(self) -> float:
        """Pre-net dropout at synthesis: the config's, else the checkpoint's recommendation, else RTVC's 0.5."""
        if self.config.inference_dropout is not None:
            return self.config.inference_dropout
        if self.recommended_inference_dropout is not None:
            return self.recommended_inference_dropout
        return RTVC_INFERENCE_DROPOUT

    @property
    def dtype(self) -> torch.dtype:
        """What the decoder's large products compute in: ``config.precision`` resolved for this CPU (float32 on
        CUDA)."""
        return inference_dtype(self.config.precision) if self.device.type == "cpu" else torch.float32

    def decoder_step(self) -> DecoderStep | None:
        """The fast decoder step (:mod:`vcframe_tacotron.inference`) for the network's current ``r``, weights and
        precision: built on first use and again when any of them changed (a weight modified in place, e.g. by a
        training step, moves its version counter). None on CUDA, where the plain step runs."""
        if self.device.type != "cpu":
            return None
        decoder = self.network.decoder
        key = (self.network.r, self.dtype, _versions(decoder.parameters()))
        cached = self._decoder_step
        if cached is None or cached[0] != key:
            with torch.inference_mode(False):
                cached = (key, DecoderStep(decoder, self.network.r, self.dtype))
            self._decoder_step = cached
        return cached[1]

    def weights_sha256(self) -> str:
        """The fingerprint an output adapter records and is checked against: the sha256 (64 hex digits) of the
        network's state dict (every name, shape, dtype and value; the ``step`` counter left out, as bookkeeping
        that changes no output). The parameters' part is hashed once per version of them (an in-place change,
        a training step or ``load_state_dict``, moves their version counters; about 0.05 s for the demo's 17 MB),
        the small buffers' (r, batch norm statistics) at every call."""
        state = self.network.state_dict()
        names = [name for name, _ in self.network.named_parameters()]
        versions = _versions(parameter for _, parameter in self.network.named_parameters())
        key = (id(self.network), tuple(names), versions)
        cached = self._parameters_sha256
        if versions is not None and cached is not None and cached[0] == key:
            parameters_digest = cached[1]
        else:
            parameters_digest = _state_sha256({name: state[name] for name in names}).digest()
            self._parameters_sha256 = (key, parameters_digest) if versions is not None else None
        left_out = {*names, "step"}
        buffers = {name: tensor for name, tensor in state.items() if name not in left_out}
        digest = _state_sha256(buffers)
        digest.update(parameters_digest)
        hex_digest: str = digest.hexdigest()
        return hex_digest

    def check_output_adapter(self, embedding: SpeakerEmbedding) -> None:
        """A one-line InputError unless the output adapter ``embedding`` carries (if any) fits these weights: made
        by this synthesizer for ``post_proj``, of its shape (n_mels, postnet_dims), through weights of the same
        :meth:`weights_sha256`. The message names both sides; the hint says to adapt again or use the plain
        embedding."""
        self._output_weight(embedding)

    def _output_weight(self, embedding: SpeakerEmbedding) -> torch.Tensor | None:
        """The adapter's weight (n_mels, postnet_dims) on this device, float32, once checked; None without one."""
        refuse_foreign_output_adapter(SPEC.name, embedding)
        adapter = output_adapter(embedding)
        if adapter is None:
            return None
        own = self.network.post_proj.weight
        if adapter.layer != self.OUTPUT_LAYER or tuple(adapter.weight.shape) != tuple(own.shape):
            raise InputError(
                f"the embedding's output adapter replaces a {adapter.layer} of shape {tuple(adapter.weight.shape)}; "
                f"this {SPEC.name}'s {self.OUTPUT_LAYER} has shape {tuple(own.shape)}",
                hint=OUTPUT_ADAPTER_HINT,
            )
        mine = self.weights_sha256()
        if adapter.weights_sha256 != mine:
            raise InputError(
                f"the embedding's output adapter was fitted through other {SPEC.name} weights (sha256 "
                f"{adapter.weights_sha256[:12]}..., checkpoint {adapter.checkpoint!r}) than this synthesizer's "
                f"(sha256 {mine[:12]}..., checkpoint {self._checkpoint_name()!r})",
                hint=OUTPUT_ADAPTER_HINT,
            )
        return torch.from_numpy(adapter.weight).to(self.device, torch.float32)

    def _checkpoint_name(self) -> str | None:
        checkpoint = self.config.checkpoint
        return None if checkpoint is None else str(checkpoint)

    def texts_to_ids(self, texts: list[str]) -> list[list[int]]:
        limit = SPEC.text.max_chars if SPEC.text else 2000
        ids = []
        for index, text in enumerate(texts):
            if len(text) > limit:
                raise InputError(
                    f"text {index} has {len(text)} characters, more than {limit}",
                    hint="split it into sentences (vcframe.text.split_sentences)",
                )
            ids.append(self.frontend.text_to_ids(text))
        return ids

    def _synthesize(self, texts: list[str], embedding: SpeakerEmbedding, seed: int | None) -> Mel:
        ids = self.texts_to_ids(texts)
        vectors = embedding.vector.to(self.device, torch.float32)
        output_weight = self._output_weight(embedding)  # the embedding's output adapter, for this call only
        frames: list[torch.Tensor] = []
        alignments: list[torch.Tensor] = []
        with seeded(seed, devices=[self.device]):
            for start in range(0, len(ids), self.config.batch_size):
                chunk = ids[start : start + self.config.batch_size]
                mels, attention = self._generate_batch(chunk, vectors[start : start + len(chunk)], output_weight)
                frames.extend(mels)
                alignments.extend(attention)
        lengths = torch.tensor([mel.shape[1] for mel in frames], device=self.device)
        total = int(lengths.max())
        batch = torch.full(
            (len(frames), self.config.mel.n_mels, total),
            self.config.mel.silence_value,
            dtype=torch.float32,
            device=self.device,
        )
        for row, mel in enumerate(frames):
            batch[row, :, : mel.shape[1]] = mel
        steps = max(a.shape[0] for a in alignments)
        chars = max(a.shape[1] for a in alignments)
        alignment = torch.stack([F.pad(a, (0, chars - a.shape[1], 0, steps - a.shape[0])) for a in alignments])
        metadata: dict[str, Any] = {"synthesizer": SPEC.name, "masking": self.config.masking, "seed": seed}
        if output_weight is not None:
            metadata["output_adapter"] = self.OUTPUT_LAYER
        return Mel(batch, self.config.mel, lengths, alignment, metadata)

    def _generate_batch(
        self, ids: list[list[int]], vectors: torch.Tensor, output_weight: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        text_lengths = torch.tensor([len(i) for i in ids], device=self.device)
        chars = torch.zeros(len(ids), int(text_lengths.max()), dtype=torch.long, device=self.device)
        for row, item in enumerate(ids):
            chars[row, : len(item)] = torch.tensor(item, device=self.device)
        config = self.config
        _, mel_postnet, attention, lengths = self.network.generate(
            chars,
            vectors,
            steps=config.max_frames,
            p=self.inference_dropout,
            text_lengths=text_lengths if config.masking == "clean" else None,
            stop_threshold=config.stop_threshold,
            min_frames=config.min_decoder_frames,
            silence_value=config.mel.silence_value,
            step=self.decoder_step(),
            post_proj_weight=output_weight,
        )
        mels, alignments = [], []
        r = self.network.r
        for row in range(len(ids)):
            length = int(lengths[row])
            mel = mel_postnet[row, :, :length]
            if config.trim_threshold is not None:
                peaks = mel.max(dim=0).values
                loud = torch.nonzero(peaks >= config.trim_threshold)
                length = max(int(loud[-1]) + 1 if len(loud) else 1, 1)
                mel = mel[:, :length]
            mels.append(mel)
            steps = -(-int(lengths[row]) // r)
            # clean mode: pads get no attention, so the item's own characters are kept; RTVC mode keeps the pads
            chars_kept = len(ids[row]) if config.masking == "clean" else attention.size(2)
            alignments.append(attention[row, :steps, :chars_kept])
        return mels, alignments

    def adapt_embedding(
        self, text: str, mel: Mel, embedding: SpeakerEmbedding, adaptation: SpeakerAdaptation
    ) -> AdaptedEmbedding:
        """Speaker adaptation (:mod:`vcframe.adaptation`): fit ``embedding`` to one clip's mel and transcript.

        Args:
            text: the clip's transcript (read by this synthesizer's text frontend).
            mel: Mel (1, n_mels, T) of ``config.mel`` (the clip, as the training data's mels are made).
            embedding: SpeakerEmbedding (1, D) in this synthesizer's input space: the starting point.
            adaptation: steps, wall-clock bound, Adam learning rate (``effective_learning_rate``: 0.005 unless
                set), seed.

        The loss is the trainer's (``tacotron_loss``: decoder L1 + MSE, post-net MSE, stop BCE) under teacher
        forcing, with the config's masking and the synthesis pre-net dropout (``inference_dropout``) drawn from
        ``adaptation.seed``. Only the embedding changes: the gradient is taken with respect to it alone, the
        network stays in eval mode (batch norm running statistics, no zoneout) and its buffers (the step counter)
        are put back. After each Adam step the vector goes back onto the unit sphere when the space is
        L2-normalised. ``loss_before`` and ``loss_after`` are measured with the same dropout draws.
        """
        from vcframe_tacotron.loss import tacotron_loss
        from vcframe_tacotron.validation import preserved_buffers

        batch = self._adaptation_batch(text, mel, embedding)
        silence = self.config.mel.silence_value
        start = embedding.vector.detach().to("cpu", torch.float32).clone()
        clean = self.config.masking == "clean"
        dropout = self.inference_dropout
        network = self.network

        def loss_of(vector: torch.Tensor) -> torch.Tensor:
            mel_decoder, mel_postnet, _, stop = network(
                batch["chars"],
                batch["mels"],
                vector,
                p=dropout,
                text_lengths=batch["text_lengths"] if clean else None,
                mel_lengths=batch["mel_lengths"] if clean else None,
                silence_value=silence if clean else None,
            )
            return tacotron_loss(mel_decoder, mel_postnet, stop, batch["mels"], batch["stop_target"])["loss"]

        def measured(vector: torch.Tensor) -> float:
            with seeded(adaptation.seed, devices=[self.device]), torch.no_grad():
                return float(loss_of(vector))

        started = time.perf_counter()
        was_training = network.training
        stopped_by: Literal["steps", "time"] = "steps"
        steps = 0
        with torch.inference_mode(False), torch.enable_grad(), preserved_buffers(network):
            network.eval()
            try:
                vector = start.clone().to(self.device).requires_grad_(True)
                loss_before = measured(vector.detach())
                optimizer = torch.optim.Adam([vector], lr=adaptation.effective_learning_rate)
                with seeded(adaptation.seed, devices=[self.device]):
                    while steps < adaptation.steps:
                        (gradient,) = torch.autograd.grad(loss_of(vector), [vector])
                        vector.grad = gradient
                        optimizer.step()
                        if embedding.spec.l2_normalized:
                            with torch.no_grad():
                                vector.div_(vector.norm(dim=1, keepdim=True).clamp_min(1e-12))
                        steps += 1
                        if steps < adaptation.steps and time.perf_counter() - started >= adaptation.max_seconds:
                            stopped_by = "time"
                            break
                adapted = vector.detach().clone()
                loss_after = measured(adapted)
            finally:
                network.train(was_training)
        return AdaptedEmbedding(
            embedding=replace(embedding, vector=adapted, metadata={**embedding.metadata, "adapted_steps": steps}),
            steps=steps,
            seconds=time.perf_counter() - started,
            loss_before=loss_before,
            loss_after=loss_after,
            stopped_by=stopped_by,
        )

    def adapt_output(
        self, text: str, mel: Mel, embedding: SpeakerEmbedding, adaptation: SpeakerAdaptation
    ) -> AdaptedEmbedding:
        """Output-layer adaptation (:mod:`vcframe.adaptation`, ``target="output"``): fit a replacement for
        ``post_proj``'s weight (n_mels, postnet_dims) to one clip's mel and transcript.

        Args:
            text: the clip's transcript (read by this synthesizer's text frontend).
            mel: Mel (1, n_mels, T) of ``config.mel`` (the clip, as the training data's mels are made).
            embedding: SpeakerEmbedding (1, D) in this synthesizer's input space: the speaker it is fitted for.
            adaptation: steps, wall-clock bound, Adam learning rate (``effective_learning_rate``: 0.001 unless
                set), seed.

        The input checks are :meth:`adapt_embedding`'s. The network runs once under teacher forcing with the
        embedding, as :meth:`adapt_embedding` measures its loss (the config's masking, the synthesis pre-net
        dropout drawn from ``adaptation.seed``, eval mode, no gradient), and the post-net's features of that
        decoder output are kept; then Adam fits a copy of ``post_proj``'s weight to the post-net MSE against the
        clip's mel (the trainer's ``m2_loss``), ``adaptation.steps`` steps or until the step that crosses
        ``max_seconds``. Each step is one (T, postnet_dims) x (postnet_dims, n_mels) product, so the time is mostly
        the one teacher-forced pass. Nothing of the network is written (its buffers, the step counter, are put
        back). ``loss_before`` and ``loss_after`` are the trainer's whole loss, as :meth:`adapt_embedding`
        reports, with ``post_proj``'s weight and with the adapter (the decoder and stop terms are the same in both).

        Returns the embedding, vector unchanged, whose metadata carries the :class:`~vcframe.adaptation.OutputAdapter`
        (the weight, :meth:`weights_sha256`, the checkpoint named in the config, the steps);
        :meth:`synthesize` applies it.
        """
        from vcframe_tacotron.loss import tacotron_loss
        from vcframe_tacotron.tacotron import length_mask
        from vcframe_tacotron.validation import preserved_buffers

        batch = self._adaptation_batch(text, mel, embedding)
        silence = self.config.mel.silence_value
        clean = self.config.masking == "clean"
        network = self.network
        target = batch["mels"]
        fitted_through = self.weights_sha256()
        started = time.perf_counter()
        was_training = network.training
        stopped_by: Literal["steps", "time"] = "steps"
        steps = 0
        with torch.inference_mode(False), preserved_buffers(network):
            network.eval()
            try:
                vector = embedding.vector.detach().to(self.device, torch.float32)
                with seeded(adaptation.seed, devices=[self.device]), torch.no_grad():
                    mel_decoder, mel_postnet, _, stop = network(
                        batch["chars"],
                        target,
                        vector,
                        p=self.inference_dropout,
                        text_lengths=batch["text_lengths"] if clean else None,
                        mel_lengths=batch["mel_lengths"] if clean else None,
                        silence_value=silence if clean else None,
                    )
                    lengths = batch["mel_lengths"].clamp_max(mel_decoder.size(2)) if clean else None
                    features = network.postnet(mel_decoder, lengths)  # (1, T', postnet_dims), as forward's
                    losses = tacotron_loss(mel_decoder, mel_postnet, stop, target, batch["stop_target"])
                padding = None if lengths is None else ~length_mask(lengths, features.size(1))[:, None, :]

                def projected(weight: torch.Tensor) -> torch.Tensor:
                    out = network.project_postnet(features, weight)
                    return out if padding is None else out.masked_fill(padding, silence)

                weight = network.post_proj.weight.detach().clone().requires_grad_(True)
                optimizer = torch.optim.Adam([weight], lr=adaptation.effective_learning_rate)
                with torch.enable_grad():
                    while steps < adaptation.steps:
                        (gradient,) = torch.autograd.grad(F.mse_loss(projected(weight), target), [weight])
                        weight.grad = gradient
                        optimizer.step()
                        steps += 1
                        if steps < adaptation.steps and time.perf_counter() - started >= adaptation.max_seconds:
                            stopped_by = "time"
                            break
                adapted = weight.detach().clone()
                with torch.no_grad():
                    loss_after = float(losses["m1_loss"] + F.mse_loss(projected(adapted), target) + losses["stop_loss"])
            finally:
                network.train(was_training)
        adapter = OutputAdapter(
            synthesizer=SPEC.name,
            layer=self.OUTPUT_LAYER,
            weight=adapted.cpu().numpy(),
            weights_sha256=fitted_through,
            checkpoint=self._checkpoint_name(),
            steps=steps,
        )
        metadata = {**embedding.metadata, OUTPUT_ADAPTER_KEY: adapter.to_metadata()}
        return AdaptedEmbedding(
            embedding=replace(embedding, metadata=metadata),
            steps=steps,
            seconds=time.perf_counter() - started,
            loss_before=float(losses["loss"]),
            loss_after=loss_after,
            stopped_by=stopped_by,
            target="output",
        )

    def _adaptation_batch(self, text: str, mel: Mel, embedding: SpeakerEmbedding) -> dict[str, torch.Tensor]:
        """The checks of both adaptations and the clip as a training batch of one on this device
        (``collate_items``: chars, mels, embeds, stop_target, text_lengths, mel_lengths)."""
        from vcframe_tacotron.train import collate_items

        if mel.spec != self.config.mel:
            fields = ", ".join(f"{name}: {a!r} vs {b!r}" for name, a, b in mel.spec.diff(self.config.mel))
            raise InputError(f"the reference mel is not {self.spec.name}'s mel ({fields}; given vs synthesizer)")
        if mel.batch_size != 1 or embedding.batch_size != 1:
            raise InputError(
                f"adaptation fits one clip from one embedding; got {mel.batch_size} mels and "
                f"{embedding.batch_size} embeddings"
            )
        if embedding.spec != self.input_spec:
            expected = self.input_spec.space
            raise InputError(f"{self.spec.name} expects embeddings in {expected}, got {embedding.spec.space}")
        ids = self.texts_to_ids([text])[0]
        if not ids:
            raise InputError("the reference transcript has no characters to read", hint="give the words the clip says")
        silence = self.config.mel.silence_value
        start = embedding.vector.detach().to("cpu", torch.float32).clone()
        collated = collate_items([ids], [mel.item(0)], start.numpy(), self.network.r, silence)
        return {key: value.to(self.device) for key, value in collated.items()}

    def export(self, path: str, **metadata: Any) -> None:
        """Write the weights as safetensors with the config, specs, frontend and symbols in the metadata."""
        from vcframe.checkpoints import save_safetensors

        meta = checkpoint_metadata(self.config, self.frontend.symbols, **metadata)
        save_safetensors(
            self.network.state_dict(), path, {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
        )
