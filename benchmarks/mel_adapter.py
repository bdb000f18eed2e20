"""Mel adapter benchmark: what the built-in adapter loses bridging RTVC's 16 kHz mel to HiFi-GAN's 22,050 Hz mel.

Run by hand (a few minutes on one core):

    nice -n 5 .venv/bin/python benchmarks/mel_adapter.py --out /tmp/mel_adapter

No HiFi-GAN trained at 22,050 Hz exists here, so every mel is turned into audio by Griffin-Lim, run at the mel's
own spec (the griffinlim plugin reads any spec): the difference between two paths through the same vocoder
family isolates what the adapter itself loses. Paths:

* ``rtvc``: the RTVC mel (16 kHz, hop 200) -> Griffin-Lim at RTVC's mel (16 kHz audio): no adapter.
* ``adapted``: the same mel -> ``vcframe run --adapt``'s built-in adapter -> HIFIGAN_MEL (22,050 Hz, hop 256,
  0-8 kHz, natural log) -> Griffin-Lim at HIFIGAN_MEL (22,050 Hz audio).
* ``hifigan-mel``: real recordings only, HiFi-GAN's own mel of the recording at 22,050 Hz -> Griffin-Lim at
  HIFIGAN_MEL: what Griffin-Lim at the target spec gives from a true mel (the adapter's ceiling).

Items:

* ``real``: the first ``--clips`` LJSpeech-mini recordings (the quality benchmark's human yardstick; known
  transcripts): the RTVC mel is the recording's own. Also the mel distance between the adapted mel and HiFi-GAN's
  mel of the recording (mean absolute difference of the natural-log values over the bands the adapter covers;
  all cells, and cells within 35 dB of the loudest value).
* ``tacotron``: the default bundle's Tacotron mel for the first ``--sentences`` held-out sentences, each voiced
  by the first ``--voices`` LibriSpeech test-other speakers (their first clip as the reference).

Measures: words heard right and WER (pocketsphinx, ``vcframe.metrics.asr``, as ``benchmarks/quality.py``), and
the log-spectral distance (LSD, dB): both signals at 16 kHz, 512-point STFT with hop 128, the other scaled to the
reference's RMS, per frame the root mean square over 0-8 kHz of the difference of 10 log10 power (floored at
1e-10), averaged over the reference's frames within 40 dB of its loudest. Real items compare against the
recording. Tacotron items have no recording: ``adapted`` is compared with ``rtvc``, beside Griffin-Lim's own
floor (``rtvc`` with another seed against ``rtvc``).

Prints a markdown table and writes ``results.json`` and the audio under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vcframe_griffinlim.model import GriffinLimVocoder
from vcframe_griffinlim.spec import GriffinLimConfig

from vcframe._adapters import MelRemapper
from vcframe.audio import load_audio, mel_spectrogram, resample, save_audio, stft
from vcframe.metrics.asr import default_recognizer, word_errors
from vcframe.pipeline import Pipeline
from vcframe.specs import HIFIGAN_MEL, RTVC_SYNTHESIZER_MEL
from vcframe.types import Mel, Waveform

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from quality import heard, held_out_sentences, ljspeech_clips, load_recipe, real_voice_clips  # noqa: E402

#: The STFT every log-spectral distance uses, at LSD_RATE: 32 ms windows, 8 ms hop, 0-8 kHz.
LSD_RATE, LSD_FFT, LSD_HOP = 16000, 512, 128
#: Frames of the reference quieter than this many dB below its loudest are left out of the LSD.
LSD_RANGE_DB = 40.0


def log_spectral_distance(reference: np.ndarray, reference_rate: int, other: np.ndarray, other_rate: int) -> float:
    """LSD in dB between two mono signals (see the module docstring): lengths cut to the shorter, ``other`` scaled
    to the RMS of ``reference``."""
    first = resample(np.asarray(reference, dtype=np.float32), reference_rate, LSD_RATE).astype(np.float64)
    second = resample(np.asarray(other, dtype=np.float32), other_rate, LSD_RATE).astype(np.float64)
    length = min(len(first), len(second))
    first, second = first[:length], second[:length]
    second *= np.sqrt(np.mean(first**2) / max(np.mean(second**2), 1e-20))
    settings = {"n_fft": LSD_FFT, "hop_length": LSD_HOP, "win_length": LSD_FFT}
    first_db = 10.0 * np.log10(np.maximum(np.abs(stft(first, **settings)) ** 2, 1e-10))
    second_db = 10.0 * np.log10(np.maximum(np.abs(stft(second, **settings)) ** 2, 1e-10))
    per_frame = np.sqrt(np.mean((first_db - second_db) ** 2, axis=0))
    energy = 10.0 * np.log10(np.maximum(np.sum(np.abs(stft(first, **settings)) ** 2, axis=0), 1e-20))
    return float(np.mean(per_frame[energy >= energy.max() - LSD_RANGE_DB]))


def mel_distance(adapted: np.ndarray, direct: np.ndarray, covered: np.ndarray) -> dict[str, float]:
    """Mean |adapted - direct| of two HIFIGAN_MEL mels (natural log) over the covered bands and common frames: all
    cells, and cells where ``direct`` is within 35 dB (4.03 in natural log) of its largest value; and the median
    signed difference of those."""
    frames = min(adapted.shape[1], direct.shape[1])
    difference = adapted[covered, :frames] - direct[covered, :frames]
    loud = direct[covered, :frames] >= direct.max() - 35.0 / (20.0 / np.log(10.0))
    return {
        "all": float(np.mean(np.abs(difference))),
        "loud": float(np.mean(np.abs(difference[loud]))),
        "median_loud": float(np.median(difference[loud])),
    }


class Paths:
    """The Griffin-Lim vocoders at both specs and the adapter between them."""

    def __init__(self, iterations: int) -> None:
        self.rtvc = GriffinLimVocoder(GriffinLimConfig(mel=RTVC_SYNTHESIZER_MEL, n_iter=iterations))
        self.hifigan = GriffinLimVocoder(GriffinLimConfig(mel=HIFIGAN_MEL, n_iter=iterations))
        self.adapter = MelRemapper(RTVC_SYNTHESIZER_MEL, HIFIGAN_MEL)

    def vocode(self, mel: Mel, seed: int) -> dict[str, Waveform]:
        """``rtvc`` and ``adapted`` audio of one RTVC mel (batch of one), and the adapter's seconds."""
        started = time.perf_counter()
        adapted = self.adapter(mel)
        seconds = time.perf_counter() - started
        return {
            "rtvc": self.rtvc.vocode(mel, seed=seed),
            "adapted": self.hifigan.vocode(adapted, seed=seed),
            "_adapter_seconds": seconds,  # type: ignore[dict-item]
            "_adapted_mel": adapted,  # type: ignore[dict-item]
        }


