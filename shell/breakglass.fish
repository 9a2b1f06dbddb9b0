# breakglass emergency shell profile for fish. Put this one line in
# ~/.config/fish/config.fish:
#
#   alias breakglass-shell 'source /path/to/shell/breakglass.fish'
#
# then type `breakglass-shell` on the day the deployment platform is down. In this
# shell only:
#   - the `terraform`/`tofu` shims come first on PATH (`breakglass install --print-dir`,
#     into $BREAKGLASS_SHIM_DIR when it is set), so `terraform` is the shim;
#   - break-glass mode is on (BREAKGLASS=1): terraform runs under the mapped role;
#   - the prompt starts with `[BREAKGLASS ROLE NNm] ` (the role for the current
#     directory and the minutes left of its cached credentials): `fish_prompt` is
#     wrapped, the original kept as `_breakglass_orig_prompt`;
#   - `breakglass_exit` (or `bg-exit`) puts PATH, fish_prompt and BREAKGLASS back.
# Sourcing it again changes nothing. Without `breakglass` on PATH it changes nothing
# and fails.

if set -q _breakglass_shell_dir
    echo "breakglass-shell: already active in this shell (shims from $_breakglass_shell_dir); `breakglass_exit` ends it" >&2
    set -gx BREAKGLASS 1
    return 0
end

if not command -sq breakglass
    printf '%s\n' \
        'breakglass-shell: `breakglass` is not on PATH; nothing was changed' \
        '  fix: install breakglass (e.g. `cargo install --path .`) or add the directory holding `breakglass` to PATH, then source this file again' >&2
    return 1
end

set -l _bg_dir
if test -n "$BREAKGLASS_SHIM_DIR"
    set _bg_dir (command breakglass install --dir "$BREAKGLASS_SHIM_DIR" --print-dir)
else
    set _bg_dir (command breakglass install --print-dir)
end
if test $status -ne 0; or test -z "$_bg_dir"
    echo 'breakglass-shell: `breakglass install --print-dir` failed (see above); nothing was changed' >&2
    return 1
end

# What to put back on exit.
set -g _breakglass_shell_dir $_bg_dir[1]
set -g _breakglass_old_path $PATH
if set -q BREAKGLASS
    set -g _breakglass_old_mode set $BREAKGLASS
else
    set -g _breakglass_old_mode unset
end
if functions -q fish_prompt
    functions -c fish_prompt _breakglass_orig_prompt
else
    function _breakglass_orig_prompt
    end
end

# The prompt marker: `[BREAKGLASS ROLE NNm] `, or `[BREAKGLASS] ` outside a mapped
# project.
function _breakglass_prompt_marker
    set -l marker (command breakglass status --prompt 2>/dev/null)
    if test -n "$marker"
        printf '[BREAKGLASS %s] ' "$marker[1]"
    else
        printf '[BREAKGLASS] '
    end
end

function _breakglass_return
    return $argv[1]
end

function fish_prompt --description 'breakglass marker, then the original prompt'
    set -l last_status $status
    _breakglass_prompt_marker
    # The original prompt sees the last command's status.
    _breakglass_return $last_status
    _breakglass_orig_prompt
end

function breakglass_exit --description 'end break-glass mode in this shell'
    if not set -q _breakglass_shell_dir
        echo 'breakglass-shell: not active in this shell' >&2
        return 1
    end
    # PATH: exactly as before if nothing else changed it, else drop only our entry.
    if test (string join \n -- $PATH | string collect) = (string join \n -- $_breakglass_shell_dir $_breakglass_old_path | string collect)
        set -gx PATH $_breakglass_old_path
    else if set -l i (contains -i -- $_breakglass_shell_dir $PATH)
        set -e PATH[$i]
    end
    functions -e fish_prompt
    functions -c _breakglass_orig_prompt fish_prompt
    if test "$_breakglass_old_mode[1]" = set
        set -gx BREAKGLASS $_breakglass_old_mode[2]
    else
        set -e BREAKGLASS
    end
    echo 'breakglass-shell: break-glass mode off in this shell; PATH and prompt restored' >&2
    set -e _breakglass_shell_dir _breakglass_old_path _breakglass_old_mode
    functions -e _breakglass_orig_prompt _breakglass_prompt_marker _breakglass_return breakglass_exit bg-exit
    return 0
end

function bg-exit --description 'end break-glass mode in this shell'
    breakglass_exit $argv
end

set -gx PATH $_breakglass_shell_dir $PATH
set -gx BREAKGLASS 1

echo "breakglass-shell: break-glass mode ON in this shell: `terraform` is $_breakglass_shell_dir/terraform and runs under the mapped role; `breakglass_exit` ends it" >&2
