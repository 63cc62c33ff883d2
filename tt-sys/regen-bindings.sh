#!/usr/bin/env bash
# Regenerate tt-sys/src/bindings.rs from tt-sys/include/tt_shim.h.
#
# The normal build never runs bindgen or needs libclang: the output is committed. Run this script after
# every change to tt_shim.h and commit both files together. It installs what it needs:
#   - libclang from PyPI (`pip install libclang==18.1.1`), found through LIBCLANG_PATH;
#   - bindgen-cli 0.73.2 (`cargo install bindgen-cli --locked`) when `bindgen` is not that version.
# All flags are pinned here so the output is reproducible (same bindgen + libclang => same bytes).
set -euo pipefail

BINDGEN_VERSION=0.73.2
LIBCLANG_VERSION=18.1.1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
header="$here/include/tt_shim.h"
out="$here/src/bindings.rs"

python3 -c "import clang" 2>/dev/null || python3 -m pip install --quiet "libclang==${LIBCLANG_VERSION}"
LIBCLANG_PATH="$(python3 -c "import clang,os;print(os.path.join(os.path.dirname(clang.__file__),'native'))")"
export LIBCLANG_PATH

BINDGEN="${BINDGEN:-$(command -v bindgen || echo "$HOME/.cargo/bin/bindgen")}"
if ! "$BINDGEN" --version 2>/dev/null | grep -q "bindgen ${BINDGEN_VERSION}\$"; then
    cargo install bindgen-cli --version "${BINDGEN_VERSION}" --locked
    BINDGEN="$HOME/.cargo/bin/bindgen"
fi

# The flags. Keep this list and the comment written into bindings.rs in step.
flags=(
    --rust-target 1.85
    --rust-edition 2024
    --use-core
    --formatter none
    --constified-enum-module '.*'
    --allowlist-file '.*/tt_shim\.h'
    --blocklist-function tt_shim_get_api
    --with-derive-default
    --no-doc-comments
)
# `tt_shim_get_api` is blocklisted: providers are found at run time (see loader.rs); its type is
# `tt_shim_get_api_fn`. Doc comments are off because the header's comments are C prose; read the header.

# The PyPI libclang has no compiler resource headers (stddef.h, stdbool.h): take the C compiler's.
resource_include="$(cc -print-file-name=include)"
[ -f "$resource_include/stddef.h" ] || { echo "need a C compiler (cc) for stddef.h/stdbool.h" >&2; exit 1; }
clang_args=(-x c -std=c11 --target=x86_64-unknown-linux-gnu -isystem "$resource_include")

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
"$BINDGEN" "${flags[@]}" "$header" -o "$tmp" -- "${clang_args[@]}"

{
    echo "// @generated from tt-sys/include/tt_shim.h by tt-sys/regen-bindings.sh -- do not edit by hand."
    echo "// bindgen ${BINDGEN_VERSION} with libclang ${LIBCLANG_VERSION} (PyPI \`libclang\`):"
    printf '//   bindgen'
    for f in "${flags[@]}"; do printf " '%s'" "$f"; done
    echo " include/tt_shim.h -- -x c -std=c11 --target=x86_64-unknown-linux-gnu -isystem <cc -print-file-name=include>"
    echo "// Layout assertions below are checked at compile time for the target (LP64: x86_64, aarch64 Linux)."
    echo
    cat "$tmp"
} > "$out"
rustfmt --edition 2024 "$out"
echo "wrote $out"
