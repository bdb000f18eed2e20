#!/bin/sh
# Demo training of the default weights, resumable: run the same command again to continue where it stopped.
#
#   recipes/demo/train.sh prepare      # mels + GE2E embeddings of the corpus and its held-out folders (resumable)
#   recipes/demo/train.sh synthesizer  # small Tacotron, r=4, guided attention (background it with nohup)
#   recipes/demo/train.sh gta          # teacher-forced (GTA) mels of every clip: the synthesizer run, else the shipped weights
#   recipes/demo/train.sh vocoder      # small WaveRNN on real speech + the corpus (hifigan-data's list; else the corpus),
#                                      # a new run starting from the shipped registry:wavernn-demo (VOC_INIT)
#   VOC_DATA=$RUNS/hifigan_data/gta_mix.txt recipes/demo/train.sh vocoder   # ... continued on GTA mels + real speech
#                                      # (after gta and hifigan-gta)
#   recipes/demo/train.sh hifigan-data # the vocoders' lists: the shared real recordings (each x8) + the corpus; held out
#   recipes/demo/train.sh hifigan      # HiFi-GAN at RTVC's mel: V3 layout, 128 channels, discriminators at width 0.25
#   recipes/demo/train.sh hifigan-gta  # (after gta) a list of the GTA pairs + the real recordings, then:
#   HIFIGAN_DATA=$RUNS/hifigan_data/gta_mix.txt recipes/demo/train.sh hifigan   # ... continued on the GTA mels
#   recipes/demo/train.sh gta-real     # GTA mels of the real LibriSpeech clips, transcribed by pocketsphinx (no
#                                      # transcripts ship with them): the shipped Tacotron on voices it never heard
#   recipes/demo/train.sh hifigan-gta-real  # (after gta-real and hifigan-data) train.txt + those pairs (each x8), then:
#   HIFIGAN_DATA=$RUNS/hifigan_data/gta_real_mix.txt recipes/demo/train.sh hifigan
#   recipes/demo/train.sh gta-seg      # GTA mels of the real phrases pocketsphinx is sure of (segment_real.py), then
#   GTA_REAL=$RUNS/gta_seg recipes/demo/train.sh hifigan-gta-real   # train.txt + those pairs: gta_seg_mix.txt
#   HIFIGAN_INIT=plugins/vocoders/hifigan/vcframe_hifigan/weights/hifigan-demo.safetensors ADVERSARIAL_START=0 \
#       recipes/demo/train.sh hifigan  # a new session (runs do not persist): from the shipped generator, fresh discriminators
#   HIFIGAN_INIT_DISCRIMINATORS=DIR/do_00000400 HIFIGAN_INIT=... recipes/demo/train.sh hifigan   # ... with discriminators
#                                      # a run already trained (its export --original-dir): no fresh-discriminator dip
#   MEL_SMOOTHING=2.5 recipes/demo/train.sh hifigan   # input mels smoothed across frequency (half the segments,
#                                      # sigma up to 2.5 bands): robustness to the synthesizer's smooth mels
#                                      # (train.sh vocoder takes MEL_SMOOTHING too)
#   recipes/demo/train.sh free-mels    # the shipped Tacotron's own mels of the 251 real train-clean-100 voices (4 training
#                                      # sentences each, spectrum-matched; no audio): $RUNS/free_mels, then
#   UNPAIRED_MELS=$RUNS/free_mels recipes/demo/train.sh hifigan   # a step on them after each GAN step (UNPAIRED_WEIGHT=1)
#   UNPAIRED_FRAME_SYNC_WEIGHT=10 UNPAIRED_MELS=... recipes/demo/train.sh hifigan   # ... with the frame-sync loss in it
#   GENERATOR_LR=1e-4 recipes/demo/train.sh hifigan   # the generator's learning rate (DISCRIMINATOR_LR: theirs)
#   SMOOTHED_TARGETS=1 MEL_SMOOTHING=2.5 recipes/demo/train.sh hifigan   # smoothed segments' mel loss on smoothed
#                                      # mels, their STFT loss left out (fit --smoothed-targets)
#   recipes/demo/train.sh speaker-embeddings   # a GE2E embedding per training and free-mels voice, then:
#   SPEAKER_EMBEDDINGS=$RUNS/speaker_embeddings.npz recipes/demo/train.sh hifigan   # the generator reads the voice too
#   UNPAIRED_SPEAKER_LOSS_WEIGHT=0 SPEAKER_LOSS_WEIGHT=2 ... recipes/demo/train.sh hifigan   # the speaker loss in the
#                                      # paired steps only (its unpaired-step weight; default: SPEAKER_LOSS_WEIGHT's)
#   PERIODICITY_WEIGHT=20 recipes/demo/train.sh hifigan   # the periodicity loss (fit --periodicity-weight): voiced
#                                      # where the recording is, at its pitch period
#   HIFIGAN_CHANNELS=256 HIFIGAN_INIT=$RUNS/hifigan_wide256.safetensors recipes/demo/train.sh hifigan   # a generator
#                                      # twice as wide, from the shipped one widened (train widen: the same function)
#   recipes/demo/train.sh export       # safetensors exports of the runs into $RUNS/export/
#   recipes/demo/train.sh many-corpus  # the synthesizer's many-voice corpus, all of it (recipe version 4: 154 voices,
#                                      # 23.7 h; about 3.5 h of one core, resumable), prepared and re-weighted, then:
#   CORPUS=/work/corpus/many_all4 PREP=/work/corpus/many4_bal_prep TACO_RUN=... recipes/demo/train.sh synthesizer
#   recipes/demo/train.sh real-seg     # (after many-corpus) real-voice phrases of the LibriSpeech clips (segment_real.py),
#                                      # prepared, and many4_bal_prep's view with them added (each x REAL_SEG_REPEAT), then:
#   CORPUS=/work/corpus/many_all4 PREP=/work/corpus/many4r_prep TACO_RUN=... recipes/demo/train.sh synthesizer
#   CORPUS=/work/corpus/demo15 recipes/demo/train.sh real-var   # (after prepare and real-seg) two new voices per real
#                                      # speaker (vary_real.py: WORLD pitch + vocal-tract changes), prepared, and two
#                                      # views of the 15-voice corpus: ${CORPUS}r_prep (+ the real pieces) and
#                                      # ${CORPUS}rv_prep (+ the real pieces and their new voices), then:
#   CORPUS=/work/corpus/demo15 PREP=/work/corpus/demo15rv_prep TACO_RUN=... \
#       TACO_INIT=plugins/synthesizers/tacotron/vcframe_tacotron/weights/tacotron-demo.safetensors \
#       TACO_SCHEDULE="4,2e-4,20000,16;4,1e-4,80000,16" recipes/demo/train.sh synthesizer
#   TACO_ANCHOR=100 ... recipes/demo/train.sh synthesizer   # the same, each weight pulled back toward TACO_INIT's
#                                      # (fit --anchor-decay: 1 % a step at lr 1e-4)
#
# Paths: CORPUS (default /work/corpus/demo), RUNS (default /work/runs), SHARED (default ../shared), MEL_CACHE (default
# $RUNS/mel_cache: the vocoders' ground-truth mels, computed once). THREADS (default 1) torch threads, MAX_STEPS caps
# a run; the vocoders run under nice so the synthesizer keeps priority.
set -eu
cd "$(dirname "$0")/../.."
CORPUS=${CORPUS:-/work/corpus/demo}
RUNS=${RUNS:-/work/runs}
PREP=${PREP:-${CORPUS}_prep}
TACO_RUN=${TACO_RUN:-$RUNS/taco}
VCFRAME=${VCFRAME:-.venv/bin/vcframe}
PYTHON=${PYTHON:-.venv/bin/python}
# the synthesizer pulled back toward its TACO_INIT weights after each step (fit --anchor-decay), when TACO_ANCHOR says
anchor_flags() { [ -n "${TACO_ANCHOR:-}" ] && echo "--anchor-decay $TACO_ANCHOR" || true; }
# HiFi-GAN's unpaired steps on synthesizer mels without audio, when UNPAIRED_MELS names them (train.sh free-mels)
unpaired_flags() { [ -n "${UNPAIRED_MELS:-}" ] && echo "--unpaired-mels $UNPAIRED_MELS --unpaired-weight ${UNPAIRED_WEIGHT:-1}$(unpaired_sync_flag)" || true; }
# the frame-sync loss in the unpaired steps too (UNPAIRED_FRAME_SYNC_WEIGHT; with UNPAIRED_MELS only)
unpaired_sync_flag() { [ -n "${UNPAIRED_FRAME_SYNC_WEIGHT:-}" ] && echo " --unpaired-frame-sync-weight $UNPAIRED_FRAME_SYNC_WEIGHT" || true; }
# HiFi-GAN's learning rates when GENERATOR_LR / DISCRIMINATOR_LR say (default: the original's 2e-4, the run's own on resume)
lr_flags() {
    [ -n "${GENERATOR_LR:-}" ] && printf -- '--generator-lr %s ' "$GENERATOR_LR"
    [ -n "${DISCRIMINATOR_LR:-}" ] && printf -- '--discriminator-lr %s ' "$DISCRIMINATOR_LR"
    true
}
resume_flag() { [ -f "$1/checkpoint.pt" ] && echo "--resume" || true; }
# a run folder without a checkpoint starts from the weights $2 when that is set (runs do not outlive a session);
# $3 names the flag (default --init; HiFi-GAN's trained discriminators: --init-discriminators)
init_flag() { [ ! -f "$1/checkpoint.pt" ] && [ -n "$2" ] && echo "${3:---init} $2" || true; }
# the ground-truth mels both vocoder trainers compute at RTVC's mel, kept between starts
MEL_CACHE=${MEL_CACHE:-$RUNS/mel_cache}
# the held-out folders make_corpus.py writes beside the corpus: unseen voices, unseen sentences in seen voices
HELD_OUT="${CORPUS}_eval ${CORPUS}_seen"
valid_flags() {  # each one, once preprocessed, as --valid-data
    for held_out in $HELD_OUT; do
        [ -f "${held_out}_prep/manifest.jsonl" ] && printf -- '--valid-data %s ' "${held_out}_prep"
    done
    true
}

