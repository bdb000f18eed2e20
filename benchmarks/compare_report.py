"""The README's comparison report: Griffin-Lim vs WaveRNN on the default synthesizer, with a screenshot.

Run by hand from the repository root:

    .venv/bin/python benchmarks/compare_report.py vocoders            # the real report (needs trained weights)
    .venv/bin/python benchmarks/compare_report.py copy-synthesis      # works today: vocoders on ground-truth mels
    .venv/bin/python benchmarks/compare_report.py screenshot REPORT.html OUT.png

Both comparisons use the five shipped sample voices (``vcframe voices list``) and six Harvard sentences.
Because the sample voices are synthetic (flite, festival, espeak-ng with sox pitch shifts, see
registry/voices/voices.json), this script regenerates each voice saying each sentence with the same engine
and settings (recipes/demo/make_corpus.py): those recordings are the ground truth for the mel-cepstral
distortion, and the mels of the copy-synthesis comparison.

* ``vocoders``: ``vcframe compare`` on a grid of ge2e + tacotron (default weights) + {griffinlim, wavernn}
  (default weights). Until both default checkpoints ship, it stops and says so.
* ``copy-synthesis``: the same voices and sentences, but the "synthesizer" is an oracle that returns the mel
  of the ground-truth recording of the voice nearest (GE2E cosine) to the requested embedding: it isolates the
  vocoder. Systems: Griffin-Lim (60 iterations), Griffin-Lim (16 iterations), WaveRNN when its default weights
  exist, and a triple refused by the compatibility check (a vocoder reading 40-band mels), to show refusal rows.

Each run writes OUT/ (results, plots, report.html) and a headless-browser screenshot of report.html
(``chromium --headless --screenshot``; Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

REPO = Path(__file__).resolve().parents[1]
SENTENCES = {
    "h1": "The birch canoe slid on the smooth planks.",
    "h2": "Glue the sheet to the dark blue background.",
    "h3": "It's easy to tell the depth of a well.",
    "h4": "These days a chicken leg is a rare dish.",
    "h5": "Rice is often served in round bowls.",
    "h6": "The juice of lemons makes fine punch.",
}
VOICES = ("angus", "clara", "duncan", "fiona", "martha")


def _recipe(name: str) -> ModuleType:
    """recipes/demo/<name>.py imported by path (recipes/ is not a package)."""
    module_name = f"vcframe_recipes_demo_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, REPO / "recipes" / "demo" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def make_ground_truth(folder: Path, voices: tuple[str, ...] = VOICES) -> dict[str, dict[str, str]]:
    """Each sample voice saying each sentence, with the voice's own engine settings: {text_id: {voice: path}}."""
    make_voices = _recipe("make_voices")
    corpus = make_voices.corpus
    speakers = {voice.name: corpus.SPEAKERS_BY_ID[voice.speaker_id] for voice in make_voices.VOICES}
    missing = corpus.missing_tools(speakers[name] for name in voices)
    if missing:
        raise SystemExit(f"missing programs for the ground truth: {', '.join(missing)}")
    folder.mkdir(parents=True, exist_ok=True)
    truths: dict[str, dict[str, str]] = {}
    for text_id, sentence in SENTENCES.items():
        for voice in voices:
            path = folder / f"{voice}__{text_id}.wav"
            if not path.is_file():
                samples = corpus.trim_and_normalise(corpus.synthesize(speakers[voice], sentence))
                corpus.atomic_write_bytes(path, corpus.wav_bytes(samples))
            truths.setdefault(text_id, {})[voice] = str(path)
    return truths


def grid(systems: list[dict[str, Any]], truths: dict[str, dict[str, str]], seed: int = 1) -> dict[str, Any]:
    return {
        "seed": seed,
        "judge": "ge2e",
        "systems": systems,
        "voices": list(VOICES),
        "texts": [
            {"id": text_id, "text": sentence, "ground_truth": truths.get(text_id, {})}
            for text_id, sentence in SENTENCES.items()
        ],
    }


def has_default_checkpoint(component: str) -> bool:
    from vcframe.checkpoints import registry_entries

    return any(entry.component == component and entry.default for entry in registry_entries())


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no headless browser found: apt-get install chromium (or set PATH)")


