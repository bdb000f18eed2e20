"""train.sh's corpus and GTA-list steps (many-corpus, real-seg, real-var, gta-seg, hifigan-gta-real, free-mels,
speaker-embeddings) and
HiFi-GAN's unpaired flags, with their
programs replaced by stand-ins that log their arguments and make the folders the real ones would: the order of the
steps, the links of the combined corpus and its held-out folders, the re-weighted views, and a second run that
resumes instead of failing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from recipes.demo.tests._recipes import DEMO

STAND_IN = """#!{python}
import json, os, sys
from pathlib import Path
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(" ".join(Path(arg).name if arg.endswith(".py") else arg for arg in sys.argv[1:]) + "\\n")
args = sys.argv[1:]
out = Path(args[args.index("--out") + 1]) if "--out" in args else None  # fit has none
if out is None:
    pass
elif args[0].endswith("make_corpus.py"):
    voices = {{"many": ["espeak-a", "flite-b"], "many_v3": ["espeak-c"], "many_v4": ["festival-d"]}}[out.name]
    for voice in voices:
        (out / voice).mkdir(parents=True, exist_ok=True)
        (out.parent / (out.name + "_seen") / voice).mkdir(parents=True, exist_ok=True)
    (out / "speakers.json").write_text(json.dumps({{voice: {{}} for voice in voices}}))
    (out.parent / (out.name + "_eval") / "held-out").mkdir(parents=True, exist_ok=True)
elif "manifest" in args:
    sources = [args[i + 1] for i, arg in enumerate(args) if arg == "--source"]
    out.write_text("".join(f"row of {{source}}\\n" for source in sources))
else:
    out.mkdir(parents=True, exist_ok=True)
