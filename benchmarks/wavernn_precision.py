"""What WaveRNN's reduced precisions cost: bfloat16 and int8 against float32 on the same mels, argmax sampling.

Run by hand (about 5-10 minutes on one core):

    nice -n 10 .venv/bin/python benchmarks/wavernn_precision.py --out /tmp/wavernn_precision [--clips 6]

The generation kernel's ``precision`` (float32 | bfloat16 | int8, ``isa`` auto) is the only thing that changes
between the rows of one sampler: the same weights, the same mel, 1 thread. Two samplers: argmax (deterministic,
so the difference to float32 is the precision alone) and RTVC's sampler at seed 0 for every precision (the same
Exp(1) noise; once one sample differs the runs drift apart, so this compares what the outputs sound like), with
float32 at seed 1 as the yardstick of what the sampler's randomness alone moves. Items:

* ``demo``: the shipped ``registry:wavernn-demo`` weights (small preset) on the first ``--clips`` LJSpeech-mini
  recordings' own mels (the quality benchmark's vocoder yardstick clips, ``quality.ljspeech_clips``): the
  log-spectral distance (LSD, dB; ``mel_adapter.log_spectral_distance``: 512-point STFT, hop 128, 0-8 kHz, frames
  within 40 dB of the reference's loudest) of each output to float32's with the same sampler, words heard right
  (pocketsphinx, ``vcframe.metrics``) against the clip's transcript, and the LSD of each output to the recording.
* ``rtvc-fixture``: RTVC's fixture weights (``../shared/rtvc/fixtures/vocoder.pt``, random, RTVC preset) on the
  fixtures' synthetic mel (``syn_mel_80``, repeated to ``--fixture-seconds``): the LSDs to float32 (no words: the
  weights are random).

Prints markdown tables (with the commit, CPU and load) and writes ``results.json`` and the audio under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vcframe_wavernn.model import WaveRNNVocoder
from vcframe_wavernn.spec import WaveRNNConfig

from vcframe.audio import load_audio, mel_spectrogram, save_audio
from vcframe.metrics.asr import default_recognizer, word_errors
from vcframe.specs import RTVC_SYNTHESIZER_MEL
from vcframe.types import Mel, Waveform

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from mel_adapter import log_spectral_distance  # noqa: E402
from quality import ljspeech_clips  # noqa: E402
from vocoder import benchmark_mel, cpu_description  # noqa: E402

PRECISIONS = ("float32", "bfloat16", "int8")
RATE = RTVC_SYNTHESIZER_MEL.sample_rate


#: The rows' samplers: argmax (deterministic: the precision is the only difference) and RTVC's sampler at seed 0
#: (the same Exp(1) noise for every precision; once one sample differs the two runs drift apart, so this compares
#: what the precisions' outputs sound like, next to the seed-to-seed yardstick).
SAMPLERS = ("argmax", "sampled")


def vocoders(checkpoint: str | None) -> dict[tuple[str, str], WaveRNNVocoder]:
    """(precision, sampler) -> a vocoder on the same weights, 1 thread."""
    return {
        (precision, sampler): WaveRNNVocoder(
            WaveRNNConfig(
                checkpoint=checkpoint,
                precision=precision,
                sampler="argmax" if sampler == "argmax" else "sample",
                threads=1,
            )
        )
        for precision in PRECISIONS
        for sampler in SAMPLERS
    }


def outputs_of(made: dict[tuple[str, str], WaveRNNVocoder], mel: Mel) -> dict[str, np.ndarray]:
    """'precision, sampler' -> audio (float32, clipped), and 'float32, sampled seed 1' (the yardstick)."""
    audio = {
        f"{precision}, {sampler}": made[precision, sampler].vocode(mel, seed=0).item(0) for precision, sampler in made
    }
    audio["float32, sampled seed 1"] = made["float32", "sampled"].vocode(mel, seed=1).item(0)
    return audio


def distances(audio: dict[str, np.ndarray]) -> dict[str, float]:
    """LSD of each row to float32 with the same sampler (and seed), and the seed-to-seed yardstick."""
    lsd = {
        f"{precision}, {sampler}": log_spectral_distance(
            audio[f"float32, {sampler}"], RATE, audio[f"{precision}, {sampler}"], RATE
        )
        for precision in PRECISIONS[1:]
        for sampler in SAMPLERS
    }
    lsd["float32, sampled seed 1"] = log_spectral_distance(
        audio["float32, sampled"], RATE, audio["float32, sampled seed 1"], RATE
    )
    return lsd


def demo_items(args: argparse.Namespace) -> list[dict[str, Any]]:
    made = vocoders("registry:wavernn-demo")
    recognizer = default_recognizer()
    rows = []
    for wav, text in ljspeech_clips(args.shared, args.clips):
        recording = load_audio(wav, sample_rate=RATE).item(0)
        mel = Mel.from_numpy([mel_spectrogram(recording, RTVC_SYNTHESIZER_MEL)], RTVC_SYNTHESIZER_MEL)
        audio = outputs_of(made, mel)
        row: dict[str, Any] = {
            "clip": wav.name,
            "seconds": len(recording) / RATE,
            "lsd_to_float32": distances(audio),
            "lsd_to_recording": {},
            "words_right": {},
            "transcript": {},
        }
        for name, samples in audio.items():
            path = args.out / "demo" / f"{wav.stem}_{name.replace(', ', '_').replace(' ', '_')}.wav"
            _save(samples, path)
            transcript = recognizer.transcribe(path)
            counts = word_errors(text, transcript)
            row["transcript"][name] = transcript
            row["words_right"][name] = (counts.hits, counts.reference_words)
            row["lsd_to_recording"][name] = log_spectral_distance(recording, RATE, samples, RATE)
        rows.append(row)
        print(f"demo {wav.name}: {json.dumps(row['lsd_to_float32'])} {row['words_right']}", flush=True)
    return rows


def fixture_items(args: argparse.Namespace) -> list[dict[str, Any]]:
    checkpoint = args.shared / "rtvc" / "fixtures" / "vocoder.pt"
    if not checkpoint.is_file():
        print(f"skipped the rtvc-fixture rows: {checkpoint} is absent")
        return []
    audio = outputs_of(vocoders(str(checkpoint)), benchmark_mel(args.fixture_seconds))
    for name, samples in audio.items():
        _save(samples, args.out / "rtvc-fixture" / f"syn_mel_{name.replace(', ', '_').replace(' ', '_')}.wav")
    row = {"clip": "syn_mel_80", "seconds": args.fixture_seconds, "lsd_to_float32": distances(audio)}
    print(f"rtvc-fixture: {json.dumps(row['lsd_to_float32'])}", flush=True)
    return [row]


def _save(samples: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_audio(Waveform.from_numpy([samples], RATE), path)


def table(demo: list[dict[str, Any]], fixture: list[dict[str, Any]]) -> str:
    """Per item set, sampler and precision: mean LSD to float32 (same sampler and seed) and to the recording,
    words heard right over all clips."""
    lines = [
        "| weights, mels | sampler | precision | LSD to float32 (dB) | LSD to the recording (dB) | words heard right |",
        "|---|---|---|---|---|---|",
    ]
    for title, rows in (("wavernn-demo, LJSpeech-mini", demo), ("RTVC fixture (random), syn_mel_80", fixture)):
        if not rows:
            continue
        names = [f"{p}, {s}" for s in SAMPLERS for p in PRECISIONS] + ["float32, sampled seed 1"]
        for name in names:
            precision, _, sampler = name.partition(", ")
            if name == "float32, sampled seed 1":
                precision, sampler = "float32", "sampled, seed 1 (yardstick)"
            lsd = (
                "0 (reference)"
                if name.startswith("float32, ") and "seed 1" not in name
                else _mean(rows, "lsd_to_float32", name)
            )
            to_recording = _mean(rows, "lsd_to_recording", name) if "lsd_to_recording" in rows[0] else "-"
            heard = "-"
            if "words_right" in rows[0]:
                hits = sum(row["words_right"][name][0] for row in rows)
                total = sum(row["words_right"][name][1] for row in rows)
                heard = f"{hits / total:.1%} ({hits}/{total})"
            lines.append(f"| {title} ({len(rows)}) | {sampler} | {precision} | {lsd} | {to_recording} | {heard} |")
    return "\n".join(lines)


def _mean(rows: list[dict[str, Any]], field: str, key: str) -> str:
    return f"{statistics.mean(row[field][key] for row in rows):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json and the audio")
    parser.add_argument("--clips", type=int, default=6, help="LJSpeech-mini clips (the vocoder yardstick's first N)")
    parser.add_argument("--fixture-seconds", type=float, default=4.0, help="length of the fixture mel (repeated)")
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("VCFRAME_SHARED", ROOT.parent / "shared")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    loads = [os.getloadavg()[0]]
    demo = demo_items(args)
    loads.append(os.getloadavg()[0])
    fixture = fixture_items(args)
    loads.append(os.getloadavg()[0])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    header = (
        f"commit {commit}; {cpu_description()}; torch {torch.__version__}; 1 thread; load average "
        f"{min(loads):.2f}-{max(loads):.2f}; argmax and RTVC's sampler (seed 0); isa auto"
    )
    report = {"commit": commit, "header": header, "demo": demo, "rtvc_fixture": fixture, "table": table(demo, fixture)}
    print("\n" + header + "\n\n" + report["table"])
    (args.out / "results.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"wrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
