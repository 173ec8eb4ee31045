#!/usr/bin/env bash
# Both benchmarks on Stable Diffusion 1.5's architecture (random weights, 512 px, bf16) on one GPU, in under 8 minutes:
# the training step at batch 4 (dual, dual with gradient checkpointing, the per-branch loop, plain fine-tuning) and
# generation (50 steps, guidance 2.5, batch 1 and 16, fused and unfused), then, while the time budget lasts, both
# again under torch.compile. Tables and JSON go to $OUT (default /tmp/dualanodiff-benchmarks).
#
#   bash benchmarks/gpu.sh                      # the GPU run (installs only the wheels carried in .whl/)
#   bash benchmarks/gpu.sh --device cpu --tiny  # the same script on the tiny preset's architecture, CPU, minutes
#
# Options: --device cpu|cuda, --tiny, --compile / --no-compile (default: on for the GPU run, off with --tiny),
# --budget SECONDS (the compiled runs start only while the whole script can still end inside it; default 450 / 240).
# Run from anywhere; it works in the repository root. DUALANODIFF_COMMIT names the commit where there is no .git.
set -euo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."

DEVICE=cuda
TINY=0
COMPILE=auto
BUDGET=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY=1; shift ;;
    --compile) COMPILE=1; shift ;;
    --no-compile) COMPILE=0; shift ;;
    --budget) BUDGET="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $COMPILE == auto ]] && COMPILE=$((1 - TINY))
[[ -z $BUDGET ]] && BUDGET=$(( TINY ? 240 : 450 ))

# On a CPU that other jobs share, OpenMP's spinning worker threads stall each other (seen here: 2 threads, 20-50x
# slower steps); sleeping workers cost nothing when the machine is quiet.
[[ $DEVICE == cpu ]] && export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

OUT="${OUT:-/tmp/dualanodiff-benchmarks}"
mkdir -p "$OUT"
LOG="$OUT/gpu.log"
: > "$LOG"
PYTHON="${PYTHON:-python3}"

# diffusers is not on the GPU image: install the wheel carried in .whl/ (pip download diffusers --no-deps -d .whl).
if ! "$PYTHON" -c "import diffusers" 2>/dev/null; then
  if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/dualanodiff-site .whl/*.whl
    export PYTHONPATH="/tmp/dualanodiff-site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "error: diffusers is not installed and no wheel is carried in .whl/ (see benchmarks/README.md)" >&2
    exit 2
  fi
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
  echo "date: $(date -Is)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "commit: ${DUALANODIFF_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  "$PYTHON" -c "import torch, diffusers, transformers; print('torch', torch.__version__, '| diffusers', diffusers.__version__, '| transformers', transformers.__version__)"
  if command -v nvidia-smi > /dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
} 2>&1 | tee -a "$LOG"

COMMON=(--device "$DEVICE")
if (( TINY )); then
  COMMON+=(--tiny)
  TRAIN=(--repeats 3 --warmup 1)
  GENERATE=(--batches 1,4 --steps 5 --repeats 2 --warmup 1)
  TRAIN_COMPILED=(--variants dual --compile --repeats 3 --warmup 1)
  GENERATE_COMPILED=(--batches 4 --no-unfused --compile --steps 5 --repeats 2 --warmup 1)
else
  TRAIN=(--gradient-checkpointing --repeats 10 --warmup 3)
  GENERATE=(--batches 1,16 --steps 50 --repeats 2 --warmup 1)
  TRAIN_COMPILED=(--variants dual --compile --repeats 10 --warmup 3)
  GENERATE_COMPILED=(--batches 16 --no-unfused --compile --steps 50 --repeats 2 --warmup 1)
fi

run() {  # run NAME SECONDS MODULE ARGS...: one benchmark, its output into the log, stopped after SECONDS
  local name="$1" seconds="$2"
  shift 2
  echo "== $name (at ${SECONDS}s of the script)" | tee -a "$LOG"
  if ! timeout "$seconds" "$PYTHON" -m "$@" --json "$OUT/$name.json" 2>&1 | tee -a "$LOG"; then
    echo "== $name did not finish (failed, or stopped after ${seconds}s)" | tee -a "$LOG"
    return 1
  fi
}

compiled() {  # compiled NAME MODULE ARGS...: a compiled run with what is left of the budget, if enough is left
  local left=$(( BUDGET - SECONDS ))
  if (( left < 60 )); then
    echo "== $1 skipped: ${left}s left of the ${BUDGET}s budget" | tee -a "$LOG"
    return 0
  fi
  run "$1" "$left" "${@:2}" || true
}

status=0  # a failed benchmark does not stop the next one, but the script ends non-zero
run train_step 200 benchmarks.train_step "${COMMON[@]}" "${TRAIN[@]}" --profile "$OUT/profile_train_step.txt" || status=1
run generate 260 benchmarks.generate "${COMMON[@]}" "${GENERATE[@]}" --profile "$OUT/profile_generate.txt" || status=1
if (( COMPILE )); then
  compiled train_step_compiled benchmarks.train_step "${COMMON[@]}" "${TRAIN_COMPILED[@]}"
  compiled generate_compiled benchmarks.generate "${COMMON[@]}" "${GENERATE_COMPILED[@]}"
fi

# The tables alone, for benchmarks/RESULTS.md.
"$PYTHON" - "$OUT" <<'EOF' | tee "$OUT/tables.md"
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    print(json.loads(path.read_text())["table"])
EOF
echo "done in ${SECONDS}s; results in $OUT"
exit "$status"
