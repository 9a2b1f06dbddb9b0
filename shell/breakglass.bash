# breakglass emergency shell profile for bash. Put this one line in ~/.bashrc:
#
#   alias breakglass-shell='source /path/to/shell/breakglass.bash'
#
# then type `breakglass-shell` on the day the deployment platform is down. In this
# shell only:
#   - the `terraform`/`tofu` shims come first on PATH (`breakglass install --print-dir`,
#     into $BREAKGLASS_SHIM_DIR when it is set), so `terraform` is the shim;
#   - break-glass mode is on (BREAKGLASS=1): terraform runs under the mapped role;
#   - the prompt starts with `[BREAKGLASS ROLE NNm] ` (the role for the current
#     directory and the minutes left of its cached credentials): PS1 runs
#     `breakglass status --prompt`, and a PROMPT_COMMAND entry puts the marker back
#     when a prompt framework (starship, ...) rebuilds PS1;
#   - `breakglass_exit` (or `bg-exit`) puts PATH, PS1, PROMPT_COMMAND and BREAKGLASS
#     back, and removes its functions.
# Sourcing it again changes nothing. Without `breakglass` on PATH it changes nothing
# and fails.

if [ -n "${_BREAKGLASS_SHELL_DIR-}" ]; then
  printf 'breakglass-shell: already active in this shell (shims from %s); `breakglass_exit` ends it\n' \
    "$_BREAKGLASS_SHELL_DIR" >&2
  export BREAKGLASS=1
  return 0 2>/dev/null || exit 0
fi

if ! command -v breakglass >/dev/null 2>&1; then
  printf '%s\n' \
    'breakglass-shell: `breakglass` is not on PATH; nothing was changed' \
    '  fix: install breakglass (e.g. `cargo install --path .`) or add the directory holding `breakglass` to PATH, then source this file again' >&2
  return 1 2>/dev/null || exit 1
fi

_breakglass_shell_dir=$(
  if [ -n "${BREAKGLASS_SHIM_DIR-}" ]; then
    command breakglass install --dir "$BREAKGLASS_SHIM_DIR" --print-dir
  else
    command breakglass install --print-dir
  fi
) && [ -n "$_breakglass_shell_dir" ] || {
  unset _breakglass_shell_dir
  printf '%s\n' 'breakglass-shell: `breakglass install --print-dir` failed (see above); nothing was changed' >&2
  return 1 2>/dev/null || exit 1
}

# What to put back on exit.
_BREAKGLASS_SHELL_DIR=$_breakglass_shell_dir
unset _breakglass_shell_dir
_BREAKGLASS_OLD_PATH=$PATH
if [ -n "${BREAKGLASS+x}" ]; then _BREAKGLASS_OLD_MODE="set:$BREAKGLASS"; else _BREAKGLASS_OLD_MODE=unset; fi
if [ -n "${PS1+x}" ]; then _BREAKGLASS_OLD_PS1="set:$PS1"; else _BREAKGLASS_OLD_PS1=unset; fi
if [ -n "${PROMPT_COMMAND+x}" ]; then _BREAKGLASS_OLD_PC="set:$PROMPT_COMMAND"; else _BREAKGLASS_OLD_PC=unset; fi

# The prompt marker: `[BREAKGLASS ROLE NNm] `, or `[BREAKGLASS] ` outside a mapped
# project. It keeps `$?` for the rest of the prompt.
_breakglass_prompt() {
  local rc=$? marker
  marker=$(command breakglass status --prompt 2>/dev/null) || marker=
  if [ -n "$marker" ]; then
    printf '[BREAKGLASS %s] ' "$marker"
  else
    printf '[BREAKGLASS] '
  fi
  return "$rc"
}

# Before each prompt, after everything else in PROMPT_COMMAND: put the marker back
# if something rebuilt PS1 without it.
_breakglass_precmd() {
  local rc=$?
  case ${PS1-} in
    *'$(_breakglass_prompt)'*) ;;
    *) PS1='$(_breakglass_prompt)'"${PS1-}" ;;
  esac
  return "$rc"
}

