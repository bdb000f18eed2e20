"""Untrusted audio uploads: the bytes decide the format, the header decides the duration, decoding is bounded.

``inspect_upload(content, ...)`` runs three checks before any sample is decoded:

1. size: more than ``max_bytes`` is :class:`~vcframe.serve.problems.PayloadTooLarge` (413);
2. format: magic numbers only (``RIFF....WAVE``/``RF64``, ``fLaC``, ``OggS``, an MPEG Layer III frame header,
   optionally behind an ID3v2 tag). Anything else is :class:`~vcframe.serve.problems.UnsupportedMediaType`
   (415), whatever the declared content type or file name says;
3. duration: from the header. WAV, FLAC and OGG go through ``soundfile.info`` (libsndfile reads the header,
   and for OGG the last page's granule position). MP3 is parsed here: the Xing/Info or VBRI frame count when
   the file has one, else the constant-bitrate estimate ``audio bytes * 8 / bitrate``. Over the limit is an
   :class:`~vcframe.errors.AudioInputError` (422). A FLAC stream whose header says "length unknown" (total
   samples 0, as streaming encoders write it) has no header duration: only the bounded decode limits it.

A header can lie (a VBR MP3 without a Xing frame, a WAV whose sizes are wrong), so
:meth:`AudioUpload.decode` reads at most ``max_seconds`` plus one frame and refuses a longer result: the
header check keeps honest long files from being decoded at all, and the bounded decode caps the cost of a
dishonest one. Everything stays in memory; nothing is written to disk.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import soundfile

from vcframe.errors import AudioInputError
from vcframe.serve.problems import PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from vcframe.types import Waveform

AudioFormat = Literal["wav", "flac", "ogg", "mp3"]
MEDIA_TYPES: dict[str, str] = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg"}
_ACCEPTED = "WAV, FLAC, OGG (Vorbis/Opus) or MP3"

# MPEG audio Layer III tables, indexed by the header's fields (ISO 11172-3, ISO 13818-3).
_BITRATES_KBPS = {
    "1": (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    "2": (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {"1": (44100, 48000, 32000), "2": (22050, 24000, 16000), "2.5": (11025, 12000, 8000)}
_VERSIONS = {0b00: "2.5", 0b10: "2", 0b11: "1"}
#: Frames libsndfile reports for a stream whose header gives no length (SF_COUNT_MAX, a 64-bit "unknown").
_UNKNOWN_FRAMES = 2**62


@dataclass(frozen=True)
class Mp3Header:
    """The first MPEG Layer III frame header of a stream."""

    offset: int
    version: str
    bitrate_kbps: int
    sample_rate: int
    channels: int
    frame_bytes: int

    @property
    def samples_per_frame(self) -> int:
        return 1152 if self.version == "1" else 576


def parse_mp3_frame_header(content: bytes, offset: int) -> Mp3Header | None:
    """The Layer III frame header at ``offset``, or None if the four bytes there are not one."""
    if offset + 4 > len(content) or content[offset] != 0xFF or content[offset + 1] & 0xE0 != 0xE0:
        return None
    second, third, fourth = content[offset + 1], content[offset + 2], content[offset + 3]
    version = _VERSIONS.get((second >> 3) & 0b11)
    layer = (second >> 1) & 0b11
    bitrate_index, rate_index = third >> 4, (third >> 2) & 0b11
    if version is None or layer != 0b01 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved version, not Layer III, free-format or bad bitrate, reserved rate
    bitrate = _BITRATES_KBPS["1" if version == "1" else "2"][bitrate_index]
    sample_rate = _SAMPLE_RATES[version][rate_index]
    padding = (third >> 1) & 1
    coefficient = 144 if version == "1" else 72
    frame_bytes = coefficient * bitrate * 1000 // sample_rate + padding
    channels = 1 if fourth >> 6 == 0b11 else 2
    return Mp3Header(offset, version, bitrate, sample_rate, channels, frame_bytes)


def _id3v2_size(content: bytes) -> int:
    """Bytes taken by a leading ID3v2 tag (0 if there is none)."""
    if len(content) < 10 or content[:3] != b"ID3":
        return 0
    size_bytes = content[6:10]
    if any(byte & 0x80 for byte in size_bytes):
        return 0  # not a syncsafe integer: not a real tag
    size = (size_bytes[0] << 21) | (size_bytes[1] << 14) | (size_bytes[2] << 7) | size_bytes[3]
    footer = 10 if content[5] & 0x10 else 0
    return 10 + size + footer


def _first_mp3_frame(content: bytes) -> Mp3Header | None:
    """The first frame after any ID3v2 tag (and zero padding), confirmed by the frame that follows it."""
    start = _id3v2_size(content)
    limit = min(len(content), start + 4096)
    offset = start
    while offset < limit and content[offset] == 0:
        offset += 1
    header = parse_mp3_frame_header(content, offset)
    if header is None:
        return None
    following = offset + header.frame_bytes
    if following + 4 <= len(content) and parse_mp3_frame_header(content, following) is None:
        return None  # a lone 0xFFE... pattern, not a stream of frames
    return header


def mp3_duration(content: bytes, header: Mp3Header) -> float:
    """Seconds of an MP3 stream from its headers: the Xing/Info or VBRI frame count, else the CBR estimate."""
    side_info = (32 if header.channels == 2 else 17) if header.version == "1" else (17 if header.channels == 2 else 9)
    xing = header.offset + 4 + side_info
    if content[xing : xing + 4] in (b"Xing", b"Info") and len(content) >= xing + 12:
        flags = int.from_bytes(content[xing + 4 : xing + 8], "big")
        if flags & 1:
            frames = int.from_bytes(content[xing + 8 : xing + 12], "big")
            return frames * header.samples_per_frame / header.sample_rate
    vbri = header.offset + 4 + 32
    if content[vbri : vbri + 4] == b"VBRI" and len(content) >= vbri + 18:
        frames = int.from_bytes(content[vbri + 14 : vbri + 18], "big")
        return frames * header.samples_per_frame / header.sample_rate
    audio_bytes = len(content) - header.offset
    if content[-128:-125] == b"TAG":
        audio_bytes -= 128  # ID3v1 tag at the end
    return audio_bytes * 8 / (header.bitrate_kbps * 1000)


def sniff_format(content: bytes) -> AudioFormat | None:
    """The audio format the bytes say they are, or None."""
    if len(content) >= 12 and content[:4] in (b"RIFF", b"RF64") and content[8:12] == b"WAVE":
        return "wav"
    if content[:4] == b"fLaC":
        return "flac"
    if content[:4] == b"OggS":
        return "ogg"
    tag = _id3v2_size(content)
    if tag and content[tag : tag + 4] == b"fLaC":
        return "flac"
    if _first_mp3_frame(content) is not None:
        return "mp3"
    return None


def _read_unknown_length(stream: io.BytesIO, limit: int) -> tuple[np.ndarray, int]:
    """At most ``limit`` frames of a stream whose header gives no length, as float32 (frames, channels).

    libsndfile decodes such a FLAC stream, but soundfile's read then seeks to the position after the frames
    read, which fails at the end of the stream ("Internal psf_fseek() failed") and loses the count. The frames
    are read into a NaN-filled buffer instead: decoded integer PCM is never NaN, so the first NaN row is where
    the stream ended.
    """
    with soundfile.SoundFile(stream) as audio:
        buffer = np.full((limit, audio.channels), np.nan, dtype=np.float32)
        try:
            audio.read(out=buffer)
        except soundfile.LibsndfileError:
            pass  # the seek after the end of the stream; what was decoded is in the buffer
        ended = np.isnan(buffer[:, 0])
        frames = int(ended.argmax()) if ended.any() else limit
        return buffer[:frames], int(audio.samplerate)


@dataclass(frozen=True)
class AudioUpload:
    """An uploaded clip that passed the size, format and header-duration checks (not decoded yet).

    ``duration_s`` is the header's duration, None when the header does not say (a FLAC stream of unknown length).
    """

    content: bytes
    format: AudioFormat
    sample_rate: int
    channels: int
    duration_s: float | None
    max_seconds: float
    name: str = "upload"

    def decode(self) -> tuple[np.ndarray, int]:
        """Mono float32 samples and their rate, reading at most ``max_seconds`` (plus one frame)."""
        stream = io.BytesIO(self.content)
        if self.format == "flac" and self.content[:3] == b"ID3":
            stream = io.BytesIO(self.content[_id3v2_size(self.content) :])
        limit = int(self.max_seconds * self.sample_rate) + 1
        try:
            if self.duration_s is None:
                samples, rate = _read_unknown_length(stream, limit)
            else:
                samples, rate = soundfile.read(stream, frames=limit, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            raise AudioInputError(
                f"cannot decode the {self.format.upper()} upload ({str(error).splitlines()[0]})",
                hint="export the clip again",
            ) from error
        if len(samples) >= limit:
            said = "no length" if self.duration_s is None else f"{self.duration_s:.2f} s"
            raise AudioInputError(
                f"the upload is longer than {self.max_seconds:g} s (its header said {said})",
                hint=f"cut the clip to at most {self.max_seconds:g} s",
            )
        mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
        return np.ascontiguousarray(mono, dtype=np.float32), int(rate)

    def waveform(self) -> Waveform:
        """The decoded clip as a :class:`~vcframe.types.Waveform` (checked for silence and bad values)."""
        from vcframe.audio import check_samples
        from vcframe.types import Waveform

        samples, rate = self.decode()
        check_samples(samples, rate, self.name)
        return Waveform.from_numpy(samples, rate, source=self.name)


def inspect_upload(content: bytes, *, max_bytes: int, max_seconds: float, name: str = "upload") -> AudioUpload:
    """Check size, format (magic numbers) and header duration of an upload; see the module docstring."""
    if len(content) > max_bytes:
        raise PayloadTooLarge(
            f"the upload is {len(content):,} bytes; this server takes at most {max_bytes:,}",
            hint="upload a shorter clip or a compressed one (FLAC, OGG, MP3)",
        )
    if not content:
        raise AudioInputError("the upload is empty (0 bytes)", hint="record or export the clip again")
    audio_format = sniff_format(content)
    if audio_format is None:
        raise UnsupportedMediaType(
            "the upload is not WAV, FLAC, OGG or MP3 audio (judged from its bytes, not its name or type)",
            hint=f"upload a {_ACCEPTED} file; browsers' WebM recordings are not accepted",
        )
    duration: float | None
    if audio_format == "mp3":
        header = _first_mp3_frame(content)
        assert header is not None  # sniff_format found it
        duration, rate, channels = mp3_duration(content, header), header.sample_rate, header.channels
    else:
        stream = io.BytesIO(content[_id3v2_size(content) :] if content[:3] == b"ID3" else content)
        try:
            info = soundfile.info(stream)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            raise AudioInputError(
                f"the {audio_format.upper()} upload has an unreadable header ({str(error).splitlines()[0]})",
                hint="export the clip again",
            ) from error
        rate, channels = int(info.samplerate), int(info.channels)
        unknown = audio_format == "flac" and info.frames >= _UNKNOWN_FRAMES  # bounded when decoded
        duration = None if unknown else float(info.frames) / rate if rate > 0 else 0.0
    if rate <= 0 or channels <= 0:
        raise AudioInputError(f"the {audio_format.upper()} upload's header has no sample rate or channels")
    if duration is not None and duration > max_seconds:
        raise AudioInputError(
            f"the upload is {duration:.1f} s long; this server takes at most {max_seconds:g} s",
            hint=f"cut the clip to at most {max_seconds:g} s (5-10 s of speech works best)",
        )
    return AudioUpload(content, audio_format, rate, channels, duration, max_seconds, name)
