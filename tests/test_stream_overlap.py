"""Pipeline.stream synthesizes the next batch in a worker thread while the current one is vocoded (issue 26)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile
import torch

from vcframe.config import Settings
from vcframe.errors import InputError
from vcframe.pipeline import Pipeline, synthesis_batches
from vcframe.types import Waveform

SENTENCES = ["First one here.", "A second, longer sentence follows it.", "Third!", "Fourth one.", "And a fifth."]
TEXT = " ".join(SENTENCES)


def _worker_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "vcframe-synthesis"]


@pytest.fixture
def reference(tmp_path) -> str:
    seconds = np.arange(2 * 16000) / 16000
    voiced = 0.3 * np.sin(2 * np.pi * 150 * seconds) * (1 + np.sin(2 * np.pi * 3 * seconds)) / 2
    path = tmp_path / "reference.wav"
    soundfile.write(str(path), voiced.astype(np.float32), 16000)
    return str(path)


@pytest.mark.parametrize("vocoder", ["griffinlim", "wavernn"])
def test_overlapped_stream_equals_the_sequential_one(reference, vocoder) -> None:
    """Tiny random Tacotron with pre-net dropout on (it draws from torch's global generator under seeded) and
    a sampling WaveRNN / Griffin-Lim: the overlapped chunks are the sequential ones, in the same order."""
    options = {
        "encoder": {"ge2e": {"preset": "tiny", "checkpoint": None}},
        "synthesizer": {"tacotron": {"preset": "tiny", "checkpoint": None, "max_frames": 16, "inference_dropout": 0.5}},
        "vocoder": {"griffinlim": {"n_iter": 2}, "wavernn": {"preset": "tiny", "checkpoint": None}},
    }
    settings = Settings(
        encoder="ge2e", synthesizer="tacotron", vocoder=vocoder, components=options, synthesis_batch_size=2
    )
    pipeline = Pipeline(settings=settings, device="cpu")
    sequential = list(pipeline.stream(TEXT, reference, seed=4, overlap=False))
    sequential_mels = [mel.frames.clone() for mel in pipeline.last_mels]
    overlapped = list(pipeline.stream(TEXT, reference, seed=4))
    assert [chunk.lengths.tolist() for chunk in overlapped] == [chunk.lengths.tolist() for chunk in sequential]
    for mine, theirs in zip(overlapped, sequential, strict=True):
        torch.testing.assert_close(mine.samples, theirs.samples, atol=1e-6, rtol=0)
    assert len(pipeline.last_mels) == len(SENTENCES)
    for mine, theirs in zip(pipeline.last_mels, sequential_mels, strict=True):
        torch.testing.assert_close(mine.frames, theirs, atol=1e-6, rtol=0)
    other_seed = torch.cat([c.samples for c in pipeline.stream(TEXT, reference, seed=5)], dim=1)
    assert not torch.equal(other_seed, torch.cat([c.samples for c in overlapped], dim=1))
    assert _worker_threads() == []
    # clone synthesizes the same batches (the first sentence alone) with the same seeds: the same mels, and the
    # same audio where the vocoder's stream is its vocode (Griffin-Lim's stream estimates the phase block by block)
    cloned = pipeline.clone(TEXT, reference, seed=4).samples
    for mine, theirs in zip(pipeline.last_mels, sequential_mels, strict=True):
        torch.testing.assert_close(mine.frames, theirs, atol=1e-6, rtol=0)
    streamed = torch.cat([c.samples for c in overlapped], dim=1)
    assert streamed.shape == cloned.shape
    if pipeline.specs["vocoder"].streaming_spectrum_db is None:
        torch.testing.assert_close(streamed, cloned, atol=1e-6, rtol=0)


def _dummy_pipeline(batch_size: int) -> Pipeline:
    settings = Settings(synthesis_batch_size=batch_size, sentence_pause_s=0)
    return Pipeline(encoder="test-tone", synthesizer="test-constant", vocoder="test-sine", settings=settings)


def test_next_batch_is_synthesized_while_the_current_one_is_vocoded(dummy_registry, speech_like_wav) -> None:
    """The vocoder of sentence 0 waits until the worker has started synthesizing the next batch: without the
    overlap that never happens (the wait would time out and the test fail)."""
    pipeline = _dummy_pipeline(batch_size=1)
    reference = speech_like_wav()
    synthesizer, vocoder = pipeline.synthesizer, pipeline.vocoder
    synthesize, vocode = synthesizer.synthesize, vocoder.vocode_stream
    started: list[tuple[str, str]] = []
    second_batch = threading.Event()

    def spying_synthesize(texts, embedding, **kwargs):
        started.append((texts[0], threading.current_thread().name))
        if len(started) == 2:
            second_batch.set()
        return synthesize(texts, embedding, **kwargs)

    def waiting_vocode(mel, **kwargs):
        overlapped = second_batch.wait(timeout=10)
        yield from vocode(mel, **kwargs)
        assert overlapped, "the next batch was not synthesized while this one was vocoded"

    synthesizer.synthesize = spying_synthesize
    vocoder.vocode_stream = waiting_vocode
    chunks = list(pipeline.stream(" ".join(SENTENCES[:3]), reference, seed=1))
    assert [text for text, _ in started] == SENTENCES[:3]
    assert {thread for _, thread in started} == {"vcframe-synthesis"}
    assert len(chunks) >= 3


def test_synthesis_batches_put_the_first_sentence_alone() -> None:
    assert synthesis_batches(5, 2) == [range(0, 1), range(1, 3), range(3, 5)]
    assert synthesis_batches(3, 8) == [range(0, 1), range(1, 3)]
    assert synthesis_batches(1, 8) == [range(0, 1)]
    assert synthesis_batches(0, 8) == []
    assert synthesis_batches(10, 4, first_batch_size=2) == [range(0, 2), range(2, 6), range(6, 10)]
    assert synthesis_batches(10, 4, first_batch_size=9) == [range(0, 4), range(4, 8), range(8, 10)]  # as before
    with pytest.raises(ValueError, match="first_batch_size=0"):
        synthesis_batches(3, 2, first_batch_size=0)


@pytest.mark.parametrize("overlap", [True, False])
def test_first_audio_comes_before_the_second_sentence_is_synthesized(dummy_registry, speech_like_wav, overlap) -> None:
    """All five sentences fit one batch of 8, yet the first is synthesized alone and its first chunk reaches the
    caller before the rest are synthesized (one batch, seeded seed + 1). The worker's second call waits (10 s at
    most) for the caller's first chunk: were the first chunk to need the second sentence, it would come too late."""
    pipeline = _dummy_pipeline(batch_size=8)
    synthesizer = pipeline.synthesizer
    synthesize = synthesizer.synthesize
    received: list[Waveform] = []
    first_chunk_received = threading.Event()
    calls: list[tuple[list[str], int | None, int]] = []  # (texts, seed, chunks the caller had at the call)

    def recording_synthesize(texts, embedding, **kwargs):
        if calls:
            first_chunk_received.wait(timeout=10)
        calls.append((list(texts), kwargs.get("seed"), len(received)))
        return synthesize(texts, embedding, **kwargs)

    synthesizer.synthesize = recording_synthesize
    for chunk in pipeline.stream(TEXT, speech_like_wav(), seed=1, overlap=overlap):
        received.append(chunk)
        first_chunk_received.set()
    assert [(texts, seed) for texts, seed, _ in calls] == [(SENTENCES[:1], 1), (SENTENCES[1:], 2)]
    assert calls[0][2] == 0 and calls[1][2] >= 1  # the second sentence was synthesized after the first chunk
    samples = torch.cat([chunk.samples for chunk in received], dim=1)
    synthesizer.synthesize = synthesize
    torch.testing.assert_close(samples, pipeline.clone(TEXT, speech_like_wav(), seed=1).samples, atol=1e-6, rtol=0)


