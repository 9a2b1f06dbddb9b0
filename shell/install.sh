#!/usr/bin/env bash
# Installs breakglass: builds the release binaries (shell/build.sh), copies
# `breakglass` and `breakglass-shim` into PREFIX/bin (default ~/.local), links
# `terraform` and `tofu` to the shim (`breakglass install`), and prints the PATH line.
#
#   shell/install.sh [PREFIX]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${1:-$HOME/.local}
bash "$repo/shell/build.sh" --quiet
target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mkdir -p "$prefix/bin"
install -m 0755 "${target:-$repo/target}/release/breakglass" "${target:-$repo/target}/release/breakglass-shim" "$prefix/bin/"
echo "installed breakglass and breakglass-shim in $prefix/bin" >&2
"$prefix/bin/breakglass" install
