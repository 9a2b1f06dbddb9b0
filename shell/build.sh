#!/usr/bin/env bash
# Builds the release binaries: `breakglass` (the full tool) and `breakglass-shim` (the
# `terraform` shim). On Linux the shim is linked statically and without PIE, which
# takes about half a millisecond off every `terraform` the user types (no dynamic
# loader, almost no relocations); the flags reach only the shim's final link, never
# the dependencies or proc-macros. Elsewhere it is built the ordinary way.
#
#   shell/build.sh [--quiet]      # CARGO_TARGET_DIR is honoured
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quiet=()
[ "${1:-}" = "--quiet" ] && quiet=(--quiet)

cargo build --release --bin breakglass "${quiet[@]}"
if [ "$(uname -s)" = "Linux" ]; then
  cargo rustc --release --bin breakglass-shim "${quiet[@]}" -- \
    -C target-feature=+crt-static -C relocation-model=static
else
  cargo build --release --bin breakglass-shim "${quiet[@]}"
fi
