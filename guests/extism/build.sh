#!/bin/sh
# Rebuilds the Extism plugins from their sources:
#   rust_plugin.wasm       Rust PDK, wasm32-unknown-unknown
#   rust_plugin_wasi.wasm  Rust PDK, wasm32-wasip1 (adds `wasi_print`)
#   as_plugin.wasm         AssemblyScript PDK
#   as_plugin_wasi.wasm    AssemblyScript PDK with @assemblyscript/wasi-shim (adds `wasi_print`)
# Usage: build.sh [OUT_DIR] (default: this directory, where the committed plugins are).
# Needs rustup's wasm32-unknown-unknown and wasm32-wasip1 targets, node and npm. Every version
# is pinned (rust/Cargo.lock, as/package-lock.json); TOOLCHAIN records the compilers that built
# the committed files. The same sources and toolchain give the same bytes: source paths are
# remapped, and neither compiler writes a timestamp.
# ONLY=rust or ONLY=as builds one language.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ "${ONLY:-rust}" = rust ]; then
    cargo_home=${CARGO_HOME:-$HOME/.cargo}
    # The target directory stays inside the source tree (ignored by git), whatever OUT_DIR is:
    # a rebuild for comparison is then incremental.
    target="$here/rust/target"
    # These flags are the build's own: none from the caller's environment (a cargo that runs
    # this script, say) may add to them.
    unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET
    export RUSTFLAGS="--remap-path-prefix=$here/rust=/plugin --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$target=/target"
    export CARGO_TARGET_DIR="$target"
    for triple in wasm32-unknown-unknown wasm32-wasip1; do
        cargo build --quiet --locked --release --manifest-path "$here/rust/Cargo.toml" --target "$triple"
    done
    cp "$target/wasm32-unknown-unknown/release/extism_rust_plugin.wasm" "$out/rust_plugin.wasm"
    cp "$target/wasm32-wasip1/release/extism_rust_plugin.wasm" "$out/rust_plugin_wasi.wasm"
fi

if [ "${ONLY:-as}" = as ]; then
    cd "$here/as"
    [ -x node_modules/.bin/asc ] || npm ci --no-audit --no-fund --silent
    # Extism's hosts provide no `env.abort`: the plugin's own abort reports through error_set.
    node_modules/.bin/asc assembly/index.ts -Oz --noAssert \
        --use abort=assembly/index/abort_plugin -o "$out/as_plugin.wasm"
    # The shim exports its start function; Extism's hosts call `_initialize` (a WASI reactor's
    # name) before the first call, so that is the name it gets.
    node_modules/.bin/asc assembly/wasi.ts -Oz --noAssert \
        --config node_modules/@assemblyscript/wasi-shim/asconfig.json \
        --exportStart _initialize -o "$out/as_plugin_wasi.wasm"
fi

if [ "$out" = "$here" ] && [ -z "${ONLY:-}" ]; then
    {
        rustc --version
        echo "assemblyscript $("$here/as/node_modules/.bin/asc" --version | sed 's/^Version //')"
        echo "node $(node --version)"
    } > "$here/TOOLCHAIN"
fi
