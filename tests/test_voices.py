"""Named voices: shipped samples, registered voices, librispeech: references, --voice on the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import soundfile
import torch

from vcframe.config import Settings
from vcframe.errors import InputError
from vcframe.pipeline import Pipeline
from vcframe.voices import VoiceStore, resolve_reference, sample_voices

DUMMIES = dict(encoder="test-tone", synthesizer="test-constant", vocoder="test-sine")


@pytest.fixture
def store(tmp_path, monkeypatch) -> VoiceStore:
    monkeypatch.setenv("VCFRAME_DATA_DIR", str(tmp_path / "data"))
    return VoiceStore()


@pytest.fixture
def pipeline(dummy_registry) -> Pipeline:
    return Pipeline(**DUMMIES, settings=Settings(), device="cpu")


def test_sample_voices_ship_with_checksums() -> None:
    voices = sample_voices()
    assert len(voices) >= 5
    for voice in voices:
        assert voice.kind == "sample" and voice.clip.is_file()
        assert hashlib.sha256(voice.clip.read_bytes()).hexdigest() == voice.details["sha256"]
        info = soundfile.info(str(voice.clip))
        assert info.samplerate == voice.sample_rate
        assert info.duration == pytest.approx(voice.duration_s, abs=0.01)
        assert "licence" in voice.details


def test_add_get_list_remove(store, pipeline, speech_like_wav) -> None:
    clip = speech_like_wav(seconds=2.5, sample_rate=44100)
    voice = store.add("alice", clip, pipeline=pipeline, consent=True, description="test voice")
    assert voice.kind == "user" and voice.sample_rate == 16000
    assert voice.duration_s == pytest.approx(2.5, abs=0.01)
    assert [v.name for v in store.list()][-1] == "alice"
    assert store.get("alice").embedding_file is not None
    summary = json.dumps(store.get("alice").summary())
    assert str(store.root) not in summary  # no filesystem paths in what clients see
    store.remove("alice")
    with pytest.raises(InputError, match="unknown voice 'alice'"):
        store.get("alice")
    assert not any(path.name.startswith(".") for path in store.root.iterdir())


@pytest.mark.parametrize(
    ("name", "consent", "needle"),
    [
        ("Bad Name", True, "not a valid voice name"),
        ("../escape", True, "not a valid voice name"),
        ("bob", False, "consent"),
        ("clara", True, "is a sample voice"),
    ],
)
def test_add_refusals(store, pipeline, speech_like_wav, name, consent, needle) -> None:
    with pytest.raises(InputError, match=needle):
        store.add(name, speech_like_wav(), pipeline=pipeline, consent=consent)
    assert not store.root.exists() or not any(store.root.iterdir())


def test_add_existing_needs_replace_and_samples_cannot_be_removed(store, pipeline, speech_like_wav) -> None:
    store.add("bob", speech_like_wav(f0=100), pipeline=pipeline, consent=True)
    with pytest.raises(InputError, match="already exists"):
        store.add("bob", speech_like_wav(f0=200), pipeline=pipeline, consent=True)
    store.add("bob", speech_like_wav("b.wav", f0=200), pipeline=pipeline, consent=True, replace=True)
    with pytest.raises(InputError, match="cannot be removed"):
        store.remove("clara")


def test_voice_embedding_uses_stored_or_reembeds(store, pipeline, speech_like_wav) -> None:
    clip = speech_like_wav(f0=150)
    voice = store.add("carol", clip, pipeline=pipeline, consent=True)
    torch.testing.assert_close(pipeline.voice_embedding("carol").vector, pipeline.embed([clip]).vector)
    # a stored embedding from another space is not used: the stored clip is embedded instead
    from vcframe.types import SpeakerEmbedding

    stored = SpeakerEmbedding.load(str(voice.embedding_file))
    foreign = SpeakerEmbedding(stored.vector * 0 + 1, stored.spec.model_copy(update={"space": "other"}))
    foreign.save(str(voice.embedding_file))
    again = pipeline.voice_embedding("carol")
    assert again.spec.space == pipeline.embedding_spec().space
    # sample voices embed their clip with whatever encoder runs
    assert pipeline.voice_embedding("clara").vector.shape == (1, pipeline.embedding_spec().dim)


def test_clone_with_voice(store, pipeline, speech_like_wav) -> None:
    store.add("dave", speech_like_wav(), pipeline=pipeline, consent=True)
    by_voice = pipeline.clone("Hello there.", voice="dave", seed=1)
    by_clip = pipeline.clone("Hello there.", speech_like_wav(), seed=1)
    torch.testing.assert_close(by_voice.samples, by_clip.samples)
    with pytest.raises(InputError, match="one of a reference"):
        pipeline.clone("Hello.", speech_like_wav(), voice="dave")
    with pytest.raises(InputError, match="empty"):
        pipeline.clone("  ", voice="dave")


def _librispeech_tree(root: Path, speech_like_wav) -> Path:
    folder = root / "LibriSpeech" / "test-clean" / "1089" / "134686"
    folder.mkdir(parents=True)
    clip = speech_like_wav()
    target = folder / "1089-134686-0000.flac"
    samples, rate = soundfile.read(str(clip))
    soundfile.write(str(target), samples, rate)
    return target


def test_librispeech_references(tmp_path, monkeypatch, speech_like_wav) -> None:
    target = _librispeech_tree(tmp_path / "ls", speech_like_wav)
    for root in (tmp_path / "ls", tmp_path / "ls" / "LibriSpeech", tmp_path / "ls" / "LibriSpeech" / "test-clean"):
        assert resolve_reference("librispeech:1089-134686-0000", dataset_root=root) == target
    monkeypatch.setenv("VCFRAME_LIBRISPEECH", str(tmp_path / "ls"))
    assert resolve_reference("librispeech:1089-134686-0000") == target
    assert resolve_reference("plain.wav") == Path("plain.wav")
    with pytest.raises(InputError, match="not found"):
        resolve_reference("librispeech:1089-134686-0001")
    with pytest.raises(InputError, match="not a LibriSpeech utterance id"):
        resolve_reference("librispeech:../../etc/passwd")
    monkeypatch.delenv("VCFRAME_LIBRISPEECH")
    with pytest.raises(InputError, match="--dataset-root"):
        resolve_reference("librispeech:1089-134686-0000")


def test_cli_voices_and_run_with_voice(dummy_registry, vcframe_cli, speech_like_wav, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VCFRAME_DATA_DIR", str(tmp_path / "data"))
    common = ["--encoder", "test-tone"]
    listed = vcframe_cli("voices", "list", "--json")
    assert listed.exit_code == 0 and {"clara", "duncan"} <= {v["name"] for v in json.loads(listed.stdout)}
    refused = vcframe_cli("voices", "add", "erin", speech_like_wav(), *common)
    assert refused.exit_code == 2 and "--consent" in refused.stderr
    added = vcframe_cli("voices", "add", "erin", speech_like_wav(), "--consent", *common)
    assert added.exit_code == 0, added.stderr
    out = tmp_path / "erin.wav"
    run = vcframe_cli(
        "run",
        "--voice",
        "erin",
        "--text",
        "Hi there.",
        "--out",
        out,
        *common,
        "--synthesizer",
        "test-constant",
        "--vocoder",
        "test-sine",
    )
    assert run.exit_code == 0, run.stderr
    assert out.is_file()
    both = vcframe_cli("run", "--voice", "erin", "-r", speech_like_wav(), "--text", "Hi.", "--out", tmp_path / "x.wav")
    assert both.exit_code == 2 and "one voice source" in both.stderr
    unknown = vcframe_cli(
        "run",
        "--voice",
        "nobody",
        "--text",
        "Hi.",
        "--out",
        tmp_path / "y.wav",
        *common,
        "--synthesizer",
        "test-constant",
        "--vocoder",
        "test-sine",
    )
    assert unknown.exit_code == 2 and "unknown voice 'nobody'" in unknown.stderr
    assert not (tmp_path / "y.wav").exists()
    embedded = vcframe_cli("embed", "--voice", "clara", "--out", tmp_path / "clara.npy", *common)
    assert embedded.exit_code == 0, embedded.stderr
    exported = vcframe_cli("voices", "export", "clara", "--out", tmp_path / "clara.flac")
    assert exported.exit_code == 0 and (tmp_path / "clara.flac").read_bytes() == sample_voices()[0].clip.read_bytes()
    assert vcframe_cli("voices", "remove", "erin").exit_code == 0
    assert vcframe_cli("voices", "remove", "clara").exit_code == 2