def screenshot(report: Path, image: Path, width: int = 1280, height: int = 2400) -> Path:
    """A PNG of the report's first ``height`` pixels, rendered by headless Chromium (no network needed)."""
    image.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium(),
            "--headless",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--virtual-time-budget=5000",
            f"--screenshot={image.resolve()}",
            report.resolve().as_uri(),
        ]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        subprocess.run(command, check=True, capture_output=True, timeout=180)
    if not image.is_file() or image.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"the browser wrote no PNG to {image}")
    return image


# -- copy synthesis: an oracle "synthesizer" that returns the mel of the ground-truth recording ------------


class CopySynthesisConfig(BaseModel):
    """Options of the copy-synthesis oracle."""

    model_config = ConfigDict(extra="forbid")

    index: str = Field(description="JSON index: references {voice: clip}, recordings {text: {voice: file}}.")


def copy_synthesis_spec() -> Any:
    from vcframe.specs import API_VERSION, GE2E_RTVC_EMBEDDING, RTVC_SYNTHESIZER_MEL, ComponentSpec, TextSpec

    return ComponentSpec(
        name="copy-synthesis",
        kind="synthesizer",
        api_version=API_VERSION,
        summary="Oracle: the RTVC mel of the recording of this text by the voice nearest to the embedding",
        factory="compare_report:CopySynthesizer",
        config_model=CopySynthesisConfig,
        input=GE2E_RTVC_EMBEDDING,
        output=RTVC_SYNTHESIZER_MEL,
        text=TextSpec(frontend="lookup", max_chars=500),
        license="MIT",
    )


class CopySynthesizer:
    """Looks the text up among the ground-truth recordings and returns the mel of the nearest voice's one."""

    def __init__(self, config: Any, device: Any = "cpu") -> None:
        import numpy as np

        from vcframe.metrics.speaker import SpeakerJudge

        self.config = config
        self.device = device
        self.index = json.loads(Path(config.index).read_text())
        judge = SpeakerJudge("ge2e", device="cpu")
        self.voices = list(self.index["references"])
        self.centroids = np.stack([judge.embed(self.index["references"][voice]) for voice in self.voices])

    def synthesize(self, texts: list[str], embedding: Any, *, seed: int | None = None) -> Any:
        import numpy as np

        from vcframe.audio import load_audio, mel_spectrogram
        from vcframe.errors import InputError
        from vcframe.specs import RTVC_SYNTHESIZER_MEL
        from vcframe.types import Mel

        mels = []
        for row, text in enumerate(texts):
            vector = embedding.vector[min(row, embedding.batch_size - 1)].detach().cpu().numpy()
            voice = self.voices[int(np.argmax(self.centroids @ vector))]
            recordings = self.index["recordings"].get(" ".join(text.split()))
            if recordings is None or voice not in recordings:
                raise InputError(f"no recording of {text!r} by {voice}", hint="copy synthesis only knows the grid's")
            samples = load_audio(recordings[voice], sample_rate=RTVC_SYNTHESIZER_MEL.sample_rate).item(0)
            mels.append(mel_spectrogram(samples, RTVC_SYNTHESIZER_MEL).astype(np.float32))
        return Mel.from_numpy(mels, RTVC_SYNTHESIZER_MEL)

    def to(self, device: Any) -> CopySynthesizer:
        return self


def copy_synthesis(args: argparse.Namespace) -> Path:
    from vcframe.compare import parse_grid, plan_comparison, run_comparison, write_report
    from vcframe.discovery import Registry, use_registry
    from vcframe.voices import VoiceStore

    truths = make_ground_truth(args.out / "truth")
    store = VoiceStore()
    index = {
        "references": {voice: str(store.get(voice).clip) for voice in VOICES},
        "recordings": {SENTENCES[text_id]: by_voice for text_id, by_voice in truths.items()},
    }
    index_path = args.out / "truth" / "index.json"
    index_path.write_text(json.dumps(index, indent=1))
    registry = Registry.from_entry_points()
    registry.register(copy_synthesis_spec(), distribution="benchmarks")
    use_registry(registry)
    oracle = {
        "encoder": "ge2e",
        "synthesizer": "copy-synthesis",
        "options": {"synthesizer": {"index": str(index_path)}},
    }
    mel_40 = {"mel": {**_rtvc_mel(), "n_mels": 40}}
    systems: list[dict[str, Any]] = [
        {"name": "griffinlim-60", **oracle, "vocoder": "griffinlim"},
        {"name": "griffinlim-16", **_with(oracle, vocoder={"n_iter": 16}), "vocoder": "griffinlim"},
    ]
    if has_default_checkpoint("vocoder/wavernn"):
        systems.append({"name": "wavernn", **oracle, "vocoder": "wavernn"})
    systems.append({"name": "griffinlim-40-bands", **_with(oracle, vocoder=mel_40), "vocoder": "griffinlim"})
    plan = plan_comparison(parse_grid(grid(systems, truths)), registry=registry)
    report_dir = args.out / "copy-synthesis"
    outcome = run_comparison(plan, report_dir, jobs=args.jobs, progress=_print_progress)
    files = write_report(plan, outcome, report_dir, title="vcframe compare: vocoders on ground-truth mels")
    print(f"wrote {files.report_html}")
    return files.report_html