def _stream_by_sentence(pipeline: Pipeline, reference, by_sentence: list[int] | None = None):
    """The streamed chunks and the samples of each sentence (the chunks after each "vocode" progress report)."""
    by_sentence = [] if by_sentence is None else by_sentence

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "vocode" and done < total:
            by_sentence.append(0)

    chunks = []
    for chunk in pipeline.stream(TEXT, reference, seed=1, progress=progress):
        by_sentence[-1] += int(chunk.lengths[0])
        chunks.append(chunk)
    return chunks, by_sentence


def test_sentence_order_is_kept(dummy_registry, speech_like_wav) -> None:
    """The test-constant synthesizer makes 4 frames per character, the sine vocoder 64 samples per frame: each
    sentence's audio has its own length, and they come in the text's order whatever the worker's pace."""
    pipeline = _dummy_pipeline(batch_size=2)
    chunks, by_sentence = _stream_by_sentence(pipeline, speech_like_wav())
    assert by_sentence == [4 * 64 * len(sentence) for sentence in SENTENCES]
    clone = pipeline.clone(TEXT, speech_like_wav(), seed=1).samples
    torch.testing.assert_close(torch.cat([chunk.samples for chunk in chunks], dim=1), clone, atol=1e-6, rtol=0)


def test_an_error_in_one_sentence_is_raised_once_after_the_audio_before_it(dummy_registry, speech_like_wav) -> None:
    pipeline = _dummy_pipeline(batch_size=1)
    synthesizer = pipeline.synthesizer
    synthesize = synthesizer.synthesize
    calls: list[str] = []
    threads: set[str] = set()

    def failing_synthesize(texts, embedding, **kwargs):
        calls.append(texts[0])
        threads.add(threading.current_thread().name)
        if texts[0] == SENTENCES[2]:
            raise InputError(f"cannot say {texts[0]!r}", hint="say something else")
        return synthesize(texts, embedding, **kwargs)

    synthesizer.synthesize = failing_synthesize
    produced: list[int] = []
    with pytest.raises(InputError, match="cannot say 'Third!'") as raised:
        _stream_by_sentence(pipeline, speech_like_wav(), produced)
    assert produced == [4 * 64 * len(sentence) for sentence in SENTENCES[:2]]
    assert raised.value.hint == "say something else"
    assert calls == SENTENCES[:3]  # the worker stopped at the failing sentence
    assert threads == {"vcframe-synthesis"}
    assert _worker_threads() == []


