from __future__ import annotations

import numpy as np
import pytest
import soundfile
from safetensors.numpy import load_file

from vcframe.audio import (
    amplitude_to_mel_values,
    frames_for,
    load_audio,
    mel_spectrogram,
    mel_values_to_amplitude,
    resample,
    rescale_peak,
    save_audio,
)
from vcframe.errors import AudioInputError, OutputError
from vcframe.specs import RTVC_ENCODER_MEL, RTVC_SYNTHESIZER_MEL
from vcframe.testing.golden import LOG_MEL_ATOL, POWER_MEL_RTOL
from vcframe.types import Waveform


@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg", "mp3"])
def test_reads_every_supported_format_and_resamples(tmp_path, suffix) -> None:
    t = np.arange(22050) / 22050
    samples = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / f"tone.{suffix}"
    soundfile.write(str(path), np.stack([samples, samples], axis=1), 22050)
    waveform = load_audio(path, sample_rate=16000)
    assert waveform.sample_rate == 16000
    assert abs(waveform.lengths.item() - 16000) < 1200  # mp3 adds encoder delay
    spectrum = np.abs(np.fft.rfft(waveform.item(0)))
    peak_hz = np.argmax(spectrum) * 16000 / (2 * (len(spectrum) - 1))
    assert abs(peak_hz - 440) < 5


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not found"), (b"", "empty"), (b"RIFF\x00\x00junkjunkjunk", "cannot read"), ("dir", "directory")],
)
def test_bad_files_give_one_line_errors(tmp_path, content, message) -> None:
    path = tmp_path / "voice.wav"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioInputError, match=message) as raised:
        load_audio(path)
    assert "\n" not in str(raised.value)


def test_silence_is_refused(tmp_path) -> None:
    path = tmp_path / "silence.wav"
    soundfile.write(str(path), np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioInputError, match="silent"):
        load_audio(path)


def test_save_is_atomic_and_refuses_missing_directory(tmp_path) -> None:
    waveform = Waveform.from_numpy(np.full(100, 0.1, np.float32), 16000)
    with pytest.raises(OutputError, match="does not exist"):
        save_audio(waveform, tmp_path / "missing" / "out.wav")
    target = save_audio(waveform, tmp_path / "out.wav")
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
    assert soundfile.info(str(target)).frames == 100


def test_resample_identity() -> None:
    samples = np.ones(10, np.float32)
    assert resample(samples, 16000, 16000) is samples


def test_mel_matches_rtvc_features_within_fixture_tolerance(rtvc_fixtures) -> None:
    """Exact on the CPU that made the fixtures; FFT/BLAS kernels of other CPUs differ in the last bits."""
    features = load_file(str(rtvc_fixtures / "features_ref.safetensors"))
    synthesizer_mel = mel_spectrogram(features["wav_16k"], RTVC_SYNTHESIZER_MEL)
    assert synthesizer_mel.shape == features["syn_mel_80"].shape
    np.testing.assert_allclose(synthesizer_mel, features["syn_mel_80"], rtol=0, atol=LOG_MEL_ATOL)
    encoder_mel = mel_spectrogram(features["enc_preprocess_wav_novad"], RTVC_ENCODER_MEL)
    assert encoder_mel.T.shape == features["enc_mel_40"].shape
    np.testing.assert_allclose(encoder_mel.T, features["enc_mel_40"], rtol=POWER_MEL_RTOL, atol=0)
    assert synthesizer_mel.shape[1] == frames_for(len(features["wav_16k"]), RTVC_SYNTHESIZER_MEL)


def test_amplitude_scale_inverts() -> None:
    amplitude = np.geomspace(1e-4, 10, 50)[None, :]
    values = amplitude_to_mel_values(amplitude, RTVC_SYNTHESIZER_MEL)
    np.testing.assert_allclose(mel_values_to_amplitude(values, RTVC_SYNTHESIZER_MEL), amplitude, rtol=1e-9)


def test_rescale_peak_sets_the_largest_magnitude_and_keeps_silence() -> None:
    samples = np.array([0.1, -0.25, 0.05], dtype=np.float32)
    assert np.abs(rescale_peak(samples)).max() == pytest.approx(0.9)
    assert rescale_peak(samples, peak=0.5) == pytest.approx(samples * 2.0)
    assert not np.any(rescale_peak(np.zeros(4, dtype=np.float32)))


# -- the numpy front-end against librosa and scipy -------------------------------------------------------------
# vcframe.audio computes the STFT, inverse STFT, mel filterbank, emphasis filters and resampling itself so that a
# run imports neither librosa nor scipy.signal; these compare each with the library it replaces. On the CPU that
# wrote them they agree to the last bit; the tolerances leave room for other CPUs' FFT kernels.

