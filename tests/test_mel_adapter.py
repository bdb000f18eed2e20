"""The built-in mel adapter (vcframe._adapters.MelRemapper): frame rate, frequencies by Hz, level, floors, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vcframe._adapters import MelRemapper, adapted_frame_count
from vcframe._builtin_hooks import vcframe_mel_adapter
from vcframe.audio import mel_basis, mel_spectrogram
from vcframe.errors import IncompatibleComponentsError
from vcframe.specs import HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL, MelSpec
from vcframe.testing.signals import band_noise, speech_like
from vcframe.types import Mel

#: A telephone-band mel: 8 kHz, so nothing above 4 kHz.
NARROWBAND_MEL = MelSpec(sample_rate=8000, n_fft=256, win_length=256, hop_length=80, n_mels=40, fmin=0.0, fmax=4000.0)


def steady_tone(frequency: float, sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def band_centres(spec: MelSpec) -> np.ndarray:
    """(n_mels,) frequency in Hz at which each band's filter peaks."""
    frequencies = np.fft.rfftfreq(spec.n_fft, 1.0 / spec.sample_rate)
    return frequencies[np.argmax(mel_basis(spec), axis=1)]


@pytest.mark.parametrize(
    ("source", "target"),
    [(RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL), (HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL), (NARROWBAND_MEL, HIFIGAN_MEL)],
)
@pytest.mark.parametrize("frames", [1, 7, 100, 401])
def test_frame_count_keeps_the_duration_across_rates(source, target, frames) -> None:
    remapper = MelRemapper(source, target)
    mel = Mel.from_numpy([np.full((source.n_mels, frames), source.silence_value, np.float32)], source)
    adapted = remapper(mel)
    count = adapted.item(0).shape[1]
    assert count == int(adapted.lengths[0]) == adapted_frame_count(frames, source, target)
    seconds = frames * source.hop_length / source.sample_rate
    # the target vocoder's output (count * hop samples) lasts as long as the source's, within half a target frame
    assert abs(count * target.hop_length / target.sample_rate - seconds) <= 0.5 * target.hop_length / target.sample_rate
    assert adapted.spec == target and adapted.metadata["adapted_from"] == source.model_dump()


def test_rtvc_to_hifigan_frame_rate() -> None:
    """80 frames/s -> 86.13 frames/s: 100 frames (1.25 s) -> 108 frames (1.254 s at hop 256)."""
    assert adapted_frame_count(100, RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL) == 108
    assert adapted_frame_count(108, HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL) == 100


@pytest.mark.parametrize("band", [8, 30, 52, 72])
def test_a_tone_peaks_in_the_target_band_of_its_frequency_at_its_level(band) -> None:
    frequency = float(band_centres(HIFIGAN_MEL)[band])  # 301, 1,959, 4,328 and 7,019 Hz
    source_mel = mel_spectrogram(steady_tone(frequency, 16000), RTVC_SYNTHESIZER_MEL)
    adapted = MelRemapper(RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL).convert(source_mel)[:, 20:-20]
    direct = mel_spectrogram(steady_tone(frequency, 22050), HIFIGAN_MEL)[:, 20:-20]  # the tone measured at 22,050 Hz
    assert np.all(np.argmax(adapted, axis=0) == band) and np.all(np.argmax(direct, axis=0) == band)
    # level: the band's natural-log value within 0.3 of the direct measurement (a 2.6 dB window)
    assert abs(float(np.median(adapted[band])) - float(np.median(direct[band]))) < 0.3


def test_speech_like_audio_adapts_close_to_its_direct_target_mel() -> None:
    """RTVC's mel of a 16 kHz clip, adapted, against HiFi-GAN's mel of the same clip at 22,050 Hz."""
    seconds = 2.0
    t16, t22 = speech_like(seconds, 16000), speech_like(seconds, 22050)
    remapper = MelRemapper(RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL)
    adapted = remapper.convert(mel_spectrogram(t16, RTVC_SYNTHESIZER_MEL))
    direct = mel_spectrogram(t22, HIFIGAN_MEL)
    frames = min(adapted.shape[1], direct.shape[1])
    audible = (direct[:, :frames] > direct.max() - 6.0) & remapper.covered[:, np.newaxis]  # within 52 dB of the peak
    difference = adapted[:, :frames][audible] - direct[:, :frames][audible]
    assert audible.sum() > 1000
    assert abs(float(np.median(difference))) < 0.15 and float(np.mean(np.abs(difference))) < 0.4