prepare_corpus() {  # $1 corpus, $2 its prepared folder: mels + GE2E embeddings of it and of its held-out folders
    $VCFRAME train synthesizer preprocess "$1" --out "$2" --encoder ge2e --workers "${WORKERS:-2}"
    for held_out in "$1_eval" "$1_seen"; do
        if [ -d "$held_out" ]; then
            $VCFRAME train synthesizer preprocess "$held_out" --out "${held_out}_prep" --encoder ge2e --workers "${WORKERS:-2}"
        fi
    done
}

prepare_real_seg() {  # $1 corpus root: the phrases of the real LibriSpeech clips pocketsphinx is sure of, prepared
    $PYTHON recipes/demo/segment_real.py "${SHARED:-../shared}/data" --out "$1/real_seg"
    $VCFRAME train synthesizer preprocess "$1/real_seg" --out "$1/real_seg_prep" --encoder ge2e --workers "${WORKERS:-2}"
}

case "${1:-}" in
prepare)
    prepare_corpus "$CORPUS" "$PREP" ;;
many-corpus)
    # recipe version 2's 84 voices, version 3's 39 tilted ones, version 4's 31 natural-base ones: three folders made
    # (and resumed) one after the other under nice, linked as one corpus with its held-out folders (many_all4, its
    # _eval: version 2's 5 unseen voices, its _seen: every voice's unseen sentences), prepared, and a view that lists
    # the flite and festival based voices' clips 4 times (espeak-ng based 25.9 % of the rows, as many4_bal_prep)
    C=${CORPUS_ROOT:-/work/corpus}
    renice -n "${NICE:-15}" $$ > /dev/null  # this shell and all it starts: the corpus yields to a training job
    WORKERS=${WORKERS:-1}
    make_corpus() { $PYTHON recipes/demo/make_corpus.py --sentences-per-speaker 120 --jobs "${JOBS:-1}" "$@"; }
    make_corpus --out "$C/many" --num-speakers 84
    make_corpus --out "$C/many_v3" --skip-speakers 84 --num-speakers 39
    make_corpus --out "$C/many_v4" --skip-speakers 123
    mkdir -p "$C/many_all4" "$C/many_all4_seen"
    ln -sfn "$C"/many/*/ "$C"/many_v3/*/ "$C"/many_v4/*/ "$C/many_all4/"
    ln -sfn "$C/many_eval" "$C/many_all4_eval"
    ln -sfn "$C"/many_seen/*/ "$C"/many_v3_seen/*/ "$C"/many_v4_seen/*/ "$C/many_all4_seen/"
    prepare_corpus "$C/many_all4" "$C/many_all4_prep"
    if [ -d "$C/many4_bal_prep" ]; then echo "$C/many4_bal_prep is made"; exit 0; fi
    exec $PYTHON recipes/demo/reweight_prep.py "$C/many_all4_prep" --out "$C/many4_bal_prep" \
        --speakers "$C/many/speakers.json" --speakers "$C/many_v3/speakers.json" --speakers "$C/many_v4/speakers.json" \
        --repeat flite=4 --repeat festival=4 ;;