_STFT_SETTINGS = [
    {"n_fft": 800, "hop_length": 200, "win_length": 800, "center": True, "pad_mode": "constant"},
    {"n_fft": 800, "hop_length": 200, "win_length": 800, "center": True, "pad_mode": "reflect"},
    {"n_fft": 1024, "hop_length": 256, "win_length": 600, "center": False, "pad_mode": "constant"},
    {"n_fft": 512, "hop_length": 160, "win_length": 400, "center": True, "pad_mode": "constant"},  # 160 !| 512
]


@pytest.mark.parametrize("settings", _STFT_SETTINGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stft_and_istft_match_librosa(settings, dtype) -> None:
    librosa = pytest.importorskip("librosa")
    from vcframe.audio import istft, stft

    signal = (0.3 * np.random.default_rng(0).standard_normal(7000)).astype(dtype)
    expected = librosa.stft(signal, **settings)
    spectrum = stft(signal, **settings)
    assert spectrum.dtype == expected.dtype and spectrum.shape == expected.shape
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(spectrum, expected, rtol=0, atol=tolerance * np.abs(expected).max())
    inverse_settings = {key: value for key, value in settings.items() if key != "pad_mode"}
    for length in (7000, 6871, 7400):  # the signal's, shorter, longer (zero-padded)
        expected_signal = librosa.istft(expected, length=length, **inverse_settings)
        rebuilt = istft(expected, length=length, **inverse_settings)
        assert rebuilt.dtype == expected_signal.dtype and rebuilt.shape == (length,)
        np.testing.assert_allclose(rebuilt, expected_signal, rtol=0, atol=tolerance)
    np.testing.assert_allclose(
        istft(spectrum, length=7000, **inverse_settings)[1000:6000], signal[1000:6000], atol=tolerance
    )


def test_mel_basis_matches_librosa_for_every_scale_and_norm() -> None:
    librosa = pytest.importorskip("librosa")
    from vcframe.audio import mel_basis
    from vcframe.specs import HIFIGAN_MEL

    variants = [RTVC_SYNTHESIZER_MEL, RTVC_ENCODER_MEL, HIFIGAN_MEL]
    variants += [RTVC_SYNTHESIZER_MEL.model_copy(update={"mel_scale": "htk", "mel_norm": None, "fmin": 0.0})]
    for spec in variants:
        expected = librosa.filters.mel(
            sr=spec.sample_rate,
            n_fft=spec.n_fft,
            n_mels=spec.n_mels,
            fmin=spec.fmin,
            fmax=spec.fmax,
            htk=spec.mel_scale == "htk",
            norm="slaney" if spec.mel_norm == "slaney" else None,
        )
        basis = mel_basis(spec)
        assert basis.dtype == np.float32 and basis.shape == expected.shape
        np.testing.assert_allclose(basis, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("source_rate", "target_rate"), [(22050, 16000), (44100, 16000), (16000, 22050), (8000, 24000)]
)
def test_resample_matches_librosa_soxr_hq(source_rate, target_rate) -> None:
    librosa = pytest.importorskip("librosa")

    samples = (0.2 * np.random.default_rng(1).standard_normal(source_rate // 3 + 7)).astype(np.float32)
    expected = librosa.resample(samples, orig_sr=source_rate, target_sr=target_rate)
    resampled = resample(samples, source_rate, target_rate)
    assert resampled.dtype == np.float32 and resampled.shape == expected.shape
    np.testing.assert_allclose(resampled, expected, rtol=0, atol=1e-6)


def test_emphasis_filters_match_scipy_lfilter() -> None:
    from scipy.signal import lfilter

    from vcframe.audio import deemphasis, preemphasis

    signal = np.random.default_rng(2).standard_normal(64 * 40 + 13)  # not a whole number of blocks
    emphasised = preemphasis(signal.astype(np.float32), 0.97)
    np.testing.assert_allclose(emphasised, lfilter([1.0, -0.97], [1.0], signal.astype(np.float32)), rtol=1e-12)
    restored = deemphasis(signal, 0.97)
    assert restored.dtype == np.float64 and restored.shape == signal.shape
    np.testing.assert_allclose(restored, lfilter([1.0], [1.0, -0.97], signal), rtol=0, atol=1e-11)
    np.testing.assert_allclose(deemphasis(preemphasis(signal, 0.5), 0.5), signal, atol=1e-12)
    assert deemphasis(np.zeros(0), 0.97).shape == (0,)
