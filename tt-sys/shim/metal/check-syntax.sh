#!/usr/bin/env bash
# Compile-checks (g++ -fsyntax-only, C++20) tt_shim_metal.cpp against the TT-Metal headers of a
# TT_METAL_HOME-like tree: `check-syntax.sh [TT_METAL_HOME]` (default: $TT_METAL_HOME).
# No device is needed. See tt-sys/README.md for what this does and does not prove.
#
#   TT_SHIM_CHECK_FLAGS   extra compiler flags (e.g. "-include fmt/xchar.h", see README)
#   TT_SHIM_LINK_LIBDIR   also compile to an object and link it into a shared object against
#                         libtt_metal.so / libtt_stl.so in this directory with --no-undefined: every
#                         TT-Metal function the shim calls must exist there with the same signature.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${1:-${TT_METAL_HOME:?usage: check-syntax.sh TT_METAL_HOME}}"
CXX="${CXX:-g++}"

mapfile -t dirs < <("$here/include-dirs.sh" "$root")
args=()
for d in "${dirs[@]}"; do args+=(-isystem "$d"); done
# shellcheck disable=SC2206
extra=(${TT_SHIM_CHECK_FLAGS:-})
flags=(-std=c++20 -Wall -Wextra -Werror=return-type -DSPDLOG_FMT_EXTERNAL=1 -DFMT_HEADER_ONLY=1
       "${extra[@]}" -I "$here/../../include" "${args[@]}")

echo "checking with $("$CXX" --version | head -n 1)"
printf '  include: %s\n' "${dirs[@]}"
"$CXX" -fsyntax-only "${flags[@]}" "$here/tt_shim_metal.cpp"
echo "OK: tt_shim_metal.cpp compiles against $root"

if [ -n "${TT_SHIM_LINK_LIBDIR:-}" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$CXX" -c -fPIC -fvisibility=hidden -O1 "${flags[@]}" "$here/tt_shim_metal.cpp" -o "$tmp/shim.o"
    "$CXX" -shared -o "$tmp/libtt_shim_metal.so" "$tmp/shim.o" -L "$TT_SHIM_LINK_LIBDIR" -ltt_metal -ltt_stl \
        -Wl,--no-undefined -Wl,--allow-shlib-undefined
    echo "OK: every TT-Metal symbol the shim uses resolves in $TT_SHIM_LINK_LIBDIR"
fi