real-seg)
    # the phrases of the 251 real LibriSpeech training clips that pocketsphinx is sure of (resumable), their mels and
    # GE2E embeddings, and the many-voice view (flite/festival x4, as many4_bal_prep) with them added, each listed
    # REAL_SEG_REPEAT times (default 24: about 15 % of the rows)
    C=${CORPUS_ROOT:-/work/corpus}
    prepare_real_seg "$C"
    if [ -d "$C/many4r_prep" ]; then echo "$C/many4r_prep is made"; exit 0; fi
    exec $PYTHON recipes/demo/reweight_prep.py "$C/many_all4_prep" --out "$C/many4r_prep" \
        --speakers "$C/many/speakers.json" --speakers "$C/many_v3/speakers.json" --speakers "$C/many_v4/speakers.json" \
        --repeat flite=4 --repeat festival=4 --add "$C/real_seg_prep=${REAL_SEG_REPEAT:-24}" ;;
real-var)
    # the real pieces (real-seg) each resynthesized as REAL_VAR_VARIANTS (default 2) new voices (resumable), their mels
    # and GE2E embeddings, and the views of $CORPUS's prepared folder: + the pieces x REAL_SEG_REPEAT (default 2,
    # 12-14 % of the rows beside the 15-voice corpus), and + the pieces and the new voices x REAL_VAR_REPEAT (default 1)
    C=${CORPUS_ROOT:-/work/corpus}
    $PYTHON recipes/demo/vary_real.py "$C/real_seg" --out "$C/real_var" --variants "${REAL_VAR_VARIANTS:-2}"
    $VCFRAME train synthesizer preprocess "$C/real_var" --out "$C/real_var_prep" --encoder ge2e --workers "${WORKERS:-2}"
    if [ ! -d "${CORPUS}r_prep" ]; then
        $PYTHON recipes/demo/reweight_prep.py "$PREP" --out "${CORPUS}r_prep" --speakers "$CORPUS/speakers.json" \
            --add "$C/real_seg_prep=${REAL_SEG_REPEAT:-2}"
    fi
    if [ -d "${CORPUS}rv_prep" ]; then echo "${CORPUS}rv_prep is made"; exit 0; fi
    exec $PYTHON recipes/demo/reweight_prep.py "$PREP" --out "${CORPUS}rv_prep" --speakers "$CORPUS/speakers.json" \
        --add "$C/real_seg_prep=${REAL_SEG_REPEAT:-2}" --add "$C/real_var_prep=${REAL_VAR_REPEAT:-1}" ;;