def test_closing_the_stream_early_stops_the_worker(dummy_registry, speech_like_wav) -> None:
    pipeline = _dummy_pipeline(batch_size=1)
    stream = pipeline.stream(TEXT, speech_like_wav(), seed=1)
    next(stream)
    assert len(_worker_threads()) == 1  # synthesizing ahead
    stream.close()
    assert _worker_threads() == []


def test_seeded_blocks_of_two_threads_do_not_interleave() -> None:
    """Thread A draws, then waits (half a second at most) for thread B to be inside its own seeded block before
    drawing again: B's block waits for A's to end, so A draws what it draws alone (without the lock B's
    manual_seed lands inside A's block and A's second draw comes from B's stream)."""
    from vcframe.seeding import seeded

    with seeded(1):
        alone = [torch.rand(3), torch.rand(3)]
    first_drawn, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()
    drawn: list[torch.Tensor] = []

    def thread_a() -> None:
        with seeded(1):
            drawn.append(torch.rand(3))
            first_drawn.set()
            b_inside.wait(timeout=0.5)
            drawn.append(torch.rand(3))
        a_done.set()

    def thread_b() -> None:
        first_drawn.wait(timeout=5)
        with seeded(2):
            b_inside.set()
            a_done.wait(timeout=0.5)
            torch.rand(3)

    workers = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(torch.equal(mine, theirs) for mine, theirs in zip(drawn, alone, strict=True))
