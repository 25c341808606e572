#!/usr/bin/env bash
# Rebuilds the C guests (src/*.c, and the documentation's example ../async-wasm/guest/example.c
# as greet_example.wasm) into wasm next to this script, with Debian's toolchain:
#   apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32
# The built .wasm files are committed, so that tests and the demo need no C toolchain;
# `CLANG_VERSION` records which clang built them (the tests compare a fresh build with the
# committed files when that same clang is installed).
#
# Usage: guests/build.sh [OUTPUT_DIR]   (default: the guests directory itself)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
clang=${CLANG:-clang}
mkdir -p "$out"
build() {
    local source=$1 name=$2
    "$clang" --target=wasm32-wasi -O2 -mexec-model=reactor \
        -I "$here/../async-wasm/guest" \
        -Wall -Wextra -Werror \
        "$source" -o "$out/$name.wasm"
}
for source in "$here"/src/*.c; do
    build "$source" "$(basename "$source" .c)"
done
build "$here/../async-wasm/guest/example.c" greet_example
if [[ $out == "$here" ]]; then
    "$clang" --version | head -n 1 > "$here/CLANG_VERSION"
fi