synthesizer)
    # the schedule the demo run follows (applied on --resume too): lr 1e-3 to step 8,600, then 2e-4 from 8,600 on.
    # TACO_RUN (default $RUNS/taco) is the run folder (gta and export read it too); a new run starts from TACO_INIT
    # when set (e.g. the shipped weights, continued on a bigger corpus); TACO_SCHEDULE replaces the schedule;
    # TACO_TRAIN_ONLY=speaker trains only the weights' columns that read the speaker embedding (new voices, same speech)
    exec $VCFRAME train synthesizer fit --train-only "${TACO_TRAIN_ONLY:-all}" --data "$PREP" --run-dir "$TACO_RUN" \
        --preset small -o r=4 --schedule "${TACO_SCHEDULE:-4,1e-3,8600,16;4,2e-4,20000,16;4,1e-4,80000,16}" \
        --masking clean --guided-attention 1.0 --guided-until 20000 \
        --max-steps "${MAX_STEPS:-40000}" --checkpoint-every 100 --eval-every 500 --log-every 10 \
        $(valid_flags) --valid-every 500 \
        --precision "${PRECISION:-auto}" --threads "${THREADS:-1}" $(resume_flag "$TACO_RUN") \
        $(init_flag "$TACO_RUN" "${TACO_INIT:-}") $(anchor_flags) ;;