def transcribe_row(path: Path, text: str) -> dict[str, Any]:
    transcript = default_recognizer().transcribe(path)
    counts = word_errors(text, transcript)
    return {"transcript": transcript, "wer": counts.rate}


def real_items(paths: Paths, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for index, (wav, text) in enumerate(ljspeech_clips(args.shared, args.clips)):
        recording = load_audio(wav)
        samples16 = load_audio(wav, sample_rate=16000).item(0)
        samples22 = load_audio(wav, sample_rate=22050).item(0)
        mel = Mel.from_numpy([mel_spectrogram(samples16, RTVC_SYNTHESIZER_MEL)], RTVC_SYNTHESIZER_MEL)
        outputs = paths.vocode(mel, seed=args.seed)
        direct_mel = mel_spectrogram(samples22, HIFIGAN_MEL)
        outputs["hifigan-mel"] = paths.hifigan.vocode(Mel.from_numpy([direct_mel], HIFIGAN_MEL), seed=args.seed)
        distance = mel_distance(outputs["_adapted_mel"].item(0), direct_mel, paths.adapter.covered)
        for path_name in ("rtvc", "adapted", "hifigan-mel"):
            waveform = outputs[path_name]
            out = args.out / "real" / f"{wav.stem}_{path_name}.wav"
            out.parent.mkdir(parents=True, exist_ok=True)
            save_audio(waveform, out)
            row = {
                "group": "real",
                "item": wav.stem,
                "path": path_name,
                "text": text,
                **transcribe_row(out, text),
                "lsd_db": log_spectral_distance(
                    recording.item(0), recording.sample_rate, waveform.item(0), waveform.sample_rate
                ),
            }
            if path_name == "adapted":
                row["mel_distance"] = distance
                row["adapter_seconds"] = outputs["_adapter_seconds"]
                row["audio_seconds"] = waveform.durations[0]
            rows.append(row)
            print(f"real {index} {path_name}: wer {row['wer']:.2f} lsd {row['lsd_db']:.2f} dB", flush=True)
        print(f"real {index} adapted mel vs HiFi-GAN's mel of the recording: {distance}", flush=True)
    return rows


def tacotron_items(paths: Paths, args: argparse.Namespace) -> list[dict[str, Any]]:
    sentences = held_out_sentences(load_recipe(), args.sentences)
    # the default bundle (its synthesizer writes RTVC's mel), at --threads
    pipeline = Pipeline(device="cpu", threads=torch.get_num_threads())
    if pipeline.synthesizer.output_spec != RTVC_SYNTHESIZER_MEL:
        raise SystemExit(f"error: the default synthesizer writes {pipeline.synthesizer.output_spec}, not RTVC's mel")
    rows = []
    for name, clips in real_voice_clips(args.shared)[: args.voices]:
        if not name.startswith("librispeech"):
            continue
        embedding = pipeline.embed([clips[0]])
        for index, text in enumerate(sentences):
            mel = pipeline.synthesize([text], embedding, seed=args.seed + index)[0]
            outputs = paths.vocode(mel, seed=args.seed)
            other_seed = paths.rtvc.vocode(mel, seed=args.seed + 1)
            floor = log_spectral_distance(outputs["rtvc"].item(0), 16000, other_seed.item(0), other_seed.sample_rate)
            for path_name in ("rtvc", "adapted"):
                waveform = outputs[path_name]
                out = args.out / "tacotron" / f"{name}_{index:02d}_{path_name}.wav"
                out.parent.mkdir(parents=True, exist_ok=True)
                save_audio(waveform, out)
                row = {"group": "tacotron", "item": f"{name}/{index}", "path": path_name, "text": text}
                row.update(transcribe_row(out, text))
                if path_name == "adapted":
                    row["lsd_db"] = log_spectral_distance(
                        outputs["rtvc"].item(0), 16000, waveform.item(0), waveform.sample_rate
                    )
                    row["lsd_floor_db"] = floor
                    row["adapter_seconds"] = outputs["_adapter_seconds"]
                    row["audio_seconds"] = waveform.durations[0]
                rows.append(row)
                print(f"tacotron {name} {index} {path_name}: wer {row['wer']:.2f}", flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| items | path | n | words heard right | WER mean | LSD (dB) | mel distance, all / loud (ln) |",
        "|---|---|---|---|---|---|---|",
    ]
    for group in ("real", "tacotron"):
        for path_name in ("rtvc", "adapted", "hifigan-mel"):
            chosen = [row for row in rows if row["group"] == group and row["path"] == path_name]
            if not chosen:
                continue
            words = heard([(row["text"], row["transcript"]) for row in chosen])
            lsd = [row["lsd_db"] for row in chosen if "lsd_db" in row]
            floors = [row["lsd_floor_db"] for row in chosen if "lsd_floor_db" in row]
            lsd_cell = f"{statistics.mean(lsd):.2f}" if lsd else "-"
            if floors:
                lsd_cell += f" vs rtvc (Griffin-Lim's seed floor {statistics.mean(floors):.2f})"
            distances = [row["mel_distance"] for row in chosen if "mel_distance" in row]
            mel_cell = "-"
            if distances:
                mean_all, mean_loud = (statistics.mean(d[key] for d in distances) for key in ("all", "loud"))
                mel_cell = f"{mean_all:.3f} / {mean_loud:.3f}"
            lines.append(
                f"| {group} | {path_name} | {len(chosen)} | {words['words_right']:.1%} | "
                f"{statistics.mean(row['wer'] for row in chosen):.3f} | {lsd_cell} | {mel_cell} |"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return {
        "cpu": model,
        "flags": [flag for flag in wanted if f" {flag}" in flags],
        "load_average": os.getloadavg(),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=6, help="LJSpeech-mini recordings (real items)")
    parser.add_argument("--sentences", type=int, default=2, help="held-out sentences per voice (Tacotron items)")
    parser.add_argument("--voices", type=int, default=3, help="LibriSpeech test-other voices (Tacotron items)")
    parser.add_argument("--iterations", type=int, default=60, help="Griffin-Lim iterations (the plugin's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("VCFRAME_SHARED", ROOT.parent / "shared")))
    parser.add_argument("--out", type=Path, help="output folder: results.json and the wavs")
    parser.add_argument("--table-from", type=Path, help="print the table of an earlier results.json and stop")
    args = parser.parse_args()
    if args.table_from:
        print(table(json.loads(args.table_from.read_text())["rows"]))
        return
    if args.out is None:
        parser.error("--out is required")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    before = machine()
    paths = Paths(args.iterations)
    rows = real_items(paths, args) + tacotron_items(paths, args)
    report = {
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "machine_before": before,
        "machine_after": machine(),
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "table": table(rows),
    }
    adapter = [row for row in rows if "adapter_seconds" in row]
    report["adapter_rtf"] = sum(row["adapter_seconds"] for row in adapter) / sum(
        row["audio_seconds"] for row in adapter
    )
    (args.out / "results.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print("\n" + report["table"])
    print(
        f"\nadapter: {report['adapter_rtf']:.4f} s per second of audio; commit {report['commit']}, "
        f"{before['cpu']} {before['flags']}, load {before['load_average']} -> "
        f"{report['machine_after']['load_average']}, "
        f"{args.threads} thread(s), {report['seconds']:.0f} s; wrote {args.out / 'results.json'}"
    )


if __name__ == "__main__":
    main()