def test_bands_above_the_source_range_get_the_target_floor() -> None:
    floor = np.float32(HIFIGAN_MEL.silence_value)
    noise = band_noise(1.0, 16000, 100.0, 7000.0, bands=24)
    remapper = MelRemapper(RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL)
    adapted = remapper.convert(mel_spectrogram(noise, RTVC_SYNTHESIZER_MEL))
    # RTVC's 55-7,600 Hz covers less than half of HiFi-GAN's band 0 (0-74 Hz) and band 79 (7,652-8,000 Hz)
    assert np.flatnonzero(~remapper.covered).tolist() == [0, 79]
    assert np.all(adapted[[0, 79]] == floor)
    assert np.all(adapted[1:79, 10:-10] > floor + 1.0)

    narrow = MelRemapper(NARROWBAND_MEL, HIFIGAN_MEL)
    adapted = narrow.convert(mel_spectrogram(band_noise(1.0, 8000, 100.0, 3800.0, bands=24), NARROWBAND_MEL))
    centres = band_centres(HIFIGAN_MEL)
    above, below = centres > 4100.0, (centres > 100.0) & (centres < 3800.0)  # past / within the 8 kHz source's range
    assert above.sum() > 15 and not narrow.covered[above].any() and narrow.covered[below].all()
    assert np.all(adapted[above] == floor)
    assert np.all(adapted[below][:, 10:-10] > floor + 5.0)


def test_a_step_in_time_stays_at_its_time() -> None:
    """Silence, then a tone from 0.6 s: the onset is in the same frame of the adapted mel as in HiFi-GAN's mel of the
    same audio at 22,050 Hz (80 and 86.13 frames/s; frame centres at 200 t and 256 t + 128 samples)."""

    def onset(mel: np.ndarray) -> int:
        loudness = mel.max(axis=0)
        return int(np.argmax(loudness > (loudness.min() + loudness.max()) / 2))

    def step(sample_rate: int) -> np.ndarray:
        silence = np.zeros(int(0.6 * sample_rate), np.float32)
        return np.concatenate([silence, steady_tone(1000.0, sample_rate, 0.6)])

    adapted = MelRemapper(RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL).convert(mel_spectrogram(step(16000), RTVC_SYNTHESIZER_MEL))
    assert abs(onset(adapted) - onset(mel_spectrogram(step(22050), HIFIGAN_MEL))) <= 1


def test_same_rate_and_hop_maps_frames_one_to_one() -> None:
    """The behaviour before frame-rate conversion: same rate and hop, other bands and scale: frames kept; the same
    spec on both sides gives the mel back."""
    samples = speech_like(1.0, 16000)
    rtvc = mel_spectrogram(samples, RTVC_SYNTHESIZER_MEL)
    identity = MelRemapper(RTVC_SYNTHESIZER_MEL, RTVC_SYNTHESIZER_MEL).convert(rtvc)
    assert identity.shape == rtvc.shape
    audible = rtvc > -3.0  # within 75 dB of the top of the range
    assert float(np.abs(identity - rtvc)[audible].mean()) < 0.05  # 0.6 dB
    narrower = RTVC_SYNTHESIZER_MEL.model_copy(update={"n_mels": 40, "preemphasis": 0.0, "normalization": "none"})
    converted = MelRemapper(RTVC_SYNTHESIZER_MEL, narrower).convert(rtvc)
    assert converted.shape == (40, rtvc.shape[1])


def test_a_batch_of_different_lengths_keeps_each_duration() -> None:
    items = [np.zeros((80, frames), np.float32) for frames in (30, 100)]
    adapted = MelRemapper(RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL)(Mel.from_numpy(items, RTVC_SYNTHESIZER_MEL))
    assert adapted.lengths.tolist() == [32, 108] and adapted.frames.shape == (2, 80, 108)
    assert adapted.frames.dtype == torch.float32
    assert torch.all(adapted.frames[0, :, 32:] == np.float32(HIFIGAN_MEL.silence_value))


def test_no_overlap_is_refused_naming_both_specs() -> None:
    high_only = HIFIGAN_MEL.model_copy(update={"fmin": 9000.0, "fmax": 11000.0})
    with pytest.raises(ValueError, match=r"16000 Hz / hop 200 / 80 bands 55-7600 Hz to 22050 Hz / hop 256") as refused:
        MelRemapper(RTVC_SYNTHESIZER_MEL, high_only)
    assert "\n" not in str(refused.value)
    with pytest.raises(IncompatibleComponentsError, match="no target band lies within the source's 55-7600 Hz"):
        vcframe_mel_adapter(source=RTVC_SYNTHESIZER_MEL, target=high_only)
    with pytest.raises(ValueError, match="mel of 22050 Hz .* given to an adapter from 16000 Hz"):
        MelRemapper(RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL)(Mel.from_numpy([np.zeros((80, 5), np.float32)], HIFIGAN_MEL))