gta)
    # from the synthesizer run when this machine has one, else from the shipped weights (runs do not outlive a session)
    if [ -f "$TACO_RUN/checkpoint.pt" ]; then source_flag="--run-dir $TACO_RUN"; else source_flag="--checkpoint default"; fi
    # one torch thread unless THREADS says more: under load, OpenMP spinning made it about 10x slower
    export OMP_NUM_THREADS="${THREADS:-1}"
    exec $VCFRAME train synthesizer gta $source_flag --data "$PREP" --out "$RUNS/gta" ;;
vocoder)
    # the fused training path in bfloat16 where the CPU has AMX / AVX-512 BF16 (float32 elsewhere): 0.54 CPU s a
    # step on 1 thread here, 6.0x RTVC's step; batch 32 kept (64 and 128 add 2 % and 6 % samples/s, see the README).
    # Data: VOC_DATA, else hifigan-data's list (real speech x8 + the corpus) when it exists, else the corpus. A new
    # run starts from VOC_INIT (default the shipped registry:wavernn-demo; VOC_INIT= for random weights).
    if [ -f "$RUNS/hifigan_data/train.txt" ]; then voc_data="$RUNS/hifigan_data/train.txt"; else voc_data="$CORPUS"; fi
    exec nice -n "${NICE:-19}" $PYTHON -m vcframe_wavernn.train fit --data "${VOC_DATA:-$voc_data}" --run-dir "$RUNS/voc" \
        --preset small --batch-size 32 --seq-len 1000 --lr 2e-4 --max-steps "${MAX_STEPS:-100000}" \
        --fused --precision "${PRECISION:-auto}" --mel-cache "$MEL_CACHE" \
        --save-every 200 --sample-every 2000 --threads "${THREADS:-1}" \
        --mel-smoothing "${MEL_SMOOTHING:-0}" --mel-smoothing-probability "${MEL_SMOOTHING_PROBABILITY:-0.5}" \
        $(resume_flag "$RUNS/voc") $(init_flag "$RUNS/voc" "${VOC_INIT-registry:wavernn-demo}") ;;
hifigan-data)
    mkdir -p "$RUNS/hifigan_data"
    $VCFRAME train vocoder --plugin hifigan manifest --out "$RUNS/hifigan_data/train.txt" \
        --real-speech "${SHARED:-../shared}/data" --real-speech-repeat "${REAL_REPEAT:-8}" \
        --held-out "$RUNS/hifigan_data/valid_real.txt" --source "$CORPUS" ;;
hifigan-gta)
    $VCFRAME train vocoder --plugin hifigan manifest --out "$RUNS/hifigan_data/gta_mix.txt" \
        --real-speech "${SHARED:-../shared}/data" --real-speech-repeat "${REAL_REPEAT:-4}" --source "$RUNS/gta/pairs.txt" ;;