def _with(system: dict[str, Any], **options: dict[str, Any]) -> dict[str, Any]:
    """``system`` with more per-component options."""
    return {**system, "options": {**system.get("options", {}), **options}}


def _rtvc_mel() -> dict[str, Any]:
    from vcframe.specs import RTVC_SYNTHESIZER_MEL

    return RTVC_SYNTHESIZER_MEL.model_dump()


def _print_progress(done: int, total: int, record: dict[str, Any]) -> None:
    print(f"[{done}/{total}] {record['item']} {record['status']}", flush=True)


def vocoders(args: argparse.Namespace) -> Path:
    import tomli_w

    missing = [c for c in ("synthesizer/tacotron", "vocoder/wavernn") if not has_default_checkpoint(c)]
    if missing and not args.force:
        raise SystemExit(
            f"no default weights for {', '.join(missing)} in registry/checkpoints.toml yet: the real report needs "
            "them; to use other weights: --force -- -o synthesizer.tacotron.checkpoint=FILE "
            "-o vocoder.wavernn.checkpoint=FILE (arguments after -- go to vcframe compare)"
        )
    truths = make_ground_truth(args.out / "truth")
    systems = [
        {"name": "griffinlim", "encoder": "ge2e", "synthesizer": "tacotron", "vocoder": "griffinlim"},
        {"name": "wavernn", "encoder": "ge2e", "synthesizer": "tacotron", "vocoder": "wavernn"},
    ]
    grid_path = args.out / "vocoders.toml"
    grid_path.write_text(tomli_w.dumps(grid(systems, truths)))
    report_dir = args.out / "vocoders"
    command = [
        str(Path(sys.executable).with_name("vcframe")),  # the console script of this environment
        "compare",
        str(grid_path),
        "--out",
        str(report_dir),
        "--title",
        "vcframe compare: Griffin-Lim vs WaveRNN on the default synthesizer",
        *(["--jobs", str(args.jobs)] if args.jobs else []),
        *args.vcframe_args,
    ]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)
    return report_dir / "report.html"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("vocoders", "copy-synthesis"):
        sub = commands.add_parser(name)
        sub.add_argument(
            "--out",
            type=Path,
            default=REPO / "out" / "compare",
            help="output folder (default: out/compare, git-ignored)",
        )
        sub.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
        sub.add_argument(
            "--screenshot", type=Path, default=REPO / "docs" / "compare_report.png", help="PNG of report.html"
        )
        sub.add_argument("--no-screenshot", action="store_true", help="skip the browser screenshot")
        if name == "vocoders":
            sub.add_argument("--force", action="store_true", help="run even without default weights")
            sub.add_argument("vcframe_args", nargs="*", help="extra arguments for vcframe compare (after --)")
    shot = commands.add_parser("screenshot")
    shot.add_argument("report", type=Path)
    shot.add_argument("image", type=Path)
    shot.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    if args.command == "screenshot":
        print(f"wrote {screenshot(args.report, args.image, height=args.height)}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    report = vocoders(args) if args.command == "vocoders" else copy_synthesis(args)
    if not args.no_screenshot:
        print(f"wrote {screenshot(report, args.screenshot)}")


if __name__ == "__main__":
    sys.modules.setdefault("compare_report", sys.modules["__main__"])  # the spec's factory names this module
    main()
