#!/usr/bin/env python3
"""Plot a demo run: loss curves from log.jsonl, and for Tacotron a free-running synthesis with its alignment.

    python recipes/demo/plot_training.py --run-dir /work/runs/taco --out docs/images/tacotron-demo
    python recipes/demo/plot_training.py --kind hifigan --run-dir /work/runs/hifigan --out docs/images/hifigan-demo
    python recipes/demo/plot_training.py --kind wavernn --run-dir /work/runs/voc --out docs/images/wavernn-demo \
        --yardstick 0:5.0 --yardstick 2000:29.5

Tacotron: writes ``<out>-losses.png`` and ``<out>-alignment.png`` (the run's latest checkpoint, exported to a
temporary safetensors file, speaking a sentence in a sample voice with the default options, seed 0), and prints
the alignment's monotonicity (correlation of the most-attended character with the decoder step).
HiFi-GAN: writes ``<out>-losses.png``: the generator's mel L1 (x45) and adversarial/feature-matching terms, the
discriminators' loss, and the held-out mel L1 of valid.jsonl (one line per --valid-data folder) on a second axis.
WaveRNN: writes ``<out>-losses.png``: the cross-entropy of log.csv (mean of 200 steps) against steps and samples
seen (``--samples-per-step``: batch x segment), with the vocoder yardstick's words heard right (``--yardstick
STEP:PERCENT``, measured with benchmarks/quality.py on exports of the run) on a second axis.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SENTENCE = "The morning train was late again, so we walked along the river."


#: Loss keys plotted per run kind (those a run's last log record has), and the title's model name.
LOSS_KEYS = {
    "tacotron": ("loss", "m1_loss", "m2_loss", "stop_loss", "guided_loss"),
    "hifigan": ("mel", "gen", "fm_f", "fm_s", "gen_f", "gen_s", "disc"),
}
TITLES = {"tacotron": "Tacotron demo run", "hifigan": "HiFi-GAN demo run", "wavernn": "WaveRNN demo run"}


def plot_valid(valid: Path, axis: object) -> None:
    """Held-out mel L1 (valid.jsonl: one record per --valid-data folder and measurement) on a twin axis."""
    by_data: dict[str, dict[int, float]] = {}
    for line in valid.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_data.setdefault(Path(record["data"]).name, {})[record["step"]] = record["mel_l1"]
    twin = axis.twinx()  # type: ignore[attr-defined]
    for name, values in by_data.items():
        steps = sorted(values)
        twin.plot(steps, [values[step] for step in steps], marker="o", linestyle="--", label=f"held-out mel L1: {name}")
    twin.set_ylabel("held-out mel L1 (without x45)")
    twin.legend(loc="upper center", fontsize="small")


def plot_losses(log: Path, out: Path, kind: str = "tacotron") -> dict[str, float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_step: dict[int, dict[str, float]] = {}
    segment_ends: list[float] = []  # training seconds of each process that wrote to the log
    for line in log.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_step[record["step"]] = record  # a resumed run logs again the steps after its checkpoint: keep those
            # "seconds" counts from the checkpoint's train_seconds; runs before that field existed start at 0
            if not segment_ends or (record["seconds"] < segment_ends[-1] and record["seconds"] < 120):
                segment_ends.append(record["seconds"])
            segment_ends[-1] = max(segment_ends[-1], record["seconds"])
    records = [by_step[step] for step in sorted(by_step)]
    steps = np.array([record["step"] for record in records])
    figure, axis = plt.subplots(figsize=(8, 4))
    window = 10  # log points per moving average (one point every --log-every steps)
    for key in LOSS_KEYS[kind]:
        if key in records[-1]:
            values = np.array([record.get(key, np.nan) for record in records], dtype=float)
            line_2d = axis.plot(steps, values, alpha=0.25)[0]
            if len(values) >= window:
                smooth = np.convolve(values, np.ones(window) / window, mode="valid")
                axis.plot(steps[window - 1 :], smooth, color=line_2d.get_color(), label=f"{key} (mean of {window})")
            else:
                line_2d.set_label(key)
    axis.set_xlabel("step")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper right", fontsize="small")
    axis.set_title(f"{TITLES[kind]}: {steps[-1]} steps, {sum(segment_ends) / 3600:.1f} h of training")
    if kind == "hifigan" and (log.parent / "valid.jsonl").exists():
        plot_valid(log.parent / "valid.jsonl", axis)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    last = {key: value for key, value in records[-1].items() if isinstance(value, float | int)}
    return {**last, "training_hours": round(sum(segment_ends) / 3600, 2)}


def plot_wavernn(log: Path, out: Path, samples_per_step: int, yardstick: list[tuple[int, float]]) -> dict[str, float]:
    """WaveRNN's log.csv (step, loss, seconds): the loss's mean over 200 steps, samples seen on a top axis, and
    the yardstick's words heard right at the measured steps on a second axis."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_step: dict[int, float] = {}
    with log.open() as handle:
        for row in csv.DictReader(handle):
            by_step[int(row["step"])] = float(row["loss"])  # a resumed run logs again the steps after its checkpoint
    steps = np.array(sorted(by_step))
    losses = np.array([by_step[step] for step in steps])
    window = min(200, len(losses))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.plot(steps, losses, alpha=0.15, color="tab:blue")
    axis.plot(steps[window - 1 :], smooth, color="tab:blue", label=f"cross-entropy (mean of {window} steps)")
    axis.set_xlabel("step")
    axis.set_ylabel("cross-entropy (nats, 512 classes)")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper right", fontsize="small")
    top = axis.secondary_xaxis(
        "top", functions=(lambda step: step * samples_per_step / 1e6, lambda seen: seen * 1e6 / samples_per_step)
    )
    top.set_xlabel("samples seen (millions)")
    if yardstick:
        twin = axis.twinx()
        points = sorted(yardstick)
        twin.plot(
            [step for step, _ in points],
            [percent for _, percent in points],
            marker="o",
            color="tab:red",
            label="vocoder yardstick: words heard right (%)",
        )
        twin.set_ylabel("words heard right (%)")
        twin.set_ylim(0, 100)
        twin.legend(loc="lower left", fontsize="small")
    axis.set_title(f"{TITLES['wavernn']}: {steps[-1]} steps")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return {"step": int(steps[-1]), "loss_mean_last": round(float(smooth[-1]), 4)}


