"""MelSpec conventions beyond RTVC's: HiFi-GAN's natural-log, reflect-padded, not-centred mel (HIFIGAN_MEL).

Golden values come from ``../shared/hifigan/fixtures/features_ref.safetensors`` (the original code's front end
on LJ001-0001, README section 4), compared with the README's section 7 criteria.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from vcframe.audio import (
    amplitude_to_mel_values,
    frames_for,
    linear_spectrogram,
    mel_basis,
    mel_spectrogram,
    mel_values_to_amplitude,
)
from vcframe.checkpoints import locate_source, read_safetensors_metadata
from vcframe.specs import HIFIGAN_MEL, RTVC_ENCODER_MEL, RTVC_SYNTHESIZER_MEL, MelSpec
from vcframe.testing.shared import shared_path

#: README section 7: log-mels atol 1e-3, and 2e-4 where the reference is above -9; STFT magnitude atol 5e-5.
LOG_MEL_ATOL, LOG_MEL_ATOL_ABOVE_MINUS_9, MAGNITUDE_ATOL = 1e-3, 2e-4, 5e-5


@pytest.fixture(scope="module")
def hifigan_features() -> dict[str, np.ndarray]:
    path = (
        shared_path("hifigan", "fixtures", needs="features_ref.safetensors", anchor=__file__)
        / "features_ref.safetensors"
    )
    from safetensors.numpy import load_file

    return load_file(str(path))


def _assert_log_mel_close(mel: np.ndarray, reference: np.ndarray) -> None:
    assert mel.shape == reference.shape
    difference = np.abs(mel - reference)
    assert difference.max() <= LOG_MEL_ATOL, difference.max()
    assert difference[reference > -9].max() <= LOG_MEL_ATOL_ABOVE_MINUS_9, difference[reference > -9].max()


def test_hifigan_mel_matches_the_original_front_end(hifigan_features) -> None:
    wav = hifigan_features["wav"]
    np.testing.assert_array_equal(mel_basis(HIFIGAN_MEL), hifigan_features["mel_basis_fmax8000"])
    magnitude = linear_spectrogram(wav, HIFIGAN_MEL)
    np.testing.assert_allclose(magnitude, hifigan_features["magnitude"][0], rtol=0, atol=MAGNITUDE_ATOL)
    mel = mel_spectrogram(wav, HIFIGAN_MEL)
    _assert_log_mel_close(mel, hifigan_features["mel"][0])
    assert mel.shape[1] == frames_for(len(wav), HIFIGAN_MEL) == len(wav) // 256 == 86


def test_hifigan_loss_mel_and_training_items_match(hifigan_features) -> None:
    """The loss mel is HIFIGAN_MEL with fmax = sr / 2 (fmax_for_loss null); training items are peak-0.95 audio."""
    loss_mel = HIFIGAN_MEL.model_copy(update={"fmax": 11025.0})
    np.testing.assert_array_equal(mel_basis(loss_mel), hifigan_features["mel_basis_fmaxnull"])
    _assert_log_mel_close(mel_spectrogram(hifigan_features["wav"], loss_mel), hifigan_features["mel_loss"][0])
    for item in ("train_item", "train_item_split"):
        audio = hifigan_features[f"{item}.audio"]
        _assert_log_mel_close(mel_spectrogram(audio, HIFIGAN_MEL), hifigan_features[f"{item}.mel"])
        _assert_log_mel_close(mel_spectrogram(audio, loss_mel), hifigan_features[f"{item}.mel_loss"])


def test_each_hifigan_convention_changes_the_mel(hifigan_features) -> None:
    """Without the reflect padding, the 1e-9 or the natural log the fixture's mel is missed (the test has teeth)."""
    wav, reference = hifigan_features["wav"], hifigan_features["mel"][0]
    for change in ({"magnitude_epsilon": 0.0}, {"pad_mode": "constant"}):
        mel = mel_spectrogram(wav, HIFIGAN_MEL.model_copy(update=change))
        assert np.abs(mel - reference).max() > LOG_MEL_ATOL, change
    centred = mel_spectrogram(wav, HIFIGAN_MEL.model_copy(update={"center": True, "pad_length": 0}))
    assert centred.shape[1] == 87  # 1 + L // hop: one frame more, and shifted by half a hop


def test_frames_for_hifigan_is_samples_over_hop() -> None:
    for num_samples in (256, 1000, 22016, 132300):
        assert frames_for(num_samples, HIFIGAN_MEL) == num_samples // 256
        signal = np.sin(np.arange(num_samples) * 0.01).astype(np.float32)
        assert mel_spectrogram(signal, HIFIGAN_MEL).shape == (80, num_samples // 256)


def test_ln_scale_silence_and_inversion() -> None:
    assert HIFIGAN_MEL.silence_value == pytest.approx(math.log(1e-5))
    amplitude = np.geomspace(1e-4, 10, 50)[None, :]
    values = amplitude_to_mel_values(amplitude, HIFIGAN_MEL)
    np.testing.assert_allclose(values, np.log(amplitude), rtol=1e-12)
    np.testing.assert_allclose(mel_values_to_amplitude(values, HIFIGAN_MEL), amplitude, rtol=1e-9)
    floored = amplitude_to_mel_values(np.array([[0.0, 1e-7]]), HIFIGAN_MEL)
    np.testing.assert_allclose(floored, HIFIGAN_MEL.silence_value)
    silence = mel_spectrogram(np.zeros(4096, np.float32), HIFIGAN_MEL)
    np.testing.assert_allclose(silence, HIFIGAN_MEL.silence_value, atol=1e-6)  # 1e-9 in the root stays below the floor


def test_new_fields_leave_earlier_specs_unchanged() -> None:
    """Specs written before pad_length / magnitude_epsilon / 'ln' existed (checkpoint metadata) validate unchanged."""
    for spec in (RTVC_SYNTHESIZER_MEL, RTVC_ENCODER_MEL):
        stored = spec.model_dump(mode="json")
        for new_field in ("pad_length", "magnitude_epsilon"):
            assert stored.pop(new_field) == 0
        assert MelSpec.model_validate(stored) == spec


def test_shipped_checkpoint_mel_specs_still_validate() -> None:
    checked = 0
    for source in ("package:vcframe_tacotron/weights/tacotron-demo.safetensors",
                   "package:vcframe_wavernn/weights/wavernn-demo.safetensors"):  # fmt: skip
        metadata = read_safetensors_metadata(locate_source(source))
        assert metadata is not None
        if "mel_spec" in metadata:
            assert MelSpec.model_validate(metadata["mel_spec"]) == RTVC_SYNTHESIZER_MEL
            checked += 1
    assert checked >= 1


def test_invalid_combinations_name_both_values() -> None:
    fields = HIFIGAN_MEL.model_dump()
    with pytest.raises(ValidationError, match=r"pad_length \(384\).*center is True.*n_fft / 2 = 512"):
        MelSpec.model_validate({**fields, "center": True})
    with pytest.raises(ValidationError, match="amplitude_scale 'ln' takes no normalization.*'symmetric'"):
        MelSpec.model_validate({**fields, "normalization": "symmetric"})
