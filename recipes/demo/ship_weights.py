#!/usr/bin/env python3
"""Ship demo weights: export a training run, store it as float16 safetensors inside its plugin package, and
write its entry (sha256, steps, training data, licence) into registry/checkpoints.toml as the default.

    python recipes/demo/ship_weights.py synthesizer --run-dir /work/runs/taco
    python recipes/demo/ship_weights.py vocoder --run-dir /work/runs/voc [--no-default]
    python recipes/demo/ship_weights.py hifigan --run-dir /work/runs/hifigan --mels "ground-truth mels, then GTA mels"
    ... --status usable --words-heard-right 66.2 --similarity 0.61 --commit abc1234 --measured "quality.py ..."

The entry has a quality status (demo unless --status usable: only for weights that meet their component's bar
in docs/models.md) and the benchmark figures behind it, which `vcframe run`, `plugins show`, `models list` and
the web page show. The entry replaces any earlier one with the same id. Loading verifies the sha256;
`preset: auto` reads the sizes from the file's metadata.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "registry" / "checkpoints.toml"
TRAINING_DATA = (
    "vcframe demo corpus (recipes/demo/make_corpus.py): 15 synthetic speakers made with flite, festival and "
    "espeak-ng (+ sox pitch shifts) reading 4,187 public-domain LJSpeech sentences, 5.41 h"
)
#: What both vocoder demos train on besides the corpus (recipes/demo/train.sh hifigan-data: the vocoders' shared list).
REAL_SPEECH = (
    "real recordings of ../shared/data: LibriSpeech train-clean-100 (251 speakers, one utterance each, CC BY 4.0) "
    "and 20 LJSpeech-mini clips (public domain), without the LibriSpeech test-other speakers and the quality "
    "benchmark's 12 yardstick clips"
)
TARGETS = {
    "synthesizer": {
        "id": "tacotron-demo",
        "component": "synthesizer/tacotron",
        "package": "synthesizers/tacotron",
        "module": "vcframe_tacotron",
        "file": "tacotron-demo.safetensors",
        "export": [sys.executable, "-m", "vcframe_tacotron.train", "export"],
        "training_data": TRAINING_DATA + "; speaker embeddings from GE2E (resemblyzer weights)",
    },
    "vocoder": {
        "id": "wavernn-demo",
        "component": "vocoder/wavernn",
        "package": "vocoders/wavernn",
        "module": "vcframe_wavernn",
        "file": "wavernn-demo.safetensors",
        "export": [sys.executable, "-m", "vcframe_wavernn.train", "export"],
        # the real-speech run of issue 23 (train.sh vocoder: hifigan-data's list) and the shipped weights it began from
        "training_data": REAL_SPEECH + "; " + TRAINING_DATA,  # + "; " + --mels
    },
    "hifigan": {
        "id": "hifigan-demo",
        "component": "vocoder/hifigan",
        "package": "vocoders/hifigan",
        "module": "vcframe_hifigan",
        "file": "hifigan-demo.safetensors",
        "export": [sys.executable, "-m", "vcframe_hifigan.train", "export"],
        "training_data": REAL_SPEECH + "; " + TRAINING_DATA,  # + "; " + --mels
        "preset": "auto",  # the sizes are in the file's metadata
    },
}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def entry_text(fields: dict[str, object]) -> str:
    lines = ["[[checkpoint]]"] + [f"{key} = {toml_value(value)}" for key, value in fields.items() if value is not None]
    return "\n".join(lines) + "\n"


def replace_entry(text: str, entry_id: str, new_entry: str) -> str:
    blocks = re.split(r"(?m)^(?=\[\[checkpoint\]\])", text)
    kept = [block for block in blocks if f'id = "{entry_id}"' not in block]
    return "".join(kept).rstrip("\n") + "\n\n" + new_entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(TARGETS))
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--notes", default="", help="anything a user should know (quality measured, steps)")
    parser.add_argument("--no-default", action="store_true", help="register without making it the default")
    parser.add_argument(
        "--inference-dropout",
        type=float,
        help="synthesizer: pre-net dropout at synthesis that the weights recommend (recorded in their metadata)",
    )
    parser.add_argument(
        "--mels",
        default="ground-truth mels",
        help="vocoders: the mels it trained on, for the registry's training_data (default: ground-truth mels)",
    )
    parser.add_argument(
        "--status",
        choices=["demo", "usable"],
        default="demo",
        help="quality status: 'usable' only when the weights meet their component's bar (docs/models.md)",
    )
    parser.add_argument(
        "--training-data",
        help="replaces the component's default training-data description (e.g. weights trained further or "
        "interpolated between runs: say every corpus they learned from)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        help="training steps to record when the export's step count does not say them (an interpolation of the "
        "shipped weights and a run continued from them: the steps of the longer lineage)",
    )
    parser.add_argument(
        "--mel-correction",
        type=float,
        help="vocoders: the mel correction strength (vcframe.correction) the figures were measured with; runs use it "
        "by default (the entry's mel_correction)",
    )
    parser.add_argument("--words-heard-right", type=float, help="benchmarks/quality.py: percent, real voices")
    parser.add_argument("--similarity", type=float, help="benchmarks/quality.py: GE2E similarity, real voices")
    parser.add_argument("--commit", help="commit the figures were measured at")
    parser.add_argument("--measured", default="not measured yet", help="how the figures were measured (command, items)")
    args = parser.parse_args()
    if args.mel_correction is not None and args.kind == "synthesizer":
        parser.error("--mel-correction is for vocoder weights")
    target = TARGETS[args.kind]
    quality = {
        "words_heard_right": args.words_heard_right,
        "similarity": args.similarity,
        "commit": args.commit,
        "measured": args.measured,
    }
    training_data = args.training_data or (
        str(target["training_data"]) + (f"; {args.mels}" if args.kind != "synthesizer" else "")
    )

    from vcframe.checkpoints import load_state, save_safetensors, sha256_of, to_half_precision

    package = ROOT / "plugins" / str(target["package"])
    destination = package / str(target["module"]) / "weights" / str(target["file"])
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        exported = Path(scratch) / "full.safetensors"
        command = [*target["export"], "--run-dir", str(args.run_dir), "--out", str(exported)]  # type: ignore[misc]
        if args.kind != "vocoder":  # the WaveRNN export records its run's data description itself
            command += ["--training-data", training_data]
        if args.kind == "synthesizer" and args.inference_dropout is not None:
            command += ["--inference-dropout", str(args.inference_dropout)]
        subprocess.run(command, check=True)
        if args.steps is not None:  # the file's own metadata says the same as the registry entry
            state, file_metadata = load_state(exported)
            save_safetensors(state, exported, {**file_metadata, "steps": args.steps})
        to_half_precision(exported, destination)
    _, metadata = load_state(destination)
    steps = int(metadata.get("steps", 0))
    fields: dict[str, object] = {
        "id": target["id"],
        "component": target["component"],
        "source": f"package:{target['module']}/weights/{target['file']}",
        "sha256": sha256_of(destination),
        "format": "safetensors",
        "license": "MIT",
        "training_data": training_data,
        "steps": steps,
        "default": not args.no_default,
        "preset": str(target.get("preset") or metadata.get("config", {}).get("preset", "small")),
        "status": args.status,
        "quality": {key: value for key, value in quality.items() if value is not None},
        "notes": args.notes or f"demo weights after {steps} steps, stored as float16",
        "mel_correction": args.mel_correction,
    }
    REGISTRY.write_text(replace_entry(REGISTRY.read_text(), str(target["id"]), entry_text(fields)))
    size = destination.stat().st_size / 1e6
    print(f"shipped {destination.relative_to(ROOT)} ({size:.1f} MB, {steps} steps) as registry:{target['id']}")


if __name__ == "__main__":
    main()
