#!/usr/bin/env bash
# Issue #6 acceptance evaluation: `tts eval` of the sim backend against the cpu backend (noise
# off) on the sentence set tts-model/eval/sentences.txt (the golden sentences of
# tests/fixtures/goldens plus new ones), once free-running (frame counts, host time) and once
# with the cpu's durations (MCD, log-mel L1, SNR, PCC stay frame-aligned when a duration flips).
#
#   tts-model/scripts/eval-acceptance.sh [PLAN ...]        (default: hifi hifi-bf16 bfp8-lofi auto)
#
# Env: TTS (binary, default target-tts/release/tts, built if missing), VOICE, SENTENCES, ARCH
# (wormhole|blackhole), OUT (directory for the full reports, default /tmp/tts-eval).
# Slow: the simulator runs every kernel; about 10-90 s of host time per sentence and plan.
set -euo pipefail
cd "$(dirname "$0")/../.."
TTS=${TTS:-target-tts/release/tts}
VOICE=${VOICE:-voices/en_US-joe-medium.onnx}
SENTENCES=${SENTENCES:-tts-model/eval/sentences.txt}
ARCH=${ARCH:-wormhole}
OUT=${OUT:-/tmp/tts-eval}
if [ ! -x "$TTS" ]; then
  CARGO_TARGET_DIR=target-tts cargo build --release -p tts-model --bin tts
fi
[ -f "$VOICE" ] || ./scripts/setup.sh
mkdir -p "$OUT"
plans=("$@")
[ ${#plans[@]} -gt 0 ] || plans=(hifi hifi-bf16 bfp8-lofi auto)
for p in "${plans[@]}"; do
  name=$(basename "$p" .toml)
  "$TTS" eval --voice "$VOICE" --backend sim --arch "$ARCH" --precision "$p" --threads 1 \
    --durations-from-cpu --sentences "$SENTENCES" > "$OUT/$name.txt"
  echo "== $p ($ARCH): full report in $OUT/$name.txt"
  sed -n '2,/^frame counts identical/p' "$OUT/$name.txt"
done
