# Sourced by the project's scripts: installs the Debian packages for commands that are
# missing (each command's package has the same name).
#
#   need_commands TAG CMD...   # returns 1, with a message, when some cannot be installed
need_commands() {
  local tag=$1; shift
  local missing=() sudo=""
  for cmd in "$@"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$tag: ${missing[*]} not found and no apt-get here; install ${missing[*]}" >&2
    return 1
  fi
  echo "$tag: installing ${missing[*]} (apt-get)" >&2
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}
