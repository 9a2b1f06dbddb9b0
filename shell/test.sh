#!/usr/bin/env bash
# The README's test command: sets up what the tests need on a fresh machine (the test
# bed, and the shells the profile tests source), then runs the whole suite.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Shells for the emergency-profile tests (Debian packages).
missing=()
for pkg in zsh fish; do command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "test: installing ${missing[*]} (apt-get)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "test: ${missing[*]} not found and no apt-get here; install them for the shell-profile tests" >&2
  fi
fi

bash shell/testbed.sh >/dev/null

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
