#!/usr/bin/env bash
# The README's test command: sets up what the tests need on a fresh machine (the test
# bed, and the shells the profile tests source), then runs the whole suite. It uses the
# dev build `shell/demo.sh` made, so after the demo only the test code is compiled.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

. "$repo/shell/need.sh"
# Shells for the emergency-profile tests. Without apt-get, go on: those tests then fail
# with a message naming this script. A failed install stops here.
if ! need_commands test zsh fish && command -v apt-get >/dev/null 2>&1; then exit 1; fi

bash shell/testbed.sh >/dev/null

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
