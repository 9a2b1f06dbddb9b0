# breakglass emergency shell profile for zsh. Put this one line in ~/.zshrc:
#
#   alias breakglass-shell='source /path/to/shell/breakglass.zsh'
#
# then type `breakglass-shell` on the day the deployment platform is down. In this
# shell only:
#   - the `terraform`/`tofu` shims come first on PATH (`breakglass install --print-dir`,
#     into $BREAKGLASS_SHIM_DIR when it is set), so `terraform` is the shim;
#   - break-glass mode is on (BREAKGLASS=1): terraform runs under the mapped role;
#   - the prompt starts with `[BREAKGLASS ROLE NNm] ` (the role for the current
#     directory and the minutes left of its cached credentials), through
#     `setopt prompt_subst` (put back as it was on exit); a precmd hook puts the
#     marker back when a prompt theme (powerlevel10k, starship, ...) rebuilds PROMPT;
#   - `breakglass_exit` (or `bg-exit`) puts PATH, the prompt, prompt_subst, the
#     precmd hooks and BREAKGLASS back, and removes its functions.
# Sourcing it again changes nothing. Without `breakglass` on PATH it changes nothing
# and fails.

if [[ -n ${_BREAKGLASS_SHELL_DIR-} ]]; then
  print -ru2 -- "breakglass-shell: already active in this shell (shims from $_BREAKGLASS_SHELL_DIR); \`breakglass_exit\` ends it"
  export BREAKGLASS=1
  return 0
fi

if ! whence -p breakglass >/dev/null 2>&1; then
  print -ru2 -- 'breakglass-shell: `breakglass` is not on PATH; nothing was changed' \
    '  fix: install breakglass (e.g. `cargo install --path .`) or add the directory holding `breakglass` to PATH, then source this file again'
  return 1
fi

() {
  local dir
  if [[ -n ${BREAKGLASS_SHIM_DIR-} ]]; then
    dir=$(command breakglass install --dir "$BREAKGLASS_SHIM_DIR" --print-dir) || dir=
  else
    dir=$(command breakglass install --print-dir) || dir=
  fi
  typeset -g _BREAKGLASS_SHELL_DIR=$dir
}
if [[ -z $_BREAKGLASS_SHELL_DIR ]]; then
  unset _BREAKGLASS_SHELL_DIR
  print -ru2 -- 'breakglass-shell: `breakglass install --print-dir` failed (see above); nothing was changed'
  return 1
fi

# What to put back on exit.
typeset -g _BREAKGLASS_OLD_PATH=$PATH
if (( ${+BREAKGLASS} )); then typeset -g _BREAKGLASS_OLD_MODE="set:$BREAKGLASS"; else typeset -g _BREAKGLASS_OLD_MODE=unset; fi
typeset -g _BREAKGLASS_OLD_PROMPT=$PROMPT
if [[ -o prompt_subst ]]; then typeset -g _BREAKGLASS_OLD_SUBST=on; else typeset -g _BREAKGLASS_OLD_SUBST=off; fi
if (( ${+precmd_functions} )); then typeset -g _BREAKGLASS_OLD_HOOKS=set; else typeset -g _BREAKGLASS_OLD_HOOKS=unset; fi

# The prompt marker: `[BREAKGLASS ROLE NNm] `, or `[BREAKGLASS] ` outside a mapped
# project.
_breakglass_prompt() {
  emulate -L zsh
  local marker
  marker=$(command breakglass status --prompt 2>/dev/null) || marker=
  if [[ -n $marker ]]; then
    print -rn -- "[BREAKGLASS ${marker//\%/%%}] "
  else
    print -rn -- '[BREAKGLASS] '
  fi
}

# Before each prompt, after the theme's hooks: put the marker back if something
# rebuilt PROMPT without it.
_breakglass_precmd() {
  [[ $PROMPT == *'$(_breakglass_prompt)'* ]] || PROMPT='$(_breakglass_prompt)'"$PROMPT"
  [[ -o prompt_subst ]] || setopt prompt_subst
}

breakglass_exit() {
  # No `emulate -L`: the option changes below are for the caller.
  if [[ -z ${_BREAKGLASS_SHELL_DIR-} ]]; then
    print -ru2 -- 'breakglass-shell: not active in this shell'
    return 1
  fi
  # PATH: exactly as before if nothing else changed it, else drop only our entry.
  if [[ $PATH == "$_BREAKGLASS_SHELL_DIR${_BREAKGLASS_OLD_PATH:+:$_BREAKGLASS_OLD_PATH}" ]]; then
    PATH=$_BREAKGLASS_OLD_PATH
  else
    local p=":$PATH:"
    p=${p/:${(b)_BREAKGLASS_SHELL_DIR}:/:}
    p=${p#:}
    PATH=${p%:}
  fi
  export PATH
  rehash
  # The prompt: as before if nothing else changed it, else drop only the marker.
  if [[ $PROMPT == "$_BREAKGLASS_NEW_PROMPT" ]]; then
    PROMPT=$_BREAKGLASS_OLD_PROMPT
  else
    PROMPT=${PROMPT//'$(_breakglass_prompt)'/}
  fi
  [[ $_BREAKGLASS_OLD_SUBST == off ]] && unsetopt prompt_subst
  precmd_functions=(${precmd_functions:#_breakglass_precmd})
  [[ $_BREAKGLASS_OLD_HOOKS == unset && ${#precmd_functions} -eq 0 ]] && unset precmd_functions
  case $_BREAKGLASS_OLD_MODE in
    set:*) export BREAKGLASS="${_BREAKGLASS_OLD_MODE#set:}" ;;
    *) unset BREAKGLASS ;;
  esac
  print -ru2 -- 'breakglass-shell: break-glass mode off in this shell; PATH and prompt restored'
  unset _BREAKGLASS_SHELL_DIR _BREAKGLASS_OLD_PATH _BREAKGLASS_OLD_MODE _BREAKGLASS_OLD_PROMPT \
    _BREAKGLASS_OLD_SUBST _BREAKGLASS_NEW_PROMPT _BREAKGLASS_OLD_HOOKS
  unfunction _breakglass_prompt _breakglass_precmd breakglass_exit bg-exit 2>/dev/null
  return 0
}
bg-exit() { breakglass_exit "$@"; }

PATH="$_BREAKGLASS_SHELL_DIR${PATH:+:$PATH}"
export PATH
rehash
export BREAKGLASS=1
setopt prompt_subst
PROMPT='$(_breakglass_prompt)'"$PROMPT"
typeset -g _BREAKGLASS_NEW_PROMPT=$PROMPT
typeset -ga precmd_functions
precmd_functions+=(_breakglass_precmd)

print -ru2 -- "breakglass-shell: break-glass mode ON in this shell: \`terraform\` is $_BREAKGLASS_SHELL_DIR/terraform and runs under the mapped role; \`breakglass_exit\` ends it"