gta-real)
    # recognised transcripts (resumable), the synthesizer's mels and GE2E embeddings of those clips, their GTA mels
    export OMP_NUM_THREADS="${THREADS:-1}"
    $PYTHON recipes/demo/transcribe_real.py "${SHARED:-../shared}/data" --out "$RUNS/real_asr"
    $VCFRAME train synthesizer preprocess "$RUNS/real_asr" --format librispeech --max-frames 1400 \
        --out "$RUNS/real_asr_prep" --encoder ge2e
    if [ -f "$TACO_RUN/checkpoint.pt" ]; then source_flag="--run-dir $TACO_RUN"; else source_flag="--checkpoint default"; fi
    exec $VCFRAME train synthesizer gta $source_flag --data "$RUNS/real_asr_prep" --out "$RUNS/gta_real" ;;
gta-seg)
    # the GTA mels of the real phrases that real-seg cuts (pocketsphinx sure of every word: 89 % of the recognised
    # words right, where gta-real's whole-clip transcripts are 26-46 % wrong), so the teacher-forced frames stay
    # aligned with the audio: the shipped Tacotron on voices it never heard, paired with their real audio
    export OMP_NUM_THREADS="${THREADS:-1}"
    prepare_real_seg "${CORPUS_ROOT:-/work/corpus}"
    if [ -f "$TACO_RUN/checkpoint.pt" ]; then source_flag="--run-dir $TACO_RUN"; else source_flag="--checkpoint default"; fi
    exec $VCFRAME train synthesizer gta $source_flag --data "${CORPUS_ROOT:-/work/corpus}/real_seg_prep" --out "$RUNS/gta_seg" ;;
hifigan-gta-real)
    # the real voices' GTA pairs (GTA_REAL: $RUNS/gta_real, default, or $RUNS/gta_seg) listed GTA_REAL_REPEAT times
    # (default 8, as often as their recordings in train.txt) added to train.txt: hifigan_data/<name>_mix.txt
    # (through the manifest command first: it writes absolute paths, pairs.txt's are relative to its folder)
    gta_real=${GTA_REAL:-$RUNS/gta_real}
    name=$(basename "$gta_real")
    $VCFRAME train vocoder --plugin hifigan manifest --out "$RUNS/hifigan_data/${name}_once.txt" --source "$gta_real/pairs.txt"
    repeat=${GTA_REAL_REPEAT:-8}
    : > "$RUNS/hifigan_data/${name}_pairs.txt"
    while [ "$repeat" -gt 0 ]; do cat "$RUNS/hifigan_data/${name}_once.txt" >> "$RUNS/hifigan_data/${name}_pairs.txt"; repeat=$((repeat - 1)); done
    $VCFRAME train vocoder --plugin hifigan manifest --out "$RUNS/hifigan_data/${name}_mix.txt" \
        --source "$RUNS/hifigan_data/train.txt" --source "$RUNS/hifigan_data/${name}_pairs.txt" ;;
