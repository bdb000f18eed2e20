#!/bin/sh
# Demo training of the default weights, resumable: run the same command again to continue where it stopped.
#
#   recipes/demo/train.sh prepare      # mels + GE2E embeddings of the corpus and its held-out folders (resumable)
#   recipes/demo/train.sh synthesizer  # small Tacotron, r=4, guided attention (background it with nohup)
#   recipes/demo/train.sh gta          # teacher-forced (GTA) mels of every clip from the synthesizer run
#   recipes/demo/train.sh vocoder      # small WaveRNN on the corpus' wavs and their ground-truth mels
#   VOC_DATA=/work/runs/gta/pairs.txt recipes/demo/train.sh vocoder   # ... continued on the GTA mels
#   recipes/demo/train.sh export       # safetensors exports of both runs into $RUNS/export/
#
# Paths: CORPUS (default /work/corpus/demo), RUNS (default /work/runs). THREADS (default 1) torch threads,
# MAX_STEPS caps a run; the vocoder runs under nice so the synthesizer keeps priority.
set -eu
cd "$(dirname "$0")/../.."
CORPUS=${CORPUS:-/work/corpus/demo}
RUNS=${RUNS:-/work/runs}
PREP=${PREP:-${CORPUS}_prep}
VCFRAME=${VCFRAME:-.venv/bin/vcframe}
PYTHON=${PYTHON:-.venv/bin/python}
resume_flag() { [ -f "$1/checkpoint.pt" ] && echo "--resume" || true; }
# the held-out folders make_corpus.py writes beside the corpus: unseen voices, unseen sentences in seen voices
HELD_OUT="${CORPUS}_eval ${CORPUS}_seen"
valid_flags() {  # each one, once preprocessed, as --valid-data
    for held_out in $HELD_OUT; do
        [ -f "${held_out}_prep/manifest.jsonl" ] && printf -- '--valid-data %s ' "${held_out}_prep"
    done
    true
}

case "${1:-}" in
prepare)
    $VCFRAME train synthesizer preprocess "$CORPUS" --out "$PREP" --encoder ge2e --workers "${WORKERS:-2}"
    for held_out in $HELD_OUT; do
        if [ -f "$held_out/manifest.csv" ]; then
            $VCFRAME train synthesizer preprocess "$held_out" --out "${held_out}_prep" --encoder ge2e --workers "${WORKERS:-2}"
        fi
    done ;;
synthesizer)
    # the schedule the demo run follows (applied on --resume too): lr 1e-3 to step 8,600, then 2e-4 from 8,600 on
    exec $VCFRAME train synthesizer fit --data "$PREP" --run-dir "$RUNS/taco" \
        --preset small -o r=4 --schedule "4,1e-3,8600,16;4,2e-4,20000,16;4,1e-4,80000,16" \
        --masking clean --guided-attention 1.0 --guided-until 20000 \
        --max-steps "${MAX_STEPS:-40000}" --checkpoint-every 100 --eval-every 500 --log-every 10 \
        $(valid_flags) --valid-every 500 \
        --threads "${THREADS:-1}" $(resume_flag "$RUNS/taco") ;;
gta)
    exec $VCFRAME train synthesizer gta --run-dir "$RUNS/taco" --data "$PREP" --out "$RUNS/gta" ;;
vocoder)
    exec nice -n "${NICE:-19}" $PYTHON -m vcframe_wavernn.train fit --data "${VOC_DATA:-$CORPUS}" --run-dir "$RUNS/voc" \
        --preset small --batch-size 32 --seq-len 1000 --lr 2e-4 --max-steps "${MAX_STEPS:-100000}" \
        --save-every 200 --sample-every 2000 --threads "${THREADS:-1}" $(resume_flag "$RUNS/voc") ;;
export)
    mkdir -p "$RUNS/export"
    $VCFRAME train synthesizer export --run-dir "$RUNS/taco" --out "$RUNS/export/tacotron-demo.safetensors" \
        --training-data "vcframe demo corpus: 15 synthetic speakers (flite, festival, espeak-ng + sox), 4,187 clips, 5.41 h; GE2E (resemblyzer) embeddings" \
        --license "MIT"
    if [ -f "$RUNS/voc/checkpoint.pt" ]; then
        $PYTHON -m vcframe_wavernn.train export --run-dir "$RUNS/voc" --out "$RUNS/export/wavernn-demo.safetensors" --license "MIT"
    fi ;;
*)
    sed -n '2,12p' "$0"; exit 2 ;;
esac
