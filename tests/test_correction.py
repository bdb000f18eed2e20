"""Mel correction (vcframe.correction): it brings a vocoder's output to the mel it was given, cuts hiss in pauses,
leaves a matching output as it is, refuses what it cannot do, and the pipeline's ``mel_correction`` setting
through Python and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests._cli import DUMMIES, one_line_error
from vcframe.audio import mel_spectrogram
from vcframe.config import Settings
from vcframe.correction import StreamingCorrection, bin_weights, correct_to_mel, correct_waveform
from vcframe.errors import InputError
from vcframe.pipeline import Pipeline
from vcframe.specs import HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL, MelSpec
from vcframe.types import Mel, Waveform

SPEC = RTVC_SYNTHESIZER_MEL


def voiced(seconds: float, sample_rate: int, pause: tuple[float, float] | None = None) -> np.ndarray:
    """A vowel-like signal: 20 harmonics of a gliding 110-160 Hz pitch under a two-formant envelope, with an
    exactly silent ``pause`` (start, end seconds)."""
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 110.0 + 50.0 * time / seconds
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    signal = np.zeros_like(time)
    for harmonic in range(1, 21):
        frequency = harmonic * pitch
        envelope = np.exp(-(((frequency - 700) / 300) ** 2)) + 0.5 * np.exp(-(((frequency - 1800) / 400) ** 2))
        signal += (envelope + 0.01) * np.sin(harmonic * phase)
    signal *= 0.3 / np.abs(signal).max()
    if pause is not None:
        signal[int(pause[0] * sample_rate) : int(pause[1] * sample_rate)] = 0.0
    return signal


def tilted(signal: np.ndarray) -> np.ndarray:
    """``signal`` through a one-pole low-pass (a vocoder that lost the upper bands)."""
    output = np.zeros_like(signal)
    for index in range(1, signal.shape[0]):
        output[index] = 0.3 * signal[index] + 0.7 * output[index - 1]
    return output


def mel_distance_db(samples: np.ndarray, mel: np.ndarray, spec: MelSpec) -> float:
    from vcframe.audio import mel_values_to_amplitude

    def decibels(values: np.ndarray) -> np.ndarray:
        return 20 * np.log10(np.maximum(mel_values_to_amplitude(values, spec), 1e-12))

    measured = mel_spectrogram(samples, spec)
    frames = min(measured.shape[1], mel.shape[1])
    return float(np.abs(decibels(measured[:, :frames]) - decibels(mel[:, :frames])).mean())


def test_a_tilted_output_is_brought_back_to_its_mel() -> None:
    clean = voiced(1.0, SPEC.sample_rate)
    mel = mel_spectrogram(clean, SPEC)
    output = tilted(clean)
    corrected, report = correct_to_mel(output, mel, SPEC)
    assert corrected.dtype == np.float32 and corrected.shape == output.shape
    assert report.before_db == pytest.approx(mel_distance_db(output, mel, SPEC), rel=1e-4)
    assert report.after_db == pytest.approx(mel_distance_db(corrected, mel, SPEC), rel=1e-3)
    assert report.before_db > 2.5 and report.after_db < 0.1 * report.before_db
    half, half_report = correct_to_mel(output, mel, SPEC, strength=0.5)
    assert report.after_db < half_report.after_db < half_report.before_db
    one_pass = correct_to_mel(output, mel, SPEC, iterations=1)[1]
    assert report.after_db < one_pass.after_db < one_pass.before_db


def test_an_output_that_matches_its_mel_or_strength_zero_is_left_as_it_is() -> None:
    clean = voiced(0.6, SPEC.sample_rate)
    mel = mel_spectrogram(clean, SPEC)
    corrected, report = correct_to_mel(clean, mel, SPEC)
    np.testing.assert_allclose(corrected, clean, atol=2e-4)  # gains near 0 dB; overlap-add rebuilds the signal
    assert report.before_db < 0.05
    unchanged, _ = correct_to_mel(tilted(clean), mel, SPEC, strength=0.0)
    np.testing.assert_allclose(unchanged, tilted(clean), atol=1e-6)
    waveform = Waveform.from_numpy(clean.astype(np.float32), SPEC.sample_rate)
    same, reports = correct_waveform(waveform, Mel.from_numpy([mel], SPEC), 0.0)
    assert same is waveform and reports == []


def test_hiss_in_a_pause_is_cut_and_speech_keeps_its_level() -> None:
    rate = SPEC.sample_rate
    clean = voiced(1.2, rate, pause=(0.5, 0.8))
    mel = mel_spectrogram(clean, SPEC)
    hiss = 0.003 * np.random.default_rng(0).standard_normal(clean.shape[0])
    corrected, _ = correct_to_mel(clean + hiss, mel, SPEC)
    pause = slice(int(0.56 * rate), int(0.74 * rate))  # clear of the frames that straddle speech
    speech = slice(int(0.1 * rate), int(0.4 * rate))

    def level_db(samples: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(samples**2)))

    assert level_db(corrected[pause]) < level_db((clean + hiss)[pause]) - 15.0
    assert abs(level_db(corrected[speech]) - level_db(clean[speech])) < 1.0


def test_a_mel_that_is_not_centred_and_in_natural_log_is_corrected_too() -> None:
    clean = voiced(0.8, HIFIGAN_MEL.sample_rate)
    mel = mel_spectrogram(clean, HIFIGAN_MEL)
    corrected, report = correct_to_mel(tilted(clean), mel, HIFIGAN_MEL)
    assert corrected.shape == clean.shape
    assert report.after_db < 0.35 * report.before_db


@pytest.mark.parametrize("spec", [SPEC, HIFIGAN_MEL], ids=["rtvc", "hifigan"])
@pytest.mark.parametrize("chunk", [1000, 4321])
def test_a_streamed_output_corrected_chunk_by_chunk_equals_the_whole_one_corrected(spec, chunk) -> None:
    clean = voiced(1.3, spec.sample_rate, pause=(0.6, 0.8))
    mel = mel_spectrogram(clean, spec)
    output = tilted(clean) + 0.002 * np.random.default_rng(1).standard_normal(clean.shape[0])
    whole, _ = correct_to_mel(output, mel, spec)
    stream = StreamingCorrection(mel, spec)
    pieces = []
    for start in range(0, output.shape[0], chunk):
        pieces.append(stream.push(output[start : start + chunk]))
        assert sum(piece.shape[0] for piece in pieces) <= max(0, start + chunk - stream.context)  # final ones only
    pieces.append(stream.finish())
    assert sum(piece.shape[0] > 0 for piece in pieces) > 2  # it did stream
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5)
    assert stream.finish().shape == (0,)


@pytest.mark.parametrize("spec", [SPEC, HIFIGAN_MEL], ids=["rtvc", "hifigan"])
def test_an_output_shorter_than_one_window_is_corrected_too(spec) -> None:
    clean = voiced(0.5, spec.sample_rate)[: spec.n_fft // 2]  # a few frames, as a one-syllable sentence may give
    mel = mel_spectrogram(clean, spec)
    corrected, report = correct_to_mel(tilted(clean), mel, spec)
    assert corrected.shape == clean.shape and np.isfinite(corrected).all()
    assert report.after_db < report.before_db
    stream = StreamingCorrection(mel, spec)
    streamed = np.concatenate([stream.push(tilted(clean)), stream.finish()])
    np.testing.assert_allclose(streamed, corrected, atol=1e-5)


def test_every_bin_takes_its_bands_and_the_bins_outside_the_filters_their_nearest() -> None:
    weights = bin_weights(SPEC)
    assert weights.shape == (SPEC.n_fft // 2 + 1, SPEC.n_mels)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(weights[0], weights[int(SPEC.fmin / SPEC.sample_rate * SPEC.n_fft) + 1])
    assert weights[-1, -1] > 0.99  # 8 kHz: above fmax (7,600 Hz), the top band's gain


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: correct_to_mel(np.zeros(4000), np.zeros((80, 21)), SPEC, strength=1.5), "between 0 and 1"),
        (lambda: correct_to_mel(np.zeros(4000), np.zeros((40, 21)), SPEC), "the spec has 80 bands"),
        (lambda: correct_to_mel(np.zeros((2, 4000)), np.zeros((80, 21)), SPEC), "one waveform"),
        (lambda: correct_to_mel(np.zeros(4000), np.zeros((80, 21)), SPEC, iterations=0), "at least 1"),
        (
            lambda: correct_to_mel(
                np.zeros(4000), np.zeros((80, 21)), SPEC.model_copy(update={"amplitude_scale": "linear"})
            ),
            "log mels",
        ),
        (
            lambda: correct_waveform(
                Waveform.from_numpy(np.zeros(4410, dtype=np.float32), 22050),
                Mel.from_numpy([np.zeros((80, 21), dtype=np.float32)], SPEC),
                1.0,
            ),
            "the output is at 22050 Hz, the mel at 16000 Hz",
        ),
    ],
)
def test_bad_input_is_refused(call, needle) -> None:
    with pytest.raises(InputError, match=needle):
        call()


def test_the_pipeline_setting_corrects_each_sentence_records_it_and_streams_the_same(
    dummy_registry, speech_like_wav
) -> None:
    clip = speech_like_wav(seconds=2.5)
    text = "Hello there. How are you?"
    plain = Pipeline("test-tone", "test-constant", "test-sine", settings=Settings(seed=0), device="cpu")
    plain_audio = plain.clone(text, clip)
    assert "mel_correction" not in plain_audio.metadata
    correcting = Pipeline(
        "test-tone", "test-constant", "test-sine", settings=Settings(seed=0, mel_correction=1.0), device="cpu"
    )
    corrected_audio = correcting.clone(text, clip)
    record = corrected_audio.metadata["mel_correction"]
    assert record["strength"] == 1.0 and len(record["before_db"]) == 2
    assert all(after < before for before, after in zip(record["before_db"], record["after_db"], strict=True))
    assert corrected_audio.lengths.tolist() == plain_audio.lengths.tolist()
    assert not np.allclose(corrected_audio.item(0), plain_audio.item(0), atol=1e-3)
    # a streamed run corrects the vocoder's chunks as they come: the same audio as the whole run
    streamed = list(correcting.stream(text, clip, overlap=False))
    plain_chunks = list(plain.stream(text, clip, overlap=False))
    assert len(streamed) >= 3 and len(plain_chunks) > 3  # the sine vocoder streams frame blocks
    joined = np.concatenate([chunk.item(0) for chunk in streamed])
    np.testing.assert_allclose(joined, corrected_audio.item(0), atol=1e-6)


def test_run_mel_correction_on_the_command_line(dummy_registry, vcframe_cli, speech_like_wav, tmp_path) -> None:
    clip, out = speech_like_wav(seconds=2.5), tmp_path / "out.wav"
    result = vcframe_cli(
        "run", *DUMMIES, "-r", clip, "--text", "Hi there.", "--out", out, "--mel-correction", "0.5", "--metadata"
    )
    assert result.exit_code == 0, result.stderr
    assert "mel correction: strength 0.5, output-to-mel distance" in result.stderr
    assert json.loads((tmp_path / "out.wav.json").read_text())["mel_correction"]["strength"] == 0.5
    out.unlink()
    result = vcframe_cli("run", *DUMMIES, "-r", clip, "--text", "Hi.", "--out", out, "--mel-correction", "2")
    assert result.exit_code == 2 and "--mel-correction" in result.stderr and not out.exists()
    result = vcframe_cli("run", *DUMMIES, "-r", clip, "--text", "Hi.", "--out", out, "-o", "mel_correction=-1")
    one_line_error(result, "mel_correction")
    assert not out.exists()


def test_the_default_strength_is_the_vocoder_checkpoints_and_a_setting_overrides_it() -> None:
    from vcframe.checkpoints import find_entry

    shipped = find_entry("vocoder/wavernn", "default")
    assert shipped is not None and shipped.mel_correction  # the shipped WaveRNN runs corrected (its figures were)
    assert f"with mel correction {shipped.mel_correction:g}" in shipped.status_line()
    assert Pipeline(vocoder="wavernn", device="cpu").mel_correction == shipped.mel_correction
    assert Pipeline(vocoder="wavernn", settings=Settings(mel_correction=0), device="cpu").mel_correction == 0
    own_file = Settings(components={"vocoder": {"wavernn": {"checkpoint": "my_vocoder.pt"}}})
    assert Pipeline(vocoder="wavernn", settings=own_file, device="cpu").mel_correction == 0  # no registry entry
    assert Pipeline(vocoder="griffinlim", device="cpu").mel_correction == 0  # no weights, no entry
