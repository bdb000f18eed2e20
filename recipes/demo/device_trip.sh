#!/usr/bin/env bash
# The device side of a Tacotron training trip to a lent GPU machine (recipes/demo/README.md, "Training on a lent
# GPU"). One step per device call, run from the repository root there (the call's working directory):
#
#   bash recipes/demo/device_trip.sh setup          # carry .gpu/whl and .gpu/trip/checkpoint
#   bash recipes/demo/device_trip.sh start SECONDS  # carry .gpu/trip/data; starts the trainer, waits, snapshots
#   bash recipes/demo/device_trip.sh wait SECONDS   # carry nothing; waits while it trains, snapshots
#
# setup installs the carried wheels into /root/site, copies vcframe, the Tacotron plugin and the trip tool to
# /root (carried paths are gone in later calls, and the working tree may change) and expands the light
# checkpoint into /root/run/checkpoint.pt. start decodes the mels into /root/prep and starts the trainer
# detached (it outlives the call) with train.sh's synthesizer arguments plus --resume --device cuda. start and
# wait then watch it for SECONDS (or until it dies) and write a snapshot of its checkpoint (meta.pt, part_*.pt)
# with log.jsonl, valid.jsonl (if pack had --valid-prep) and train.log into $OUT, whence they come back. Keep SECONDS about 60 s under the call's limit.
#
# Environment: TRIP (default .gpu/trip), WHEELS (.gpu/whl), DEVICE_HOME (/root), PYTHON (python3),
# THREADS (8), MAX_STEPS (40000), DEVICE (cuda), SCHEDULE (none: the checkpoint's; else fit's --schedule).
set -eu
TRIP=${TRIP:-.gpu/trip}
WHEELS=${WHEELS:-.gpu/whl}
DEVICE_HOME=${DEVICE_HOME:-/root}
PYTHON=${PYTHON:-python3}
SITE=$DEVICE_HOME/site
CODE=$DEVICE_HOME/code
TOOLS=$DEVICE_HOME/trip
RUN=$DEVICE_HOME/run
PREP=$DEVICE_HOME/prep
VALID=$DEVICE_HOME/valid
TRAIN_LOG=$DEVICE_HOME/train.log
TRAINER_PID=$DEVICE_HOME/trainer.pid
# TF32 matrix products on the GPU (as in the measured runs); unbuffered output so train.log is current
export PYTHONPATH=$SITE:$CODE TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 PYTHONUNBUFFERED=1

die() { echo "device_trip: $*" >&2; exit 2; }

trainer_running() {  # the trainer started by 'start' is alive (a zombie counts as dead)
    [ -f "$TRAINER_PID" ] || return 1
    local pid
    pid=$(cat "$TRAINER_PID")
    [ -r "/proc/$pid/stat" ] || return 1
    [ "$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)" != Z ] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q vcframe_tacotron
}

need_setup() {
    [ -f "$RUN/checkpoint.pt" ] && [ -f "$TOOLS/device_trip.py" ] ||
        die "no $RUN/checkpoint.pt: this machine is fresh (it was given back); run 'setup' again"
}

wait_and_snapshot() {  # $1: seconds to watch the trainer
    local end=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$end" ]; do
        sleep $((end - SECONDS < 15 ? (end - SECONDS) : 15))
        echo "$(tail -n 1 "$TRAIN_LOG") | GPU $(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader 2>/dev/null || echo '?')"
        if ! trainer_running; then
            echo "TRAINER NOT RUNNING"
            tail -n 40 "$TRAIN_LOG"
            break
        fi
    done
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>/dev/null || true
    [ -n "${OUT:-}" ] || die "OUT is not set (the device call's output folder)"
    "$PYTHON" "$TOOLS/device_trip.py" snapshot --checkpoint "$RUN/checkpoint.pt" --out "$OUT"
    cp "$RUN/log.jsonl" "$TRAIN_LOG" "$OUT"/
    [ ! -f "$RUN/valid.jsonl" ] || cp "$RUN/valid.jsonl" "$OUT"/
}

