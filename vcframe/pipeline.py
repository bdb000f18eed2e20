"""The cloning pipeline: reference audio + text -> waveform.

``Pipeline(...)`` resolves the three components by name, checks their compatibility from specs, and only
then builds them (which loads weights), each on first use: ``embed`` never loads the synthesizer.

    >>> pipeline = Pipeline(encoder="ge2e", synthesizer="tacotron", vocoder="griffinlim", device="cpu")
    >>> waveform = pipeline.clone("Hello there.", reference="voice.wav", seed=1)
    >>> vcframe.audio.save_audio(waveform, "hello.wav")

Long text is split into sentences, synthesized in batches (the first sentence alone, then
``synthesis_batch_size`` at a time: :func:`synthesis_batches`) and joined with short pauses. ``stream`` yields
audio sentence by sentence, and fold by fold inside a sentence when the vocoder streams; it synthesizes the next
batch of sentences in a worker thread while the current one is vocoded (``overlap=True``, same output), so its
first audio waits for one sentence's synthesis, not a whole batch's.

``clone(..., adapt_speaker=30, reference_text="...")`` first fits the speaker embedding to the reference clip
through the synthesizer (:mod:`vcframe.adaptation`); off by default. ``adapt_speaker=SpeakerAdaptation(
target="output")`` fits the synthesizer's output layer instead, carried to synthesis in the embedding's metadata.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from vcframe import __version__
from vcframe.adaptation import (
    AdaptedEmbedding,
    SpeakerAdaptation,
    adapt_speaker,
    output_adapter,
    refuse_foreign_output_adapter,
)
from vcframe.audio import load_audio, resample_waveform
from vcframe.bundles import configured_entry
from vcframe.compat import CompatReport, check, compare_specs
from vcframe.config import Settings, load_settings
from vcframe.correction import StreamingCorrection, check_sample_rate, correct_waveform
from vcframe.cpu import apply_torch_threads
from vcframe.discovery import Registry, build_component, default_registry, make_config, plugin_manager
from vcframe.errors import AudioInputError, IncompatibleComponentsError, InputError, VcframeError
from vcframe.seeding import resolve_device
from vcframe.specs import AudioSpec, ComponentSpec, MelSpec
from vcframe.spectrum import (
    DEFAULT_STRENGTH,
    REMAKE_EMBEDDING_HINT,
    STORED_SPECTRUM_KEY,
    UNSTORED_SPECTRUM_KEY,
    StoredSpectrum,
    check_log_mel,
    clips_spectrum,
    match_spectrum,
    stored_spectrum,
)
from vcframe.text import speakable_text, split_sentences
from vcframe.types import SPEAKER_EMBEDDING_KEY, Mel, SpeakerEmbedding, Waveform
from vcframe.voices import Voice, VoiceStore, resolve_reference, voice_embedding

Reference = str | os.PathLike[str] | Waveform
#: ``progress(stage, done, total)`` callbacks; stages: "load", "embed", "adapt", "synthesize", "vocode".
Progress = Callable[[str, int, int], None]
#: An embedding's metadata about its stored reference spectrum (replaced when it is measured again).
_SPECTRUM_KEYS = (STORED_SPECTRUM_KEY, UNSTORED_SPECTRUM_KEY)


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


class Pipeline:
    """Encoder + synthesizer + vocoder, checked for compatibility before any weights load.

    Args:
        encoder, synthesizer, vocoder: component names (``name`` or ``distribution:name``); None takes the
            setting (default bundle, ``vcframe.toml``, environment).
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:N``.
        settings: a :class:`~vcframe.config.Settings`; default: :func:`~vcframe.config.load_settings`.
        options: per-component options ``{kind: {option: value}}`` merged over the settings' ones.
        allow_mismatch: run incompatible components anyway; the output's metadata records the mismatch.
        adapt: bridge a mel mismatch with the first ``vcframe_mel_adapter`` hook that supports it.
        registry: where components are looked up; default: installed entry points.
        embedding_only: resolve the encoder alone (for ``embed``); clone and stream are unavailable. The
            synthesizer is still named (argument or setting) for :meth:`synthesizer_mel_spec`, read from its spec.
        threads: torch's CPU threads, set for the whole process when the pipeline is built; None takes the
            ``threads`` setting, and where that is None too, ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` when set
            (torch's count is then left as it is), else 1 (:data:`vcframe.cpu.DEFAULT_TORCH_THREADS`). A program
            that sets torch's count itself passes ``threads=torch.get_num_threads()`` to keep it.
    """

    def __init__(
        self,
        encoder: str | None = None,
        synthesizer: str | None = None,
        vocoder: str | None = None,
        *,
        device: str | torch.device | None = None,
        settings: Settings | None = None,
        options: dict[str, dict[str, Any]] | None = None,
        allow_mismatch: bool | None = None,
        adapt: bool | None = None,
        registry: Registry | None = None,
        embedding_only: bool = False,
        threads: int | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        #: torch's thread count after the pipeline set it (:func:`vcframe.cpu.apply_torch_threads`)
        self.threads = apply_torch_threads(threads if threads is not None else self.settings.threads)
        self.registry = registry if registry is not None else default_registry(self.settings.disable_plugins)
        self.device = resolve_device(device if device is not None else self.settings.device)
        names = {
            "encoder": encoder or self.settings.encoder,
            "synthesizer": synthesizer or self.settings.synthesizer,
            "vocoder": vocoder or self.settings.vocoder,
        }
        self._options = options or {}
        #: the synthesizer an embedding-only pipeline would pair with (resolved by synthesizer_mel_spec only)
        self._synthesizer_name = names["synthesizer"]
        if embedding_only:
            names = {"encoder": names["encoder"]}
        self.specs: dict[str, ComponentSpec] = {kind: self.registry.get(kind, name) for kind, name in names.items()}
        self.configs: dict[str, Any] = {kind: self._component_config(kind, spec) for kind, spec in self.specs.items()}
        self.embedding_only = embedding_only
        self.report: CompatReport | None = (
            None
            if embedding_only
            else check(
                (self.specs["encoder"], self.configs["encoder"]),
                (self.specs["synthesizer"], self.configs["synthesizer"]),
                (self.specs["vocoder"], self.configs["vocoder"]),
            )
        )
        self.allow_mismatch = self.settings.allow_mismatch if allow_mismatch is None else allow_mismatch
        self.adapt = self.settings.adapt if adapt is None else adapt
        self._mel_adapter: Callable[[Mel], Mel] | None = None
        self.bridged: list[str] = []
        self._resolve_mismatches()
        #: the mel correction strength of this pipeline's runs (:mod:`vcframe.correction`): the
        #: ``mel_correction`` setting, else the one the vocoder's registry checkpoint names, else 0 (off)
        self.mel_correction = self._mel_correction_strength()
        self._components: dict[str, Any] = {}
        #: mels of the last run, one per sentence (with alignments when the synthesizer gives them)
        self.last_mels: list[Mel] = []

    # -- construction ---------------------------------------------------------------------------------

    def _component_config(self, kind: str, spec: ComponentSpec) -> Any:
        """The config of component ``spec``: the settings' options for it, updated with the ``options`` argument's."""
        component_options = self.settings.component_options(kind, spec.name)
        component_options.update(self._options.get(kind, {}))
        return make_config(spec, component_options)

    def _resolve_mismatches(self) -> None:
        if self.report is None or self.report.ok:
            return
        remaining = list(self.report.mismatches)
        if self.adapt and self.report.mel_mismatches():
            mel_out = self.specs["synthesizer"].resolve_io(self.configs["synthesizer"])[1]
            mel_in = self.specs["vocoder"].resolve_io(self.configs["vocoder"])[0]
            adapter = plugin_manager().hook.vcframe_mel_adapter(source=mel_out, target=mel_in)
            if adapter is not None:
                self._mel_adapter = adapter
                self.bridged.append(f"mel adapter {getattr(adapter, '__name__', type(adapter).__name__)}")
                remaining = [m for m in remaining if m.link != "synthesizer -> vocoder"]
        if not remaining:
            return
        if self.allow_mismatch:
            self.bridged += [f"{m.link}: {m.describe()}" for m in remaining]
            return
        hint = "pick components that fit (vcframe check), or pass --allow-mismatch"
        if self.report.mel_mismatches() and not self.adapt:
            hint += " or --adapt to convert the mel"
        raise IncompatibleComponentsError(f"incompatible components: {self.report.summary()}", hint=hint)

    def _mel_correction_strength(self) -> float:
        if self.settings.mel_correction is not None:
            return self.settings.mel_correction
        if "vocoder" not in self.specs:
            return 0.0
        entry = configured_entry("vocoder", self.specs["vocoder"].name, self.configs["vocoder"])
        return entry.mel_correction if entry is not None and entry.mel_correction is not None else 0.0

    def component(self, kind: str) -> Any:
        """The built component of ``kind`` (built, and its weights loaded, on first use)."""
        if kind not in self.specs:
            raise InputError(f"this pipeline was built for embeddings only; it has no {kind}")
        if kind not in self._components:
            # built outside inference mode even when first used inside it (synthesis): weights made there are
            # inference tensors, which speaker adaptation cannot differentiate through
            with torch.inference_mode(False):
                self._components[kind] = build_component(
                    self.specs[kind], self.configs[kind].model_dump(), device=self.device
                )
        return self._components[kind]

    @property
    def encoder(self) -> Any:
        return self.component("encoder")

    @property
    def synthesizer(self) -> Any:
        return self.component("synthesizer")

    @property
    def vocoder(self) -> Any:
        return self.component("vocoder")

    def describe(self) -> dict[str, Any]:
        """Components, versions and options of this pipeline (recorded in output metadata)."""
        components = {}
        for kind, spec in self.specs.items():
            row = self.registry.row(kind, spec.name)
            components[kind] = {
                "name": spec.name,
                "distribution": row.distribution,
                "version": row.version,
                "options": self.configs[kind].model_dump(mode="json"),
            }
        return {"vcframe": __version__, "device": str(self.device), "components": components, "bridged": self.bridged}

    # -- references and embeddings -------------------------------------------------------------------

    def load_reference(self, reference: Reference) -> Waveform:
        """One reference clip at the encoder's sample rate, checked for length, with reference processors."""
        audio_spec: AudioSpec = self.specs["encoder"].resolve_io(self.configs["encoder"])[0]
        if isinstance(reference, Waveform):
            if reference.batch_size != 1:
                raise InputError(f"a reference is one clip; got a batch of {reference.batch_size}")
            waveform, name = resample_waveform(reference, audio_spec.sample_rate), "the reference clip"
        else:
            name = f"reference {str(reference)!r}"
            path = resolve_reference(reference, dataset_root=self.settings.dataset_root)
            waveform = load_audio(path, sample_rate=audio_spec.sample_rate)
        duration = waveform.durations[0]
        if duration < audio_spec.min_duration_s:
            raise AudioInputError(
                f"{name} is {duration:.2f} s long; {self.specs['encoder'].name} needs at least "
                f"{audio_spec.min_duration_s:.2f} s",
                hint="use a longer clip (5-10 s of speech works best)",
            )
        return self._apply_processors(waveform, "reference")

    def embedding_spec(self) -> Any:
        """The :class:`~vcframe.specs.EmbeddingSpec` the encoder produces with its configuration."""
        return self.specs["encoder"].resolve_io(self.configs["encoder"])[1]

    def synthesizer_mel_spec(self) -> MelSpec:
        """The :class:`~vcframe.specs.MelSpec` the synthesizer writes with its configuration, read from its
        registered spec (no weights load). An embedding-only pipeline resolves the synthesizer it was given (or the
        ``synthesizer`` setting) the same way; PluginError or ConfigError when it cannot."""
        if "synthesizer" in self.specs:
            spec, config = self.specs["synthesizer"], self.configs["synthesizer"]
        else:
            spec = self.registry.get("synthesizer", self._synthesizer_name)
            config = self._component_config("synthesizer", spec)
        mel_spec: MelSpec = spec.resolve_io(config)[1]
        return mel_spec

    def voice_embedding(
        self, voice: str | Voice, store: VoiceStore | None = None, *, with_spectrum: bool = False
    ) -> SpeakerEmbedding:
        """The embedding of a named voice (sample or registered) in this pipeline's encoder space; a voice
        registered with speaker adaptation gives its adapted embedding when this pipeline's synthesizer and
        weights are the ones it was adapted with. ``with_spectrum`` as in :meth:`embed`, from the voice's clip."""
        store = store if store is not None else VoiceStore()
        registered = store.get(voice)
        embedding = voice_embedding(registered, self)
        if with_spectrum:
            embedding = self._with_stored_spectrum(embedding, [self.load_reference(registered.clip)])
        return embedding

    def synthesizer_identity(self) -> dict[str, Any]:
        """What an adapted embedding is valid for: the synthesizer's name and checkpoint, the embedding space."""
        if "synthesizer" not in self.specs:
            return {}
        checkpoint = getattr(self.configs["synthesizer"], "checkpoint", None)
        return {
            "synthesizer": self.specs["synthesizer"].name,
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "embedding_space": self.embedding_spec().space,
        }

    def adapt_embedding(
        self,
        reference: Reference,
        adaptation: SpeakerAdaptation,
        *,
        embedding: SpeakerEmbedding | None = None,
        transcript: str | None = None,
        progress: Progress = _no_progress,
    ) -> AdaptedEmbedding:
        """Speaker adaptation (:func:`vcframe.adaptation.adapt_speaker`) of one reference clip.

        Args:
            reference: one clip (path, ``librispeech:<id>`` or Waveform).
            adaptation: what is fitted (``target``: the embedding, or the output layer whose adapter the result's
                metadata carries), steps, wall-clock bound, learning rate, seed.
            embedding: the starting SpeakerEmbedding (1, D) (default None: the encoder's embedding of the clip).
            transcript: the clip's words (default None: recognised offline with pocketsphinx).
        """
        if self.embedding_only:
            raise InputError("speaker adaptation needs the synthesizer; this pipeline was built for embeddings only")
        clip = self.load_reference(reference)
        start = embedding if embedding is not None else self.embed([reference], progress)
        progress("adapt", 0, 1)
        mel_spec = self.specs["synthesizer"].resolve_io(self.configs["synthesizer"])[1]
        result = adapt_speaker(self.synthesizer, clip, start, adaptation, mel_spec, transcript=transcript)
        progress("adapt", 1, 1)
        return result

    def embed(
        self, references: Sequence[Reference], progress: Progress = _no_progress, *, with_spectrum: bool = False
    ) -> SpeakerEmbedding:
        """One speaker embedding (1, D) from one or more clips of the same speaker.

        With ``with_spectrum`` (for an embedding to save: ``pipeline.embed(clips, with_spectrum=True).save(path)``,
        as ``vcframe embed`` does), its metadata also stores the clips' long-term spectrum at the synthesizer's mel
        spec (:class:`~vcframe.spectrum.StoredSpectrum`, under ``reference_spectrum``), measured as a run with the
        clips measures them, so that a run from the embedding alone is spectrum-matched as that run would be. Where
        it cannot be had (no synthesizer resolvable, a linear mel, clips without speech above silence) the metadata
        says why under ``reference_spectrum_unavailable`` instead."""
        references = _as_references(references)
        if not references:
            raise InputError(
                "no reference audio given", hint="pass --reference FILE (or --voice NAME / --embedding FILE)"
            )
        clips = [self.load_reference(reference) for reference in references]
        progress("embed", 0, 1)
        batch = Waveform.from_numpy([clip.item(0) for clip in clips], clips[0].sample_rate)
        with torch.inference_mode():
            embedding: SpeakerEmbedding = self.encoder.embed_speaker(batch)
        progress("embed", 1, 1)
        return self._with_stored_spectrum(embedding, clips) if with_spectrum else embedding

    def _with_stored_spectrum(self, embedding: SpeakerEmbedding, clips: Sequence[Waveform]) -> SpeakerEmbedding:
        """``embedding`` whose metadata stores ``clips``' spectrum at the synthesizer's mel spec (see :meth:`embed`),
        or the reason it cannot."""
        metadata = {key: value for key, value in embedding.metadata.items() if key not in _SPECTRUM_KEYS}
        try:
            mel_spec = self.synthesizer_mel_spec()
            check_log_mel(mel_spec)
            stored = StoredSpectrum(mel_spec, clips_spectrum(clips, mel_spec), len(clips))
        except VcframeError as error:
            return replace(embedding, metadata={**metadata, UNSTORED_SPECTRUM_KEY: error.message})
        return replace(embedding, metadata={**metadata, STORED_SPECTRUM_KEY: stored.to_metadata()})

    # -- synthesis ------------------------------------------------------------------------------------

    def sentences(self, text: str) -> list[str]:
        """``text`` checked and split as ``clone`` will speak it.

        Characters no voice speaks (control characters, emoji: :func:`vcframe.text.speakable_text`) are dropped;
        text with nothing left to speak (no letter or digit) is an InputError naming what was dropped.
        """
        if isinstance(text, str) and len(text) > self.settings.max_text_chars:
            raise InputError(
                f"the text has {len(text):,} characters; one run takes at most {self.settings.max_text_chars:,}",
                hint="split it into several runs or raise -o max_text_chars=N",
            )
        pieces = split_sentences(speakable_text(text).text, self.settings.max_sentence_chars)
        if not pieces:
            raise InputError("the text has no words to say", hint="give some words to say")
        return pieces

    def _embedding_for(
        self,
        reference: Reference | Sequence[Reference] | None,
        embedding: SpeakerEmbedding | None,
        voice: str | Voice | None,
        progress: Progress,
        adaptation: SpeakerAdaptation | None = None,
        reference_text: str | None = None,
    ) -> tuple[SpeakerEmbedding, AdaptedEmbedding | None]:
        if adaptation is None:
            return self._plain_embedding(reference, embedding, voice, progress), None
        if voice is not None:
            if embedding is not None or reference:
                raise InputError("give one of a reference, an embedding or a voice", hint="pass only --voice NAME")
            registered = VoiceStore().get(voice)
            start = voice_embedding(registered, self, adapted=False)
            adapted = self.adapt_embedding(
                registered.clip, adaptation, embedding=start, transcript=reference_text, progress=progress
            )
            return adapted.embedding, adapted
        if embedding is not None:
            raise InputError(
                "speaker adaptation needs the reference clip, not only its embedding",
                hint="pass --reference FILE or --voice NAME with --adapt-speaker",
            )
        if reference is None:
            raise InputError("no voice given", hint="pass a reference clip")
        references = _as_references(reference)
        if len(references) != 1:
            raise InputError(
                f"speaker adaptation fits one reference clip; got {len(references)}", hint="give one --reference"
            )
        adapted = self.adapt_embedding(references[0], adaptation, transcript=reference_text, progress=progress)
        return adapted.embedding, adapted

    def _plain_embedding(
        self,
        reference: Reference | Sequence[Reference] | None,
        embedding: SpeakerEmbedding | None,
        voice: str | Voice | None,
        progress: Progress,
    ) -> SpeakerEmbedding:
        if voice is not None:
            if embedding is not None or reference:
                raise InputError("give one of a reference, an embedding or a voice", hint="pass only --voice NAME")
            return self.voice_embedding(voice)
        if embedding is not None:
            if embedding.batch_size != 1:
                embedding = embedding.mean()
            return embedding
        if reference is None:
            raise InputError("no voice given", hint="pass a reference clip or an embedding")
        references = _as_references(reference)
        return self.embed(references, progress)

    def _matched_mel_spec(self) -> tuple[MelSpec, str]:
        """The spec of the mels spectrum matching sees, and whose they are: the synthesizer's, or with a mel
        adapter the vocoder's (the adapter's target: mels are matched after conversion)."""
        if self._mel_adapter is not None:
            vocoder = self.specs["vocoder"]
            return vocoder.resolve_io(self.configs["vocoder"])[0], f"the {vocoder.name} mel the adapter converts to"
        return self.synthesizer_mel_spec(), self.specs["synthesizer"].name

    def _spectrum_matcher(
        self,
        reference: Reference | Sequence[Reference] | None,
        voice: str | Voice | None,
        embedding: SpeakerEmbedding | None,
        record: dict[str, Any],
    ) -> tuple[Callable[[Mel], Mel] | None, str | None]:
        """With the ``match_spectrum`` setting: a function that matches a synthesized mel's long-term spectrum to
        the reference's (:func:`vcframe.spectrum.match_spectrum`), filling ``record`` as it matches (the strength,
        ``source``: ``"clip"`` or ``"embedding"``, and in ``gain_db`` each mel's mean gain in dB; empty while
        nothing was matched), and why the default leaves the run unmatched where that needs saying.

        The reference's spectrum comes from the clips (a reference or a voice; they load now, so a bad one fails
        before synthesis), else from the spectrum ``embedding`` stores (:func:`vcframe.spectrum.stored_spectrum`)
        when it was measured at the spec of the mels to match. The matcher is None when the setting is 0, and when
        it is the default (None) and there is no clip and no stored spectrum, or a stored spectrum of another mel
        spec (the reason says so, naming the differing fields); a strength set explicitly refuses those two
        (InputError). The default leaves linear mels as they are."""
        setting = self.settings.match_spectrum
        strength = DEFAULT_STRENGTH if setting is None else setting
        if strength <= 0:
            return None, None
        spectra: dict[str, Any] = {}
        clips: list[Waveform] = []
        if voice is not None:
            clips, source = [self.load_reference(VoiceStore().get(voice).clip)], "clip"
        elif reference:
            clips, source = [self.load_reference(one) for one in _as_references(reference)], "clip"
        else:
            stored = stored_spectrum(embedding.metadata) if embedding is not None else None
            if stored is None:
                if setting is None:
                    return None, None
                raise InputError(
                    "spectrum matching needs the reference clip, or a saved embedding that stores its spectrum; "
                    "this embedding stores none",
                    hint=f"pass --reference FILE or --voice NAME, {REMAKE_EMBEDDING_HINT}, or set match_spectrum to 0",
                )
            expected, whose = self._matched_mel_spec()
            differences = compare_specs(
                "stored spectrum -> mel", "the stored spectrum", stored.mel_spec, whose, expected
            )
            if differences:
                described = "; ".join(difference.describe() for difference in differences)
                if setting is None:
                    return None, f"the embedding's spectrum was stored at another mel spec ({described})"
                raise InputError(
                    f"spectrum matching: the embedding's spectrum was stored at another mel spec ({described})",
                    hint="re-create the embedding with 'vcframe embed --synthesizer NAME' for this run's synthesizer, "
                    "or set match_spectrum to 0",
                )
            spectra[expected.model_dump_json()], source = stored.bands, "embedding"

        def matched(mel: Mel) -> Mel:
            if setting is None and mel.spec.amplitude_scale == "linear":
                return mel  # the default matches log mels only; a strength set explicitly is refused here
            key = mel.spec.model_dump_json()
            if key not in spectra:
                if not clips:  # a stored spectrum, checked above against the spec these mels were to have
                    raise InputError(
                        "a synthesized mel is not of the mel spec the embedding's spectrum was stored at",
                        hint="set match_spectrum to 0",
                    )
                spectra[key] = clips_spectrum(clips, mel.spec)
            result, gains = match_spectrum(mel, spectra[key], strength)
            record.setdefault("strength", strength)
            record.setdefault("source", source)
            record.setdefault("gain_db", []).extend(gains)
            return result

        return matched, None

    def synthesize(self, texts: Sequence[str], embedding: SpeakerEmbedding, *, seed: int | None = None) -> list[Mel]:
        """Mels (one batch-of-one per text) for already split texts, in batches of ``synthesis_batch_size``.

        An embedding carrying an output adapter (``SpeakerAdaptation(target="output")``) made by another
        synthesizer than this pipeline's is refused (InputError), whether or not the synthesizer checks it."""
        if "synthesizer" in self.specs:  # else self.synthesizer below says this pipeline has none
            refuse_foreign_output_adapter(self.specs["synthesizer"].name, embedding)
        size = self.settings.synthesis_batch_size
        mels: list[Mel] = []
        for start in range(0, len(texts), size):
            batch_seed = None if seed is None else seed + start
            with torch.inference_mode():
                mel = self.synthesizer.synthesize(list(texts[start : start + size]), embedding, seed=batch_seed)
            if self._mel_adapter is not None:
                mel = self._mel_adapter(mel)
            mels.extend(_with_speaker(mel.select(index), embedding, index) for index in range(mel.batch_size))
        return mels

    def _synthesis(
        self, pieces: Sequence[str], speaker: SpeakerEmbedding, seed: int | None, overlap: bool
    ) -> _Synthesis:
        """The mels of ``pieces`` by the batches of :func:`synthesis_batches` (the batch that starts at sentence
        ``start`` seeded ``seed + start``); with ``overlap`` a worker thread synthesizes ahead of the caller
        (:class:`_SynthesisAhead`)."""
        batches = synthesis_batches(
            len(pieces), self.settings.synthesis_batch_size, self.settings.synthesis_first_batch_size
        )

        def synthesize_batch(batch: range) -> list[Mel]:
            seeded_at = None if seed is None else seed + batch.start
            return self.synthesize(pieces[batch.start : batch.stop], speaker, seed=seeded_at)

        return _SynthesisAhead(synthesize_batch, batches) if overlap else _Synthesis(synthesize_batch, batches)

    def _run(
        self,
        text: str,
        reference: Any,
        embedding: SpeakerEmbedding | None,
        voice: str | Voice | None,
        seed: int | None,
        progress: Progress,
        streaming: bool,
        adaptation: SpeakerAdaptation | None = None,
        reference_text: str | None = None,
        overlap: bool = False,
    ) -> Iterator[Waveform]:
        seed = self.settings.seed if seed is None else seed
        pieces = self.sentences(text)
        run: dict[str, Any] = {**self.describe(), "text": text, "sentences": len(pieces), "seed": seed}
        dropped = speakable_text(text).dropped
        if dropped:
            run["dropped_characters"] = [f"U+{ord(character):04X}" for character in dropped]
        hooks = plugin_manager().hook
        hooks.vcframe_run_start(run=run)
        produced: list[Waveform] = []
        self.last_mels = []
        try:
            speaker, adapted = self._embedding_for(reference, embedding, voice, progress, adaptation, reference_text)
            if adapted is not None:
                run["speaker_adaptation"] = adapted.summary()
            adapter = output_adapter(speaker)
            if adapter is not None:  # fitted now, or stored with the voice or the embedding
                run["output_adapter"] = {
                    "synthesizer": adapter.synthesizer,
                    "layer": adapter.layer,
                    "steps": adapter.steps,
                }
            spectrum_match: dict[str, Any] = {}
            mel_correction: dict[str, Any] = {"strength": self.mel_correction, "before_db": [], "after_db": []}
            matcher, unmatched = self._spectrum_matcher(reference, voice, embedding, spectrum_match)
            if unmatched is not None:
                run["spectrum_unmatched"] = unmatched
            started = time.perf_counter()
            index = 0
            synthesis = self._synthesis(pieces, speaker, seed, overlap)
            try:
                if overlap:
                    self.component("vocoder")  # built (weights loaded) while the worker synthesizes
                batch_mels: list[Mel] = []
                for sentence_index in range(len(pieces)):
                    if synthesis.starts_batch(sentence_index):
                        progress("synthesize", sentence_index, len(pieces))
                        batch_mels = synthesis.batch(sentence_index)
                    mel = batch_mels[sentence_index - synthesis.batch_start]
                    if matcher is not None:
                        mel = matcher(mel)
                    self.last_mels.append(mel)
                    vocoder_seed = None if seed is None else seed + sentence_index
                    progress("vocode", sentence_index, len(pieces))
                    streamed = streaming and hasattr(self.vocoder, "vocode_stream")
                    chunks = (
                        self.vocoder.vocode_stream(mel, seed=vocoder_seed)
                        if streamed
                        else iter([self.vocoder.vocode(mel, seed=vocoder_seed)])
                    )
                    if self.mel_correction:
                        chunks = (
                            self._corrected_stream(chunks, mel)
                            if streamed
                            else iter([self._corrected(next(chunks), mel, mel_correction)])
                        )
                    if sentence_index and self.settings.sentence_pause_s > 0:
                        pause = _silence(self.settings.sentence_pause_s, self._output_rate())
                        produced.append(pause)
                        yield pause
                    with torch.inference_mode():
                        for chunk in chunks:
                            chunk = chunk.to("cpu")
                            hooks.vcframe_run_chunk(run=run, index=index, chunk=chunk)
                            index += 1
                            produced.append(chunk)
                            yield chunk
            finally:
                synthesis.close()
            progress("vocode", len(pieces), len(pieces))
            if spectrum_match:  # recorded when a mel was matched (the default leaves linear mels alone)
                run["spectrum_match"] = spectrum_match
            if self.mel_correction:  # streamed sentences are corrected without the before / after measure
                run["mel_correction"] = mel_correction
            run["seconds"] = time.perf_counter() - started
        except BaseException as error:
            hooks.vcframe_run_end(run=run, waveform=None, error=error)
            raise
        run["embedding"] = speaker.vector[0].detach().cpu().tolist()
        final = Waveform.concatenate(produced) if produced else None
        self._last_run = run
        hooks.vcframe_run_end(run=run, waveform=final, error=None)

    def vocode(self, mel: Mel, *, seed: int | None = None) -> Waveform:
        """The vocoder's waveform (on the CPU) for ``mel``, mel-corrected as a run's is when the
        ``mel_correction`` setting is on (:mod:`vcframe.correction`): the vocoder stage of :meth:`clone` alone."""
        return self._corrected(self.vocoder.vocode(mel, seed=seed).to("cpu"), mel)

    def _corrected(self, waveform: Waveform, mel: Mel, record: dict[str, Any] | None = None) -> Waveform:
        """``waveform``, the vocoder's output for ``mel``, mel-corrected at the ``mel_correction`` setting's
        strength (:mod:`vcframe.correction`); each item's mel distance before and after goes into ``record``."""
        if not self.mel_correction:
            return waveform
        corrected, reports = correct_waveform(waveform.to("cpu"), mel.to("cpu"), self.mel_correction)
        if record is not None:
            record["before_db"] += [round(report.before_db, 3) for report in reports]
            record["after_db"] += [round(report.after_db, 3) for report in reports]
        return corrected

    def _corrected_stream(self, chunks: Iterator[Waveform], mel: Mel) -> Iterator[Waveform]:
        """A streaming vocoder's ``chunks`` for the single-item ``mel``, mel-corrected as they come
        (:class:`~vcframe.correction.StreamingCorrection`: the same audio as :meth:`_corrected` of the whole)."""
        correction = StreamingCorrection(mel.item(0), mel.spec, strength=self.mel_correction)
        rate = mel.spec.sample_rate
        for chunk in chunks:
            check_sample_rate(chunk.sample_rate, mel.spec)
            final = correction.push(chunk.item(0))
            if final.size:
                yield Waveform.from_numpy(final, rate, **chunk.metadata)
        rest = correction.finish()
        if rest.size:
            yield Waveform.from_numpy(rest, rate)

    def _output_rate(self) -> int:
        return int(self.specs["vocoder"].resolve_io(self.configs["vocoder"])[1].sample_rate)

    def clone(
        self,
        text: str,
        reference: Reference | Sequence[Reference] | None = None,
        *,
        embedding: SpeakerEmbedding | None = None,
        voice: str | Voice | None = None,
        seed: int | None = None,
        progress: Progress = _no_progress,
        adapt_speaker: int | SpeakerAdaptation | None = None,
        reference_text: str | None = None,
    ) -> Waveform:
        """Speak ``text`` in the voice of ``reference`` (one or more clips) or of ``embedding``. Given both, the
        embedding speaks and the clips serve spectrum matching only (the ``match_spectrum`` setting); given an
        embedding alone, the spectrum it stores (``embed(..., with_spectrum=True)``, ``vcframe embed``) serves it.

        Args:
            adapt_speaker: speaker adaptation (:mod:`vcframe.adaptation`) before synthesis: a number of steps or
                a SpeakerAdaptation (default None: off). Needs one reference clip or a voice.
            reference_text: the reference clip's words, for adaptation (default None: recognised offline).

        Returns a single-item Waveform at the vocoder's rate; its metadata records the components, their
        options, the seed, any bridged mismatch, ``speaker_adaptation`` (target, steps, seconds, losses,
        transcript) when adapted, ``output_adapter`` (synthesizer, layer, steps) when the embedding that spoke
        carried one (adapted now, or stored with the voice or the embedding), ``spectrum_match`` when a mel was
        spectrum-matched (strength, ``source`` of the reference's spectrum: ``"clip"`` or ``"embedding"``,
        ``gain_db`` per sentence), ``spectrum_unmatched`` (why) when the default left an embedding's run unmatched
        because its stored spectrum is of another mel spec and, as ``dropped_characters`` (``["U+1F600", ...]``),
        the characters of ``text`` that were not spoken. Text with nothing to speak is refused (InputError).
        """
        adaptation = SpeakerAdaptation.from_value(adapt_speaker)
        parts = list(self._run(text, reference, embedding, voice, seed, progress, False, adaptation, reference_text))
        waveform = Waveform.concatenate(parts)
        waveform = self._apply_processors(waveform, "output")
        run = getattr(self, "_last_run", {})
        return waveform.with_metadata(
            **{
                key: run[key]
                for key in (
                    "vcframe",
                    "device",
                    "components",
                    "bridged",
                    "sentences",
                    "seed",
                    "speaker_adaptation",
                    "output_adapter",
                    "spectrum_match",
                    "mel_correction",
                    "spectrum_unmatched",
                    "dropped_characters",
                )
                if key in run
            }
        )

    def stream(
        self,
        text: str,
        reference: Reference | Sequence[Reference] | None = None,
        *,
        embedding: SpeakerEmbedding | None = None,
        voice: str | Voice | None = None,
        seed: int | None = None,
        progress: Progress = _no_progress,
        adapt_speaker: int | SpeakerAdaptation | None = None,
        reference_text: str | None = None,
        overlap: bool = True,
    ) -> Iterator[Waveform]:
        """Yield audio chunks as they are ready: fold by fold with a streaming vocoder, else by sentence.

        Output processors are not applied to streamed chunks (they may need the whole signal).
        ``adapt_speaker`` and ``reference_text`` as in :meth:`clone`.

        Args:
            overlap: synthesize in a worker thread, ahead of the vocoder (default True): the next batch of
                sentences (:func:`synthesis_batches`: the first sentence alone, then ``synthesis_batch_size`` at a
                time) is synthesized while the current one is vocoded, and the vocoder is built while the first
                batch is synthesized. The chunks are the ones ``overlap=False`` gives, in the same order (seeded
                components draw one after the other: :func:`vcframe.seeding.seeded`); an error in a sentence's
                synthesis is raised once, after the audio of the sentences before it, and the worker is stopped
                when the stream ends or is closed.

        The first audio waits for the first sentence's synthesis only (``synthesis_first_batch_size``, 1).
        ``clone`` synthesizes the same batches with the same seeds, so the streamed chunks add up to its audio
        with any synthesizer, even one whose output depends on the batch (Tacotron with pre-net dropout).
        """
        adaptation = SpeakerAdaptation.from_value(adapt_speaker)
        yield from self._run(
            text, reference, embedding, voice, seed, progress, True, adaptation, reference_text, overlap
        )

    # -- processors -----------------------------------------------------------------------------------

    def _apply_processors(self, waveform: Waveform, which: str) -> Waveform:
        hooks = plugin_manager().hook
        collected = hooks.vcframe_reference_processors() if which == "reference" else hooks.vcframe_output_processors()
        processors = sorted((p for group in collected for p in group), key=lambda p: (p.order, p.name))
        allowed = self.settings.reference_processors if which == "reference" else self.settings.output_processors
        if allowed is not None:
            processors = [p for p in processors if p.name in allowed]
        applied = []
        for processor in processors:
            waveform = processor(waveform)
            applied.append(processor.name)
        return waveform.with_metadata(**{f"{which}_processors": applied}) if applied else waveform


def _as_references(reference: Reference | Sequence[Reference]) -> list[Reference]:
    """One clip (a path, ``librispeech:<id>`` or a Waveform) or several, as a list."""
    return [reference] if isinstance(reference, (str, os.PathLike, Waveform)) else list(reference)


def synthesis_batches(count: int, batch_size: int, first_batch_size: int = 1) -> list[range]:
    """The sentences of a run synthesized together: the first ``first_batch_size``, then ``batch_size`` at a time.

    Args:
        count: sentences in the run (>= 0).
        batch_size: ``Settings.synthesis_batch_size`` (> 0).
        first_batch_size: ``Settings.synthesis_first_batch_size`` (> 0, default 1: the first sentence alone, so a
            stream's first audio waits for one sentence; above ``batch_size`` it counts as ``batch_size``).

    Returns the batches as ranges of sentence indices, in order: ``synthesis_batches(5, 2) == [range(0, 1),
    range(1, 3), range(3, 5)]``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if batch_size <= 0 or first_batch_size <= 0:
        raise ValueError(f"batch sizes must be > 0, got batch_size={batch_size}, first_batch_size={first_batch_size}")
    first = min(first_batch_size, batch_size, count)
    batches = [range(0, first)] if first else []
    batches += [range(start, min(start + batch_size, count)) for start in range(first, count, batch_size)]
    return batches


class _Synthesis:
    """Batches of mels made on demand: ``batch(start)`` synthesizes the batch that starts at sentence ``start``.

    Args:
        synthesize_batch: ``batch -> [Mel, ...]``, one batch-of-one Mel per sentence of the batch.
        batches: the batches' sentence indices, in order (:func:`synthesis_batches`).
    """

    def __init__(self, synthesize_batch: Callable[[range], list[Mel]], batches: list[range]) -> None:
        self.synthesize_batch = synthesize_batch
        self.batches = batches
        self._by_start = {batch.start: batch for batch in batches}
        #: the first sentence of the batch last taken with ``batch``
        self.batch_start = 0

    def starts_batch(self, sentence_index: int) -> bool:
        """Whether a batch starts at ``sentence_index``."""
        return sentence_index in self._by_start

    def batch(self, start: int) -> list[Mel]:
        self.batch_start = start
        return self.synthesize_batch(self._by_start[start])

    def close(self) -> None:
        return None


class _SynthesisAhead(_Synthesis):
    """Batches synthesized in a worker thread, in order, ahead of the caller (at most two batches ahead: one
    waiting in the queue, one being made). ``batch(start)`` waits for that batch; the worker's error for a batch
    is raised there, once (and the worker stops). ``close()`` stops the worker after the batch it is making and
    waits for it, so no synthesis outlives the stream. Batches must be asked for in order."""

    def __init__(self, synthesize_batch: Callable[[range], list[Mel]], batches: list[range]) -> None:
        super().__init__(synthesize_batch, batches)
        self._ready: queue.Queue[tuple[int, list[Mel] | BaseException]] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="vcframe-synthesis", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        for batch in self.batches:
            if self._stop.is_set():
                return
            start = batch.start
            outcome: list[Mel] | BaseException
            try:
                outcome = self.synthesize_batch(batch)
            except BaseException as error:  # handed to the caller's thread, raised there
                outcome = error
            while not self._stop.is_set():
                try:
                    self._ready.put((start, outcome), timeout=0.05)
                    break
                except queue.Full:
                    continue
            if isinstance(outcome, BaseException):
                return

    def batch(self, start: int) -> list[Mel]:
        self.batch_start = start
        ready, outcome = self._ready.get()
        if ready != start:
            raise RuntimeError(f"batches must be taken in order: asked for sentence {start}, next is {ready}")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self) -> None:
        self._stop.set()
        self._worker.join()


def _silence(seconds: float, sample_rate: int) -> Waveform:
    return Waveform(torch.zeros(1, round(seconds * sample_rate)), sample_rate)


def load_voice_embedding(path: str | Path) -> SpeakerEmbedding:
    """A saved embedding (``vcframe embed --out``)."""
    return SpeakerEmbedding.load(str(path))


def _with_speaker(mel: Mel, embedding: SpeakerEmbedding, index: int) -> Mel:
    """``mel`` (item ``index`` of a synthesized batch) with the embedding it was synthesized for in its metadata
    (:data:`~vcframe.types.SPEAKER_EMBEDDING_KEY`: row ``index`` of one embedding per item, else the single one),
    for vocoders that read the voice beside the mel."""
    speaker = embedding.select(index) if embedding.batch_size > 1 else embedding
    return replace(mel, metadata={**mel.metadata, SPEAKER_EMBEDDING_KEY: speaker})