"""


def _stand_in_runner(tmp_path: Path, step: str, **variables: str) -> Callable[[], list[str]]:
    """A function that runs ``train.sh STEP`` with every program a logging stand-in (corpus root
    ``tmp_path/corpus``; ``variables`` added to the environment) and returns the calls it made, one line each."""
    stand_in = tmp_path / "stand_in"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(0o755)
    log = tmp_path / "log.txt"
    env = dict(
        os.environ,
        PYTHON=str(stand_in),
        VCFRAME=str(stand_in),
        CORPUS_ROOT=str(tmp_path / "corpus"),
        STAND_IN_LOG=str(log),
        NICE="0",
        **variables,
    )

    def run() -> list[str]:
        log.write_text("")
        result = subprocess.run(["sh", str(DEMO / "train.sh"), step], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return log.read_text().splitlines()

    return run


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("renice") is None, reason="needs a POSIX sh and renice")
def test_many_corpus_makes_links_prepares_and_reweights_then_resumes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    run = _stand_in_runner(tmp_path, "many-corpus")
    calls = run()
    assert [call.split(" --out ")[0] for call in calls] == [
        "make_corpus.py --sentences-per-speaker 120 --jobs 1",
        "make_corpus.py --sentences-per-speaker 120 --jobs 1",
        "make_corpus.py --sentences-per-speaker 120 --jobs 1",
        f"train synthesizer preprocess {corpus}/many_all4",
        f"train synthesizer preprocess {corpus}/many_all4_eval",
        f"train synthesizer preprocess {corpus}/many_all4_seen",
        f"reweight_prep.py {corpus}/many_all4_prep",
    ]
    assert calls[0].endswith(f"{corpus}/many --num-speakers 84")
    assert calls[1].endswith(f"{corpus}/many_v3 --skip-speakers 84 --num-speakers 39")
    assert calls[2].endswith(f"{corpus}/many_v4 --skip-speakers 123")
    assert "--workers 1" in calls[3] and "--encoder ge2e" in calls[3]
    assert calls[6].count("--speakers") == 3 and "--repeat flite=4 --repeat festival=4" in calls[6]
    combined = corpus / "many_all4"
    assert sorted(path.name for path in combined.iterdir()) == ["espeak-a", "espeak-c", "festival-d", "flite-b"]
    assert all(path.is_symlink() and path.is_dir() for path in combined.iterdir())
    assert (corpus / "many_all4_eval").resolve() == (corpus / "many_eval").resolve()
    seen = sorted(path.name for path in (corpus / "many_all4_seen").iterdir())
    assert seen == ["espeak-a", "espeak-c", "festival-d", "flite-b"]
    assert (corpus / "many4_bal_prep").is_dir()

    again = run()  # everything made: the corpus and preprocess steps resume (their own checks), the view is kept
    assert len(again) == 6 and not any("reweight_prep.py" in call for call in again)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_real_seg_segments_prepares_and_adds_the_real_phrases_then_resumes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    run = _stand_in_runner(tmp_path, "real-seg")
    calls = run()
    assert [call.split(" --out ")[0] for call in calls] == [
        "segment_real.py ../shared/data",
        f"train synthesizer preprocess {corpus}/real_seg",
        f"reweight_prep.py {corpus}/many_all4_prep",
    ]
    assert calls[2].endswith(f"--repeat flite=4 --repeat festival=4 --add {corpus}/real_seg_prep=24")
    assert f"--out {corpus}/many4r_prep " in calls[2] and calls[2].count("--speakers") == 3
    again = run()  # segmenting and preprocess resume by their own checks; the view is kept
    assert len(again) == 2 and not any("reweight_prep.py" in call for call in again)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_real_var_makes_new_voices_prepares_and_both_views_then_resumes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    demo = corpus / "demo15"
    run = _stand_in_runner(tmp_path, "real-var", CORPUS=str(demo))
    calls = run()
    assert [call.split(" --out ")[0] for call in calls] == [
        f"vary_real.py {corpus}/real_seg",
        f"train synthesizer preprocess {corpus}/real_var",
        f"reweight_prep.py {demo}_prep",
        f"reweight_prep.py {demo}_prep",
    ]
    assert calls[0].endswith("--variants 2")
    assert f"--out {demo}r_prep --speakers {demo}/speakers.json --add {corpus}/real_seg_prep=2" in calls[2]
    assert calls[3].endswith(f"--add {corpus}/real_seg_prep=2 --add {corpus}/real_var_prep=1")
    assert f"--out {demo}rv_prep " in calls[3]
    again = run()  # the new voices and preprocess resume by their own checks; both views are kept
    assert len(again) == 2 and not any("reweight_prep.py" in call for call in again)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_gta_seg_prepares_the_real_phrases_and_takes_their_gta_mels(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    runs = tmp_path / "runs"
    calls = _stand_in_runner(tmp_path, "gta-seg", RUNS=str(runs))()
    assert [call.split(" --out ")[0] for call in calls] == [
        "segment_real.py ../shared/data",
        f"train synthesizer preprocess {corpus}/real_seg",
        f"train synthesizer gta --checkpoint default --data {corpus}/real_seg_prep",
    ]
    assert calls[2].endswith(f"--out {runs}/gta_seg")


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
@pytest.mark.parametrize("folder", ["gta_real", "gta_seg"])
def test_hifigan_gta_real_lists_the_pairs_repeated_beside_train_txt(tmp_path: Path, folder: str) -> None:
    runs = tmp_path / "runs"
    (runs / "hifigan_data").mkdir(parents=True)
    variables = {"RUNS": str(runs), "GTA_REAL_REPEAT": "3"}
    if folder != "gta_real":  # gta_real is the default
        variables["GTA_REAL"] = str(runs / folder)
    calls = _stand_in_runner(tmp_path, "hifigan-gta-real", **variables)()
    data = runs / "hifigan_data"
    assert calls[0].endswith(f"--out {data}/{folder}_once.txt --source {runs}/{folder}/pairs.txt")
    assert (data / f"{folder}_pairs.txt").read_text() == f"row of {runs}/{folder}/pairs.txt\n" * 3
    mix = f"--out {data}/{folder}_mix.txt --source {data}/train.txt --source {data}/{folder}_pairs.txt"
    assert calls[1].endswith(mix)
    assert len(calls) == 2


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("nice") is None, reason="needs a POSIX sh and nice")
def test_free_mels_and_hifigan_unpaired_flags(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    calls = _stand_in_runner(tmp_path, "free-mels", RUNS=str(runs), FREE_MELS_PER_SPEAKER="2")()
    assert calls == [f"free_mels.py ../shared/data --out {runs}/free_mels --per-speaker 2 --threads 1"]
    (plain,) = _stand_in_runner(tmp_path, "hifigan", RUNS=str(runs))()
    assert plain.startswith("train vocoder --plugin hifigan fit") and "--unpaired" not in plain
    (unpaired,) = _stand_in_runner(tmp_path, "hifigan", RUNS=str(runs), UNPAIRED_MELS=f"{runs}/free_mels")()
    assert f"--unpaired-mels {runs}/free_mels --unpaired-weight 1" in unpaired
    assert "--unpaired-frame-sync-weight" not in unpaired
    (synced,) = _stand_in_runner(
        tmp_path, "hifigan", RUNS=str(runs), UNPAIRED_MELS=f"{runs}/free_mels", UNPAIRED_FRAME_SYNC_WEIGHT="10"
    )()
    assert f"--unpaired-mels {runs}/free_mels --unpaired-weight 1 --unpaired-frame-sync-weight 10" in synced
    (alone,) = _stand_in_runner(tmp_path, "hifigan", RUNS=str(runs), UNPAIRED_FRAME_SYNC_WEIGHT="10")()
    assert "--unpaired" not in alone  # no unpaired steps, nothing for it to act in


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("nice") is None, reason="needs a POSIX sh and nice")
def test_hifigan_learning_rate_flags(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (plain,) = _stand_in_runner(tmp_path, "hifigan", RUNS=str(runs))()
    assert "-lr" not in plain  # the trainer's defaults: the original's 2e-4, or the run's own on resume
    (generator,) = _stand_in_runner(tmp_path, "hifigan", RUNS=str(runs), GENERATOR_LR="1e-4")()
    assert "--generator-lr 1e-4" in generator and "--discriminator-lr" not in generator
    (both,) = _stand_in_runner(tmp_path, "hifigan", RUNS=str(runs), GENERATOR_LR="1e-4", DISCRIMINATOR_LR="5e-5")()
    assert "--generator-lr 1e-4 --discriminator-lr 5e-5" in both


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("nice") is None, reason="needs a POSIX sh and nice")
def test_hifigan_init_discriminators_only_starts_a_new_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    variables = {"RUNS": str(runs), "HIFIGAN_INIT": "g.safetensors", "HIFIGAN_INIT_DISCRIMINATORS": "d/do_00000400"}
    (new,) = _stand_in_runner(tmp_path, "hifigan", **variables)()
    assert new.endswith("--init g.safetensors --init-discriminators d/do_00000400")
    (runs / "hifigan").mkdir(parents=True)
    (runs / "hifigan" / "checkpoint.pt").write_bytes(b"")
    (resumed,) = _stand_in_runner(tmp_path, "hifigan", **variables)()
    assert resumed.endswith("--resume") and "--init" not in resumed  # the checkpoint keeps its own record


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_synthesizer_anchor_flag(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    init = "plugins/synthesizers/tacotron/vcframe_tacotron/weights/tacotron-demo.safetensors"
    (plain,) = _stand_in_runner(tmp_path, "synthesizer", RUNS=str(runs), TACO_INIT=init)()
    assert plain.startswith("train synthesizer fit") and f"--init {init}" in plain and "--anchor" not in plain
    (anchored,) = _stand_in_runner(tmp_path, "synthesizer", RUNS=str(runs), TACO_INIT=init, TACO_ANCHOR="100")()
    assert anchored.endswith(f"--init {init} --anchor-decay 100")


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("nice") is None, reason="needs a POSIX sh and nice")
def test_speaker_embeddings_and_the_hifigan_flag(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "free_mels").mkdir(parents=True)
    calls = _stand_in_runner(tmp_path, "speaker-embeddings", RUNS=str(runs))()
    assert calls == [
        f"speaker_embeddings.py {runs}/hifigan_data/train.txt --unpaired-mels {runs}/free_mels "
        f"--out {runs}/speaker_embeddings.npz --threads 1"
    ]
    (plain,) = _stand_in_runner(tmp_path, "hifigan", RUNS=str(runs))()
    assert "--speaker-embeddings" not in plain
    (voiced,) = _stand_in_runner(tmp_path, "hifigan", RUNS=str(runs), SPEAKER_EMBEDDINGS=f"{runs}/voices.npz")()
    assert f"--speaker-embeddings {runs}/voices.npz" in voiced
    assert "--speaker-loss-weight" not in voiced
    (judged,) = _stand_in_runner(
        tmp_path, "hifigan", RUNS=str(runs), SPEAKER_EMBEDDINGS=f"{runs}/voices.npz", SPEAKER_LOSS_WEIGHT="2"
    )()
    assert f"--speaker-embeddings {runs}/voices.npz --speaker-loss-weight 2" in judged
    assert "--periodicity-weight" not in judged
    (periodic,) = _stand_in_runner(tmp_path, "hifigan", RUNS=str(runs), PERIODICITY_WEIGHT="20")()
    assert "--periodicity-weight 20" in periodic
    (paired_only,) = _stand_in_runner(
        tmp_path, "hifigan", RUNS=str(runs), SPEAKER_LOSS_WEIGHT="2", UNPAIRED_SPEAKER_LOSS_WEIGHT="0"
    )()
    assert "--speaker-loss-weight 2 --unpaired-speaker-loss-weight 0" in paired_only
