#!/usr/bin/env bash
# Installs breakglass: the one documented install. It builds the release binaries
# (shell/build.sh: on Linux the `terraform` shim is static and non-PIE, the fast one),
# copies `breakglass` and `breakglass-shim` into PREFIX/bin (default ~/.local), writes
# the manual pages into PREFIX/share/man/man1 (`breakglass man`), links `terraform`
# and `tofu` to the shim (`breakglass install`: in the platform data directory's
# `shims`, or in PREFIX/share/breakglass/shims when PREFIX is given) and prints the
# PATH line.
#
#   shell/install.sh [PREFIX]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${1:-$HOME/.local}
links=()
[ -n "${1:-}" ] && links=(--dir "$prefix/share/breakglass/shims")
bash "$repo/shell/build.sh" --quiet
target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mkdir -p "$prefix/bin"
install -m 0755 "${target:-$repo/target}/release/breakglass" "${target:-$repo/target}/release/breakglass-shim" "$prefix/bin/"
echo "installed breakglass and breakglass-shim in $prefix/bin" >&2
"$prefix/bin/breakglass" man "$prefix/share/man/man1"
"$prefix/bin/breakglass" install "${links[@]}"
