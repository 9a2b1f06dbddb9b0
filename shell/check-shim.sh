#!/usr/bin/env bash
# CI's check of the shipped `terraform` shim: the file `shell/install.sh` installs must
# stay small and must not carry the AWS SDK (or the async runtime and HTTP stack that
# come with it), which would cost every `terraform` the user types the time to load
# it. Fails (exit 1) when the shim is over 2 MB (2,000,000 bytes) or holds any trace of
# aws-sdk-*, aws-smithy-*, aws-config, aws-sigv4, tokio, hyper or rustls.
#
# The traces are the crates' names that their code leaves in any binary that links it
# (source paths in panic locations, type names), stripped or not. The check proves it
# can see them: the full `breakglass` binary, which links the SDK, must show them, or
# the check fails as blind.
#
#   shell/check-shim.sh                  # build as shell/install.sh does, then check
#   shell/check-shim.sh SHIM FULL        # check these two files (no build)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
limit=2000000
pattern='aws-smithy-[a-z0-9-]+|aws_smithy_[a-z0-9_]+|aws-sdk-[a-z0-9]+|aws_sdk_[a-z0-9]+|aws-config-[0-9]|aws_config::|aws-sigv4|tokio-1\.[0-9]+|hyper-1\.[0-9]+|rustls-0\.[0-9]+'

if [ "$#" -ge 2 ]; then
  shim=$1 full=$2
else
  bash "$repo/shell/build.sh" --quiet
  target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  shim=${target:-$repo/target}/release/breakglass-shim
  full=${target:-$repo/target}/release/breakglass
fi
for f in "$shim" "$full"; do
  [ -f "$f" ] || { echo "check-shim: $f is missing" >&2; exit 1; }
done

traces() { grep -aoE "$pattern" "$1" | sort | uniq -c | sort -rn || true; }

failed=0
size=$(stat -c %s "$shim" 2>/dev/null || stat -f %z "$shim")
if [ "$size" -gt "$limit" ]; then
  echo "check-shim: FAIL $shim is $size bytes, over the 2 MB limit ($limit)" >&2
  failed=1
else
  echo "check-shim: ok   $shim is $size bytes (limit $limit)"
fi
if [ -z "$(traces "$full")" ]; then
  echo "check-shim: FAIL the check is blind: no SDK trace in $full, which links the SDK; update the pattern in $0" >&2
  failed=1
fi
found=$(traces "$shim")
if [ -n "$found" ]; then
  echo "check-shim: FAIL $shim links the AWS SDK or its runtime (trace counts):" >&2
  echo "$found" | head -n 10 >&2
  echo "  fix: keep src/bin/breakglass-shim.rs and the modules it reaches (invocation, config, mapping, mode, activation, terraform, paths, shim, error) free of the SDK, tokio and hyper" >&2
  failed=1
else
  echo "check-shim: ok   $shim holds no trace of the AWS SDK, tokio, hyper or rustls ($(traces "$full" | awk '{n += $1} END {print n}') in the full binary)"
fi
exit "$failed"
