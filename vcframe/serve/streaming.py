"""Audio from the inference worker to a streaming response, chunk by chunk, as it is made.

``POST /v1/speech/stream`` runs as a job on the worker thread (:func:`~vcframe.serve.engine.speak_stream`);
each chunk of audio goes through an :class:`AudioChannel` to the request's event loop, which sends it on at
once. The response is a WAV stream: a 44-byte header with both sizes unknown (0xFFFFFFFF) and then 16-bit
little-endian PCM as it comes. Why WAV and not bare PCM: the same bytes saved to a file play as they are
(``curl ... > speech.wav``), while a page still reads them progressively with ``fetch``'s stream reader
(skip 44 bytes, turn each run of samples into an ``AudioBuffer``); Web Audio's ``decodeAudioData`` only takes
whole files, so no encoded format (Ogg, MP3) would be decodable chunk by chunk there.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from vcframe.serve.engine import pcm16_bytes
from vcframe.types import Waveform


@dataclass(frozen=True)
class AudioChunk:
    """One chunk of a stream: 16-bit little-endian PCM samples at ``sample_rate`` Hz."""

    sample_rate: int
    pcm: bytes


@dataclass(frozen=True)
class StreamEnd:
    """The worker's task is over (its job says how it ended); nothing follows. ``error``: what failed it."""

    error: BaseException | None = None


class AudioChannel:
    """Chunks from the worker thread to one request's event loop, in order, then one :class:`StreamEnd`.

    Args:
        loop: the event loop of the request that reads the channel.

    The worker calls :meth:`put` and finally :meth:`end`; the request awaits :meth:`get`. Nothing waits for the
    reader: the worker never slows down for a slow client (the chunks wait in memory, 32 kB per second of
    16 kHz audio).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[AudioChunk | StreamEnd] = asyncio.Queue()

    def _hand_over(self, item: AudioChunk | StreamEnd) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped, nobody reads
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def put(self, waveform: Waveform) -> None:
        """Hand over item 0 of ``waveform`` (converted to PCM here, on the worker thread)."""
        self._hand_over(AudioChunk(waveform.sample_rate, pcm16_bytes(waveform)))

    def end(self, error: BaseException | None = None) -> None:
        """No more chunks; ``error``: the exception that ended the task early (None: it finished or was
        cancelled)."""
        self._hand_over(StreamEnd(error))

    async def get(self) -> AudioChunk | StreamEnd:
        """The next chunk, or the end."""
        return await self._queue.get()