breakglass_exit() {
  if [ -z "${_BREAKGLASS_SHELL_DIR-}" ]; then
    printf 'breakglass-shell: not active in this shell\n' >&2
    return 1
  fi
  # PATH: exactly as before if nothing else changed it, else drop only our entry.
  if [ "$PATH" = "$_BREAKGLASS_SHELL_DIR${_BREAKGLASS_OLD_PATH:+:$_BREAKGLASS_OLD_PATH}" ]; then
    PATH=$_BREAKGLASS_OLD_PATH
  else
    local p=":$PATH:"
    p=${p/":$_BREAKGLASS_SHELL_DIR:"/:}
    p=${p#:}
    PATH=${p%:}
  fi
  export PATH
  hash -r
  # The prompt: as before if nothing else changed it, else drop only the marker.
  if [ "${PS1-}" = "$_BREAKGLASS_NEW_PS1" ]; then
    case $_BREAKGLASS_OLD_PS1 in
      set:*) PS1=${_BREAKGLASS_OLD_PS1#set:} ;;
      *) unset PS1 ;;
    esac
  else
    PS1=${PS1//'$(_breakglass_prompt)'/}
  fi
  # PROMPT_COMMAND: as before if nothing else changed it, else drop only our entry.
  case $(declare -p PROMPT_COMMAND 2>/dev/null) in
    'declare -a'*)
      local i
      for i in "${!PROMPT_COMMAND[@]}"; do
        if [ "${PROMPT_COMMAND[$i]}" = _breakglass_precmd ]; then unset 'PROMPT_COMMAND[i]'; fi
      done
      ;;
    *)
      if [ "${PROMPT_COMMAND-}" = "$_BREAKGLASS_NEW_PC" ]; then
        case $_BREAKGLASS_OLD_PC in
          set:*) PROMPT_COMMAND=${_BREAKGLASS_OLD_PC#set:} ;;
          *) unset PROMPT_COMMAND ;;
        esac
      else
        PROMPT_COMMAND=${PROMPT_COMMAND//$'\n'_breakglass_precmd/}
        PROMPT_COMMAND=${PROMPT_COMMAND//_breakglass_precmd/}
      fi
      ;;
  esac
  case $_BREAKGLASS_OLD_MODE in
    set:*) export BREAKGLASS="${_BREAKGLASS_OLD_MODE#set:}" ;;
    *) unset BREAKGLASS ;;
  esac
  printf 'breakglass-shell: break-glass mode off in this shell; PATH and prompt restored\n' >&2
  unset _BREAKGLASS_SHELL_DIR _BREAKGLASS_OLD_PATH _BREAKGLASS_OLD_MODE _BREAKGLASS_OLD_PS1 \
    _BREAKGLASS_NEW_PS1 _BREAKGLASS_OLD_PC _BREAKGLASS_NEW_PC
  unset -f _breakglass_prompt _breakglass_precmd breakglass_exit bg-exit 2>/dev/null
  return 0
}
# `bg-exit`, where bash allows the name: in POSIX mode the definition would be a
# fatal error that ends the shell, so it is skipped there.
case :${SHELLOPTS-}: in
  *:posix:*) ;;
  *) eval 'bg-exit() { breakglass_exit "$@"; }' ;;
esac

PATH="$_BREAKGLASS_SHELL_DIR${PATH:+:$PATH}"
export PATH
hash -r
export BREAKGLASS=1
PS1='$(_breakglass_prompt)'"${PS1-}"
_BREAKGLASS_NEW_PS1=$PS1
case $(declare -p PROMPT_COMMAND 2>/dev/null) in
  'declare -a'*) PROMPT_COMMAND+=(_breakglass_precmd) ;; # bash 5.1+ array form
  *) PROMPT_COMMAND="${PROMPT_COMMAND:+$PROMPT_COMMAND$'\n'}_breakglass_precmd" ;;
esac
_BREAKGLASS_NEW_PC=${PROMPT_COMMAND-}

printf 'breakglass-shell: break-glass mode ON in this shell: `terraform` is %s/terraform and runs under the mapped role; `breakglass_exit` ends it\n' \
  "$_BREAKGLASS_SHELL_DIR" >&2
