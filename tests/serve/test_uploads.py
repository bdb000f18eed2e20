"""Upload checks without a server: magic numbers, header durations (MP3 parsed here), bounded decoding."""

from __future__ import annotations

import numpy as np
import pytest

from vcframe.errors import AudioInputError
from vcframe.serve.problems import PayloadTooLarge, UnsupportedMediaType
from vcframe.serve.uploads import AudioUpload, inspect_upload, parse_mp3_frame_header, sniff_format

LIMITS = dict(max_bytes=10_000_000, max_seconds=10.0)


@pytest.mark.parametrize(
    ("file_format", "subtype", "expected"),
    [
        ("WAV", None, "wav"),
        ("WAV", "FLOAT", "wav"),
        ("FLAC", None, "flac"),
        ("OGG", None, "ogg"),
        ("OGG", "OPUS", "ogg"),
        ("MP3", None, "mp3"),
    ],
)
def test_formats_are_sniffed_and_durations_read_from_headers(audio, file_format, subtype, expected) -> None:
    rate = 48000 if subtype == "OPUS" else 16000
    content = audio(2.0, rate=rate, file_format=file_format, subtype=subtype)
    assert sniff_format(content) == expected
    upload = inspect_upload(content, **LIMITS)
    assert upload.format == expected and upload.sample_rate == rate
    assert upload.duration_s == pytest.approx(2.0, abs=0.1)  # MP3: the Xing frame count includes encoder padding
    samples, decoded_rate = upload.decode()
    assert decoded_rate == rate and len(samples) == pytest.approx(2 * rate, rel=0.06)


@pytest.mark.parametrize(
    "content",
    [
        b"<html><body>not audio</body></html>" * 20,
        b"\x1aE\xdf\xa3" + b"\x00" * 400,  # WebM/Matroska, what MediaRecorder makes
        b"ftypM4A " + b"\x00" * 400,
        b"\xff\xfb" + b"\x00" * 400,  # a lone MPEG sync pattern with no valid frame after it
        b"RIFF\x00\x00\x00\x00AVI LIST" + b"\x00" * 400,
        b"%PDF-1.7" + b"\x00" * 400,
    ],
)
def test_anything_else_is_415_whatever_it_is_called(content) -> None:
    assert sniff_format(content) is None
    with pytest.raises(UnsupportedMediaType, match="judged from its bytes"):
        inspect_upload(content, **LIMITS)


def test_size_and_empty() -> None:
    with pytest.raises(PayloadTooLarge, match="at most 100"):
        inspect_upload(b"RIFF" + b"\x00" * 200, max_bytes=100, max_seconds=10)
    with pytest.raises(AudioInputError, match="empty"):
        inspect_upload(b"", **LIMITS)


def test_too_long_is_refused_from_the_header_without_decoding(audio, monkeypatch) -> None:
    import soundfile

    def no_decoding(*args, **kwargs):
        raise AssertionError("the samples were decoded")

    monkeypatch.setattr(soundfile, "read", no_decoding)
    for file_format in ("WAV", "FLAC", "OGG", "MP3"):
        with pytest.raises(AudioInputError, match=r"is 3\.\d s long; this server takes at most 2 s"):
            inspect_upload(audio(3.0, file_format=file_format), max_bytes=10**7, max_seconds=2.0)


def test_decoding_is_bounded_when_a_header_lies(audio) -> None:
    content = audio(3.0)
    lying = AudioUpload(content, "wav", 16000, 1, duration_s=0.5, max_seconds=1.0)
    with pytest.raises(AudioInputError, match="longer than 1 s"):
        lying.decode()


def test_mp3_header_parsing_and_cbr_estimate() -> None:
    import io

    import soundfile

    t = np.arange(32000) / 16000
    buffer = io.BytesIO()
    samples = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    soundfile.write(buffer, samples, 16000, format="MP3", bitrate_mode="CONSTANT", compression_level=0.5)
    content = buffer.getvalue()
    header = parse_mp3_frame_header(content, 0)
    assert header is not None and header.sample_rate == 16000 and header.version == "2"
    assert content[13:17] == b"Info"  # LAME's CBR header frame
    assert inspect_upload(content, **LIMITS).duration_s == pytest.approx(2.0, abs=0.1)
    # without that frame the duration is the constant-bitrate estimate from the size and the bitrate
    upload = inspect_upload(content[header.frame_bytes :], **LIMITS)
    assert upload.format == "mp3" and upload.duration_s == pytest.approx(2.0, abs=0.15)


def test_id3_tagged_mp3_is_recognised(audio) -> None:
    content = audio(1.0, file_format="MP3")
    body = b"TIT2\x00\x00\x00\x05\x00\x00\x03abcd"
    size = len(body)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    tagged = b"ID3\x04\x00\x00" + syncsafe + body + content
    assert sniff_format(tagged) == "mp3"
    assert inspect_upload(tagged, **LIMITS).duration_s == pytest.approx(1.0, abs=0.1)


def test_waveform_refuses_silence() -> None:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16000, dtype=np.float32), 16000, format="WAV")
    with pytest.raises(AudioInputError, match="silent"):
        inspect_upload(buffer.getvalue(), **LIMITS).waveform()


def _flac_of_unknown_length(audio, seconds: float) -> bytes:
    """A FLAC stream whose STREAMINFO says "total samples: 0" (unknown), as a streaming encoder writes it."""
    content = bytearray(audio(seconds, file_format="FLAC"))
    assert content[:4] == b"fLaC" and content[4] & 0x7F == 0  # the first metadata block is STREAMINFO
    fields = int.from_bytes(content[18:26], "big")  # rate (20 bits), channels, bits per sample, total samples (36)
    content[18:26] = (fields & ~((1 << 36) - 1)).to_bytes(8, "big")
    return bytes(content)


def test_flac_of_unknown_length_is_decoded_with_a_bound(audio) -> None:
    import io

    import soundfile

    content = _flac_of_unknown_length(audio, 2.0)
    assert soundfile.info(io.BytesIO(content)).frames > 10**15  # libsndfile's "unknown": an absurd length
    upload = inspect_upload(content, **LIMITS)
    assert upload.format == "flac" and upload.duration_s is None  # the header does not say
    samples, rate = upload.decode()
    assert rate == 16000 and len(samples) == 32000
    np.testing.assert_allclose(samples, soundfile.read(io.BytesIO(audio(2.0, file_format="FLAC")))[0], atol=1e-4)
    too_long = inspect_upload(_flac_of_unknown_length(audio, 3.0), max_bytes=10**7, max_seconds=1.0)
    with pytest.raises(AudioInputError, match="longer than 1 s"):
        too_long.decode()