def parse_yardstick(text: str) -> tuple[int, float]:
    """``STEP:PERCENT`` -> (step, percent)."""
    step, _, percent = text.partition(":")
    try:
        return int(step), float(percent)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--yardstick takes STEP:PERCENT (e.g. 2000:29.5), got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=sorted(TITLES), default="tacotron", help="what the run trains")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="prefix of the two PNG files")
    parser.add_argument("--voice", default="duncan")
    parser.add_argument("--text", default=SENTENCE)
    parser.add_argument("--samples-per-step", type=int, default=32_000, help="wavernn: batch x segment samples")
    parser.add_argument("--yardstick", type=parse_yardstick, action="append", default=[], help="wavernn: STEP:PERCENT")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.kind == "wavernn":
        last = plot_wavernn(
            args.run_dir / "log.csv",
            args.out.with_name(args.out.name + "-losses.png"),
            args.samples_per_step,
            args.yardstick,
        )
        print("last:", json.dumps(last))
        return
    last = plot_losses(args.run_dir / "log.jsonl", args.out.with_name(args.out.name + "-losses.png"), args.kind)
    print("last log record:", json.dumps(last))
    if args.kind != "tacotron":
        return

    from vcframe.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as scratch:
        exported = Path(scratch) / "tacotron.safetensors"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "vcframe_tacotron.train",
                "export",
                "--run-dir",
                str(args.run_dir),
                "--out",
                str(exported),
            ],
            check=True,
        )
        pipeline = Pipeline(
            synthesizer="tacotron",
            vocoder="griffinlim",
            device="cpu",
            options={"synthesizer": {"checkpoint": str(exported)}},
        )
        pipeline.clone(args.text, voice=args.voice, seed=0)
        mel = pipeline.last_mels[0]
        from vcframe._plots import save_synthesis_plot

        save_synthesis_plot(mel, args.out.with_name(args.out.name + "-alignment.png"), title=args.text)
        alignment = mel.alignment[0].numpy() if mel.alignment is not None else None
        if alignment is not None:
            peaks = alignment.argmax(axis=1)
            correlation = float(np.corrcoef(np.arange(len(peaks)), peaks)[0, 1])
            frames = int(mel.lengths[0])
            print(
                f"free-running: {frames} frames, {len(peaks)} decoder steps, argmax correlation {correlation:.3f}, "
                f"last attended character {peaks[-1]} of {alignment.shape[1]}"
            )


if __name__ == "__main__":
    main()