hifigan)
    # the demo size: V3's layout at hop 200 (8 x 5 x 5) with 128 channels (0.39 M parameters; RTF 0.019 on
    # 1 thread), discriminators at width 0.25 (4.4 M) in bfloat16 where the CPU has AMX: 1.46 CPU s a GAN step.
    # The multi-resolution STFT loss is on by default here (STFT_WEIGHT=25; the trainer's own default, 0, is the
    # original's): without it the demo generator buzzes at the 80 Hz frame rate (README, "Frame-rate buzz"); the
    # frame-sync loss (FRAME_SYNC_WEIGHT=10 by default, from step 20,000 of the session-26 run) aims at that buzz
    # itself: +15.0 -> +4.8 dB in 1,400 steps, cloned-speech similarity +0.011 (plugin README, "Frame-rate buzz")
    exec nice -n "${NICE:-10}" $VCFRAME train vocoder --plugin hifigan fit \
        --data "${HIFIGAN_DATA:-$RUNS/hifigan_data/train.txt}" --run-dir "$RUNS/hifigan" --mel rtvc --preset v3 \
        -o 'upsample_rates=[8,5,5]' -o 'upsample_kernel_sizes=[16,11,11]' -o "upsample_initial_channel=${HIFIGAN_CHANNELS:-128}" \
        --batch-size 16 --segment-frames 32 --disc-width "${DISC_WIDTH:-0.25}" --adversarial-start "${ADVERSARIAL_START:-3000}" \
        --max-steps "${MAX_STEPS:-100000}" --checkpoint-every 200 --backup-every 5000 --log-every 10 --sample-every 1000 \
        --valid-data "$RUNS/hifigan_data/valid_real.txt" --valid-data "${CORPUS}_eval" --valid-every 1000 --valid-clips 8 \
        --precision auto --mel-cache "$MEL_CACHE" --threads "${THREADS:-1}" --stft-weight "${STFT_WEIGHT:-25}" \
        --frame-sync-weight "${FRAME_SYNC_WEIGHT:-10}" \
        --mel-smoothing "${MEL_SMOOTHING:-0}" --mel-smoothing-probability "${MEL_SMOOTHING_PROBABILITY:-0.5}" \
        --smoothed-targets "${SMOOTHED_TARGETS:-0}" ${SPEAKER_EMBEDDINGS:+--speaker-embeddings "$SPEAKER_EMBEDDINGS"} ${SPEAKER_LR_FACTOR:+--speaker-lr-factor "$SPEAKER_LR_FACTOR"} \
        ${SPEAKER_LOSS_WEIGHT:+--speaker-loss-weight "$SPEAKER_LOSS_WEIGHT"} ${UNPAIRED_SPEAKER_LOSS_WEIGHT:+--unpaired-speaker-loss-weight "$UNPAIRED_SPEAKER_LOSS_WEIGHT"} ${PERIODICITY_WEIGHT:+--periodicity-weight "$PERIODICITY_WEIGHT"} \
        $(unpaired_flags) $(lr_flags) $(resume_flag "$RUNS/hifigan") $(init_flag "$RUNS/hifigan" "${HIFIGAN_INIT:-}") \
        $(init_flag "$RUNS/hifigan" "${HIFIGAN_INIT_DISCRIMINATORS:-}" --init-discriminators) ;;
speaker-embeddings)
    # one GE2E embedding per training voice (and per free-mels voice) for a speaker-conditioned HiFi-GAN
    # (SPEAKER_EMBEDDINGS=$RUNS/speaker_embeddings.npz sh recipes/demo/train.sh hifigan); about a minute
    $PYTHON recipes/demo/speaker_embeddings.py "${HIFIGAN_DATA:-$RUNS/hifigan_data/train.txt}" \
        $([ -d "$RUNS/free_mels" ] && echo --unpaired-mels "$RUNS/free_mels") \
        --out "$RUNS/speaker_embeddings.npz" --threads "${THREADS:-1}" ;;
free-mels)
    # synthesizer mels without audio for the vocoders' unpaired steps (recipes/demo/free_mels.py; resumable)
    $PYTHON recipes/demo/free_mels.py "${SHARED:-../shared}/data" --out "$RUNS/free_mels" \
        --per-speaker "${FREE_MELS_PER_SPEAKER:-4}" --threads "${THREADS:-1}" ;;
export)
    mkdir -p "$RUNS/export"
    $VCFRAME train synthesizer export --run-dir "$TACO_RUN" --out "$RUNS/export/tacotron-demo.safetensors" \
        --training-data "vcframe demo corpus: 15 synthetic speakers (flite, festival, espeak-ng + sox), 4,187 clips, 5.41 h; GE2E (resemblyzer) embeddings" \
        --license "MIT"
    if [ -f "$RUNS/voc/checkpoint.pt" ]; then
        $PYTHON -m vcframe_wavernn.train export --run-dir "$RUNS/voc" --out "$RUNS/export/wavernn-demo.safetensors" --license "MIT"
    fi
    if [ -f "$RUNS/hifigan/checkpoint.pt" ]; then
        $VCFRAME train vocoder --plugin hifigan export --run-dir "$RUNS/hifigan" --out "$RUNS/export/hifigan-demo.safetensors" --license "MIT"
    fi ;;
*)
    sed -n '2,/^set -eu/p' "$0" | sed '$d'; exit 2 ;;
esac