case "${1:-}" in
setup)
    [ -d vcframe ] && [ -d plugins/synthesizers/tacotron/vcframe_tacotron ] || die "run from the repository root"
    [ -f "$TRIP/checkpoint/checkpoint_light.pt" ] || die "no $TRIP/checkpoint/checkpoint_light.pt: carry $TRIP/checkpoint"
    ls "$WHEELS"/*.whl > /dev/null 2>&1 || die "no wheels in $WHEELS: carry it"
    ! trainer_running || die "a trainer is running (pid $(cat "$TRAINER_PID")); setup would replace its checkpoint"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
    mkdir -p "$CODE" "$TOOLS" "$RUN"
    rm -rf "$CODE/vcframe" "$CODE/vcframe_tacotron"
    cp -r vcframe plugins/synthesizers/tacotron/vcframe_tacotron "$CODE"/
    cp recipes/demo/device_trip.py recipes/demo/device_trip.sh "$TOOLS"/
    "$PYTHON" -c "import torch, pydantic, vcframe_tacotron.train; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU', 'pydantic', pydantic.__version__)"
    "$PYTHON" "$TOOLS/device_trip.py" unpack --trip "$TRIP" --checkpoint-out "$RUN/checkpoint.pt"
    echo "cores $(nproc); $(free -g | sed -n 2p); $(df -h "$DEVICE_HOME" | tail -n 1)"
    ;;
start)
    [ -n "${2:-}" ] || die "usage: $0 start SECONDS"
    need_setup
    ! trainer_running || die "a trainer is already running (pid $(cat "$TRAINER_PID")); use 'wait'"
    [ -f "$TRIP/data/mel_coding.json" ] || die "no $TRIP/data/mel_coding.json: carry $TRIP/data"
    rm -rf "$VALID"
    "$PYTHON" "$TOOLS/device_trip.py" unpack --trip "$TRIP" --out "$PREP" --valid-out "$VALID"
    valid_flags=""  # the held-out folders packed with --valid-prep, measured as train.sh's run measures them
    for held_out in "$VALID"/*/; do
        [ -f "${held_out}manifest.jsonl" ] && valid_flags="$valid_flags --valid-data ${held_out%/}"
    done
    # train.sh's synthesizer arguments (keep in step) but no --schedule: with --resume the checkpoint's preset
    # and schedule (as 'pack --batch-size' set it) win, unless SCHEDULE gives one (fit --resume --schedule
    # applies it from the checkpoint's step on)
    # (the trainer writes its own pid: sh records $$, then execs it, so the pid is right even if setsid forks)
    rm -f "$TRAINER_PID"
    (cd "$DEVICE_HOME" && exec setsid nohup sh -c 'echo $$ > "$0"; exec "$@"' "$TRAINER_PID" \
        "$PYTHON" -c 'from vcframe_tacotron.train import app; app()' fit \
        --data "$PREP" --run-dir "$RUN" \
        --preset small -o r=4 ${SCHEDULE:+--schedule "$SCHEDULE"} \
        --masking clean --guided-attention 1.0 --guided-until 20000 \
        --max-steps "${MAX_STEPS:-40000}" --checkpoint-every 100 --eval-every 500 --log-every 10 \
        $valid_flags --valid-every 500 \
        --threads "${THREADS:-8}" --resume --device "${DEVICE:-cuda}" > "$TRAIN_LOG" 2>&1 < /dev/null) &
    sleep 2
    echo "trainer started, pid $(cat "$TRAINER_PID" 2>/dev/null || echo '?')"
    wait_and_snapshot "$2"
    ;;
wait)
    [ -n "${2:-}" ] || die "usage: $0 wait SECONDS"
    need_setup
    if trainer_running; then
        wait_and_snapshot "$2"
    else
        echo "the trainer is not running (finished or died); snapshot only"
        tail -n 20 "$TRAIN_LOG" || true
        wait_and_snapshot 0
    fi
    ;;
*)
    sed -n '2,17p' "$0"
    exit 2
    ;;
esac
