from __future__ import annotations

import numpy as np
import pytest
import torch
from vcframe_griffinlim.model import GriffinLimVocoder, griffin_lim
from vcframe_griffinlim.spec import SPEC

from vcframe.audio import mel_spectrogram
from vcframe.errors import InputError
from vcframe.specs import HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL
from vcframe.types import Mel


def _speechlike(seconds: float = 1.0, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * np.cumsum(140 * (1 + 0.1 * np.sin(2 * np.pi * 2 * t))) / sample_rate
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 20))).astype(np.float32)


def test_spec_module_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, vcframe_griffinlim.spec; print('torch' in sys.modules, 'librosa' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == [
        "False",
        "False",
    ]


def test_output_length_reproducibility_and_batch() -> None:
    vocoder = GriffinLimVocoder(SPEC.make_config({"n_iter": 8}))
    long, short = (
        mel_spectrogram(_speechlike(1.0), RTVC_SYNTHESIZER_MEL),
        mel_spectrogram(_speechlike(0.5), RTVC_SYNTHESIZER_MEL),
    )
    batch = Mel.from_numpy([long, short], RTVC_SYNTHESIZER_MEL)
    waveform = vocoder.vocode(batch, seed=1)
    assert waveform.lengths.tolist() == [long.shape[1] * 200, short.shape[1] * 200]
    assert torch.equal(waveform.samples, vocoder.vocode(batch, seed=1).samples)
    single = vocoder.vocode(Mel.from_numpy(short, RTVC_SYNTHESIZER_MEL), seed=1)
    np.testing.assert_array_equal(single.item(0), waveform.item(1))
    assert torch.isfinite(waveform.samples).all() and float(waveform.samples.abs().max()) <= 1.0


@pytest.mark.parametrize("spec", [RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL])
def test_griffin_lim_matches_librosa(spec) -> None:
    """The vocoder's numpy Griffin-Lim runs librosa.griffinlim's algorithm: same initial phase from the same
    generator, same result (to the last bit on the CPU that wrote this; FFT kernels elsewhere may differ)."""
    librosa = pytest.importorskip("librosa")
    magnitude = np.abs(np.random.default_rng(4).standard_normal((spec.n_fft // 2 + 1, 40)))
    length = 39 * spec.hop_length if spec.center else 39 * spec.hop_length + spec.n_fft
    expected = librosa.griffinlim(
        magnitude,
        n_iter=12,
        hop_length=spec.hop_length,
        win_length=spec.win_length,
        n_fft=spec.n_fft,
        center=spec.center,
        pad_mode=spec.pad_mode,
        momentum=0.99,
        init="random",
        random_state=np.random.default_rng(5),
        length=length,
    )
    signal = griffin_lim(magnitude, spec, n_iter=12, momentum=0.99, rng=np.random.default_rng(5), length=length)
    assert signal.dtype == expected.dtype and signal.shape == expected.shape
    np.testing.assert_allclose(signal, expected, rtol=0, atol=1e-9 * np.abs(expected).max())


def test_reconstruction_keeps_the_spectrum() -> None:
    vocoder = GriffinLimVocoder(SPEC.make_config({"n_iter": 32, "peak_normalize": None, "power": 1.0}))
    original = _speechlike(1.0)
    mel = mel_spectrogram(original, RTVC_SYNTHESIZER_MEL)
    rebuilt = vocoder.vocode(Mel.from_numpy(mel, RTVC_SYNTHESIZER_MEL), seed=0).item(0)
    again = mel_spectrogram(rebuilt[: len(original)], RTVC_SYNTHESIZER_MEL)
    assert float(np.mean(np.abs(again - mel))) < 0.35  # in units of the [-4, 4] range


def test_refuses_other_mels_and_empty_input() -> None:
    vocoder = GriffinLimVocoder(SPEC.make_config({"n_iter": 2}))
    other = RTVC_SYNTHESIZER_MEL.model_copy(update={"hop_length": 256})
    with pytest.raises(InputError, match="hop_length: 256 \\(mel\\) vs 200 \\(vocoder\\)"):
        vocoder.vocode(Mel(torch.zeros(1, 80, 5), other))
    with pytest.raises(InputError, match="no mel frames"):
        vocoder.vocode(Mel(torch.zeros(1, 80, 0), RTVC_SYNTHESIZER_MEL))


def test_one_frame_is_one_hop_of_silence_without_warnings() -> None:
    import warnings

    vocoder = GriffinLimVocoder(SPEC.make_config({"n_iter": 2}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        waveform = vocoder.vocode(Mel(torch.zeros(1, 80, 1), RTVC_SYNTHESIZER_MEL), seed=0)
    assert waveform.lengths.tolist() == [200] and not waveform.samples.any()


def test_hifigan_mel_frames_that_are_not_centred_come_back_aligned() -> None:
    """HIFIGAN_MEL (reflect-padded by 384, not centred, ln scale): T * 256 samples whose mel matches the input,
    better than the same audio moved by one hop (the padding is cropped where it was added)."""
    from vcframe.specs import HIFIGAN_MEL
    from vcframe.testing.signals import speech_like

    mel = mel_spectrogram(speech_like(1.0, 22050, 140.0), HIFIGAN_MEL)
    options = {"mel": HIFIGAN_MEL.model_dump(), "n_iter": 30, "power": 1.0, "peak_normalize": None}
    vocoder = GriffinLimVocoder(SPEC.make_config(options))
    audio = vocoder.vocode(Mel.from_numpy([mel], HIFIGAN_MEL), seed=0).item(0)
    assert len(audio) == mel.shape[1] * 256
    loud = mel > -7

    def error(samples: np.ndarray) -> float:
        return float(np.abs(mel_spectrogram(samples, HIFIGAN_MEL) - mel)[loud].mean())

    assert error(audio) < 0.45
    assert error(audio) < error(np.roll(audio, 256)) - 0.03


def test_silent_mel_gives_near_silence_and_speech_keeps_its_peak() -> None:
    """Peak normalisation amplifies by at most 0.97 / QUIET_PEAK: a silent mel used to come out as noise at peak
    0.97 (RMS 0.2); speech still peaks at exactly peak_normalize."""
    vocoder = GriffinLimVocoder(SPEC.make_config({"n_iter": 8}))
    silent = Mel(torch.full((1, 80, 40), RTVC_SYNTHESIZER_MEL.silence_value), RTVC_SYNTHESIZER_MEL)
    near_silence = vocoder.vocode(silent, seed=0).item(0).astype(np.float64)
    assert np.sqrt(np.mean(near_silence**2)) < 2e-3 and np.abs(near_silence).max() < 0.01
    speech = Mel.from_numpy(mel_spectrogram(_speechlike(1.0), RTVC_SYNTHESIZER_MEL), RTVC_SYNTHESIZER_MEL)
    assert float(np.abs(vocoder.vocode(speech, seed=0).item(0)).max()) == pytest.approx(0.97, abs=1e-6)


# -- vocode_stream ------------------------------------------------------------------------------------------


def _stream(vocoder: GriffinLimVocoder, mel: Mel, seed: int = 0) -> list[np.ndarray]:
    return [chunk.item(0) for chunk in vocoder.vocode_stream(mel, seed=seed)]


@pytest.mark.parametrize(
    "spec", [RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL.model_copy(update={"pad_mode": "reflect"})]
)
def test_stream_of_one_block_is_whole_griffin_lim(spec) -> None:
    """With one block the blockwise algorithm is griffin_lim itself (same phase, same edges and padding)."""
    from vcframe_griffinlim.model import griffin_lim_stream

    frames = 30
    magnitude = np.abs(np.random.default_rng(4).standard_normal((spec.n_fft // 2 + 1, frames)))
    length = (frames - 1) * spec.hop_length + (0 if spec.center else spec.n_fft)
    whole = griffin_lim(magnitude, spec, n_iter=6, momentum=0.99, rng=np.random.default_rng(5), length=length)
    options = {"n_iter": 6, "momentum": 0.99, "length": length}
    one = griffin_lim_stream(
        magnitude,
        spec,
        **options,
        rng=np.random.default_rng(5),
        first_frames=frames,
        largest_frames=frames,
        lookahead_frames=3,
    )
    np.testing.assert_allclose(np.concatenate(list(one)), whole, rtol=0, atol=1e-9 * np.abs(whole).max())
    pieces = list(
        griffin_lim_stream(
            magnitude,
            spec,
            **options,
            rng=np.random.default_rng(5),
            first_frames=4,
            largest_frames=8,
            lookahead_frames=3,
        )
    )
    assert len(pieces) > 2 and sum(len(piece) for piece in pieces) == length
    assert np.abs(np.concatenate(pieces) - whole).max() > 1e-3  # blocks estimate another phase


def test_stream_chunks_add_up_are_finite_and_grow() -> None:
    options = {"n_iter": 8, "stream_first_chunk_frames": 6, "stream_chunk_frames": 16, "stream_lookahead_frames": 4}
    vocoder = GriffinLimVocoder(SPEC.make_config(options))
    mel = Mel.from_numpy(mel_spectrogram(_speechlike(0.8), RTVC_SYNTHESIZER_MEL), RTVC_SYNTHESIZER_MEL)
    chunks = list(vocoder.vocode_stream(mel, seed=3))
    sizes = [chunk.samples.shape[1] for chunk in chunks]
    # frames 0-5 are final once committed, less the half window (400 samples) that frame 6 still overlaps
    assert sizes[0] == 6 * 200 - 400
    assert sizes[1:-1] == [12 * 200] + [16 * 200] * (len(sizes) - 3)
    assert sum(sizes) == mel.lengths[0] * 200 and all(chunk.batch_size == 1 for chunk in chunks)
    joined = np.concatenate([chunk.item(0) for chunk in chunks])
    assert np.isfinite(joined).all() and np.abs(joined).max() <= 1.0
    assert all(chunk.sample_rate == 16000 and chunk.samples.dtype == torch.float32 for chunk in chunks)
    np.testing.assert_array_equal(joined, np.concatenate(_stream(vocoder, mel, seed=3)))  # deterministic
    assert not np.array_equal(joined, np.concatenate(_stream(vocoder, mel, seed=4)))


def test_stream_keeps_a_tones_spectrum_close_to_whole_griffin_lim() -> None:
    """A harmonic tone streamed in blocks of 4-16 frames, 32 iterations. Spectral convergence (STFT magnitude)
    measured: to the whole-signal output 0.125 (another seed of the whole: 0.154); to the tone itself 0.306
    against the whole output's 0.299, and 0.322 without look-ahead."""
    from vcframe.audio import stft

    tone = _speechlike(1.0).astype(np.float64)
    mel = Mel.from_numpy(mel_spectrogram(tone, RTVC_SYNTHESIZER_MEL), RTVC_SYNTHESIZER_MEL)
    base = {"n_iter": 32, "peak_normalize": None, "stream_first_chunk_frames": 4, "stream_chunk_frames": 16}

    def convergence(reference: np.ndarray, other: np.ndarray) -> float:
        settings = {"n_fft": 800, "hop_length": 200, "win_length": 800}
        expected = np.abs(stft(reference, **settings))
        return float(
            np.linalg.norm(expected - np.abs(stft(other[: len(reference)], **settings))) / np.linalg.norm(expected)
        )

    def streamed(lookahead: int) -> np.ndarray:
        vocoder = GriffinLimVocoder(SPEC.make_config({**base, "stream_lookahead_frames": lookahead}))
        return np.concatenate(_stream(vocoder, mel)).astype(np.float64)

    whole = GriffinLimVocoder(SPEC.make_config(base)).vocode(mel, seed=0).item(0).astype(np.float64)
    with_lookahead = streamed(16)
    assert convergence(whole, with_lookahead) < 0.14
    assert convergence(tone, with_lookahead) < 1.05 * convergence(tone, whole)
    assert convergence(tone, streamed(0)) > convergence(tone, with_lookahead) + 0.01


def test_stream_level_follows_the_expected_peak() -> None:
    """Speech is scaled to about peak_normalize before its peak is known; silence stays near-silent."""
    vocoder = GriffinLimVocoder(SPEC.make_config({"n_iter": 8}))
    speech = Mel.from_numpy(mel_spectrogram(_speechlike(1.0), RTVC_SYNTHESIZER_MEL), RTVC_SYNTHESIZER_MEL)
    peak = float(np.abs(np.concatenate(_stream(vocoder, speech))).max())
    assert 0.97 * 10 ** (-4 / 20) < peak <= 1.0
    silent = Mel(torch.full((1, 80, 40), RTVC_SYNTHESIZER_MEL.silence_value), RTVC_SYNTHESIZER_MEL)
    near_silence = np.concatenate(_stream(vocoder, silent)).astype(np.float64)
    assert np.sqrt(np.mean(near_silence**2)) < 2e-3 and np.abs(near_silence).max() < 0.01


def test_stream_edge_cases_and_batch_refused() -> None:
    vocoder = GriffinLimVocoder(SPEC.make_config({"n_iter": 2}))
    one_frame = _stream(vocoder, Mel(torch.zeros(1, 80, 1), RTVC_SYNTHESIZER_MEL))
    assert [len(chunk) for chunk in one_frame] == [200] and not np.concatenate(one_frame).any()
    two_frames = _stream(vocoder, Mel(torch.zeros(1, 80, 2), RTVC_SYNTHESIZER_MEL))
    assert sum(len(chunk) for chunk in two_frames) == 400
    batch = Mel(torch.zeros(2, 80, 20), RTVC_SYNTHESIZER_MEL)
    with pytest.raises(InputError, match="vocode_stream takes one mel at a time, got a batch of 2"):
        next(iter(vocoder.vocode_stream(batch)))
    hifigan = GriffinLimVocoder(SPEC.make_config({"mel": HIFIGAN_MEL.model_dump(), "n_iter": 2}))
    mel = Mel.from_numpy(mel_spectrogram(_speechlike(0.5, 22050), HIFIGAN_MEL), HIFIGAN_MEL)
    assert sum(len(chunk) for chunk in _stream(hifigan, mel)) == mel.lengths[0] * 256
