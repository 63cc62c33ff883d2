#!/usr/bin/env bash
# Prints, one per line, the include directories needed to compile tt_shim_metal.cpp against the
# TT-Metal tree at $1 (a TT_METAL_HOME-like source/build tree). Used by tt-sys/build.rs and by
# check-syntax.sh so both look in the same places.
#
# TT-Metal's own headers: tt_metal/api, tt_metal/hostdevcommon/api, tt_stl, and the UMD submodule's
# device/api. Third-party headers (fmt, nlohmann_json, enchantum, reflect, tt-logger, spdlog) are found
# in TT-Metal's CPM source cache ($CPM_SOURCE_CACHE, or <root>/.cpmcache as build_metal.sh leaves it),
# in <root>/build*/_deps, or in colon-separated $TT_SHIM_EXTRA_INCLUDES; the system include path is
# used when they are installed there. Exit status 2 (after printing what was found) when something is
# missing; the missing headers are named on stderr.
set -uo pipefail
root="${1:?usage: include-dirs.sh TT_METAL_HOME}"
missing=0

emit_if() { [ -d "$1" ] && echo "$1"; }

api=""
for d in "$root/tt_metal/api" "$root/build/include" "$root/build_Release/include" "$root/include"; do
    if [ -f "$d/tt-metalium/host_api.hpp" ]; then api="$d"; break; fi
done
if [ -z "$api" ]; then
    echo "include-dirs.sh: no tt-metalium/host_api.hpp under $root (tt_metal/api, build*/include, include)" >&2
    missing=1
else
    echo "$api"
fi
emit_if "$root/tt_metal/hostdevcommon/api"
emit_if "$root/tt_metal"
emit_if "$root/tt_stl"
emit_if "$root/tt_metal/third_party/umd/device/api"
[ -f "$root/tt_stl/tt_stl/span.hpp" ] || [ -f "$api/tt_stl/span.hpp" ] || { echo "include-dirs.sh: tt_stl headers not found" >&2; missing=1; }
[ -f "$root/tt_metal/third_party/umd/device/api/umd/device/types/arch.hpp" ] || [ -f "$api/umd/device/types/arch.hpp" ] ||
    { echo "include-dirs.sh: UMD headers not found (git submodule update --init tt_metal/third_party/umd)" >&2; missing=1; }

search_roots=()
IFS=: read -r -a extra <<< "${TT_SHIM_EXTRA_INCLUDES:-}"
for e in "${extra[@]}"; do [ -n "$e" ] && search_roots+=("$e"); done
[ -n "${CPM_SOURCE_CACHE:-}" ] && search_roots+=("$CPM_SOURCE_CACHE")
search_roots+=("$root/.cpmcache")
for b in "$root"/build*/_deps; do [ -d "$b" ] && search_roots+=("$b"); done

# marker = a header path as the sources include it; the include dir is the found path minus the marker.
for marker in fmt/base.h nlohmann/json.hpp enchantum/enchantum.hpp reflect tt-logger/tt-logger.hpp spdlog/spdlog.h; do
    found=""
    for s in "${search_roots[@]}"; do
        [ -d "$s" ] || continue
        if [ -f "$s/$marker" ]; then found="$s"; break; fi
        hit="$(find "$s" -type f -path "*/$marker" -not -path "*/test*/*" -not -path "*/third_party/*" \
               -not -path "*/benchmarks/*" 2>/dev/null | sort | head -n 1)"
        if [ -n "$hit" ]; then found="${hit%/"$marker"}"; break; fi
    done
    if [ -n "$found" ]; then
        echo "$found"
    elif [ -f "/usr/include/$marker" ] || [ -f "/usr/local/include/$marker" ]; then
        :  # on the system include path
    else
        echo "include-dirs.sh: $marker not found (searched: ${search_roots[*]}, /usr/include)" >&2
        missing=1
    fi
done
[ "$missing" = 0 ] || exit 2
