#!/usr/bin/env bash
# Builds the shipped release binaries: `breakglass` (the full tool) and
# `breakglass-shim` (the `terraform` shim). This is what `shell/install.sh` installs
# and `shell/bench.sh` measures.
#
# On Linux the shim is linked statically and without PIE, which takes about half a
# millisecond off every `terraform` the user types (no dynamic loader, almost no
# relocations), and the full binary is linked without PIE, so the break-glass path
# does not apply the SDK's tens of thousands of relocations at every start. The flags
# reach only each binary's own crate and final link, never the dependencies or
# proc-macros. Elsewhere both are built the ordinary way.
#
#   shell/build.sh [--quiet]      # CARGO_TARGET_DIR is honoured
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quiet=()
[ "${1:-}" = "--quiet" ] && quiet=(--quiet)

if [ "$(uname -s)" = "Linux" ]; then
  cargo rustc --release --bin breakglass "${quiet[@]}" -- -C relocation-model=static
  cargo rustc --release --bin breakglass-shim "${quiet[@]}" -- \
    -C target-feature=+crt-static -C relocation-model=static
else
  cargo build --release --bin breakglass --bin breakglass-shim "${quiet[@]}"
fi
