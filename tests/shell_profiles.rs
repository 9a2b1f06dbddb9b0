//! The emergency shell profiles (`shell/breakglass.{bash,zsh,fish}`), really sourced in
//! bash, zsh and fish with a clean environment: the shim first on PATH, break-glass mode
//! on, the prompt marker, idempotent sourcing, and `breakglass_exit`/`bg-exit` putting
//! everything back.
//!
//! A missing shell fails the test (it never skips): `bash shell/test.sh` installs zsh and
//! fish.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/deploy";

#[derive(Debug, Clone, Copy)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

impl Shell {
    fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }

    /// The shell executable; panics (never skips) when it is not installed.
    fn program(self) -> PathBuf {
        let name = self.name();
        which::which(name)
            .ok()
            .or_else(|| {
                ["/usr/bin", "/bin", "/usr/local/bin"]
                    .iter()
                    .map(|d| Path::new(d).join(name))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| {
                panic!(
                    "{name} is not installed, and the shell-profile tests source shell/breakglass.{name} in it: run `bash shell/test.sh` (it installs zsh and fish with apt-get), or install {name}"
                )
            })
    }

    /// Arguments that keep the user's and the system's rc files out.
    fn args(self) -> &'static [&'static str] {
        match self {
            Shell::Bash => &["--norc", "--noprofile", "-c"],
            Shell::Zsh => &["-f", "-c"],
            Shell::Fish => &["--no-config", "-c"],
        }
    }

    fn profile(self) -> PathBuf {
        repo().join(format!("shell/breakglass.{}", self.name()))
    }

    /// The script that sources the profile (twice), inspects the shell, runs `$EXIT_CMD`
    /// and inspects it again. It prints `key=value` lines.
    fn scenario(self) -> &'static str {
        match self {
            Shell::Bash => BASH_SCENARIO,
            Shell::Zsh => ZSH_SCENARIO,
            Shell::Fish => FISH_SCENARIO,
        }
    }
}

const BASH_SCENARIO: &str = r#"
emit() { printf '%s=%s\n' "$1" "$2"; }
PS1='plain \$ '
before_path=$PATH
before_ps1=$PS1
emit before_prompt "${PS1@P}"
source "$PROFILE"; emit source_rc $?
emit terraform "$(command -v terraform)"
emit mode "${BREAKGLASS-<unset>}"
emit prompt "${PS1@P}"
emit tf_version "$(terraform version 2>&1 | head -n 1)"
path1=$PATH
source "$PROFILE" 2>/dev/null; emit source_again_rc $?
emit path_stable "$([ "$PATH" = "$path1" ] && echo yes || echo "no: $PATH")"
emit prompt_again "${PS1@P}"
$EXIT_CMD; emit exit_rc $?
emit path_restored "$([ "$PATH" = "$before_path" ] && echo yes || echo "no: $PATH")"
emit mode_after "${BREAKGLASS-<unset>}"
emit prompt_restored "$([ "$PS1" = "$before_ps1" ] && echo yes || echo "no: $PS1")"
emit prompt_after "${PS1@P}"
emit terraform_after "$(command -v terraform || echo none)"
emit leftovers "$( { declare -F | awk '{print $3}' | grep -E 'breakglass|bg-exit'; compgen -v | grep -iE '^_breakglass'; [ -n "${PROMPT_COMMAND+x}" ] && echo PROMPT_COMMAND; } | tr '\n' ' ')"
"#;

const ZSH_SCENARIO: &str = r#"
emit() { print -r -- "$1=$2"; }
PROMPT='plain %# '
before_path=$PATH
before_prompt_raw=$PROMPT
[[ -o prompt_subst ]] && before_subst=on || before_subst=off
emit before_prompt "$(print -P "$PROMPT")"
source "$PROFILE"; emit source_rc $?
emit terraform "$(command -v terraform)"
emit mode "${BREAKGLASS-<unset>}"
emit prompt "$(print -P "$PROMPT")"
emit tf_version "$(terraform version 2>&1 | head -n 1)"
path1=$PATH
source "$PROFILE" 2>/dev/null; emit source_again_rc $?
emit path_stable "$([[ $PATH == "$path1" ]] && echo yes || echo "no: $PATH")"
emit prompt_again "$(print -P "$PROMPT")"
$EXIT_CMD; emit exit_rc $?
emit path_restored "$([[ $PATH == "$before_path" ]] && echo yes || echo "no: $PATH")"
emit mode_after "${BREAKGLASS-<unset>}"
[[ -o prompt_subst ]] && after_subst=on || after_subst=off
emit prompt_restored "$([[ $PROMPT == "$before_prompt_raw" && $after_subst == $before_subst ]] && echo yes || echo "no: $PROMPT (prompt_subst $after_subst)")"
emit prompt_after "$(print -P "$PROMPT")"
emit terraform_after "$(command -v terraform || echo none)"
emit leftovers "$( { print -l ${(k)functions} | grep -E 'breakglass|bg-exit'; print -l ${(k)parameters} | grep -iE '^_breakglass'; (( ${+precmd_functions} )) && echo precmd_functions; } | tr '\n' ' ')"
"#;

const FISH_SCENARIO: &str = r#"
function emit; printf '%s=%s\n' $argv[1] (string join ' ' -- $argv[2..-1]); end
set before_path $PATH
set before_prompt_def (functions fish_prompt | string match -rv "^# Defined" | string collect)
emit before_prompt (fish_prompt | string collect)
source $PROFILE; emit source_rc $status
emit terraform (command -v terraform)
emit type_p (type -p terraform)
emit mode (set -q BREAKGLASS; and echo $BREAKGLASS; or echo '<unset>')
emit prompt (fish_prompt | string collect)
emit tf_version (terraform version 2>&1 | head -n 1)
set path1 $PATH
source $PROFILE 2>/dev/null; emit source_again_rc $status
if test (string join : -- $PATH) = (string join : -- $path1); emit path_stable yes; else; emit path_stable "no: $PATH"; end
emit prompt_again (fish_prompt | string collect)
$EXIT_CMD; emit exit_rc $status
if test (string join : -- $PATH) = (string join : -- $before_path); and test (count $PATH) -eq (count $before_path); emit path_restored yes; else; emit path_restored "no: $PATH"; end
emit mode_after (set -q BREAKGLASS; and echo $BREAKGLASS; or echo '<unset>')
if test (functions fish_prompt | string match -rv "^# Defined" | string collect) = "$before_prompt_def"; emit prompt_restored yes; else; emit prompt_restored no; end
emit prompt_after (fish_prompt | string collect)
emit terraform_after (command -v terraform; or echo none)
emit leftovers (begin; functions -a -n | string match -r 'breakglass|bg-exit'; set -n | string match -ri '^_breakglass'; end)
"#;

/// A sandbox whose PATH holds the built `breakglass` (and `breakglass-shim`), a fake
/// real terraform, and the system directories, and a project mapping the deploy role.
fn sandbox() -> (Sandbox, PathBuf) {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    let bin_dir = breakglass_bin().parent().unwrap().to_path_buf();
    let path = std::env::join_paths([
        bin_dir,
        sb.real_dir.clone(),
        "/usr/bin".into(),
        "/bin".into(),
    ])
    .unwrap();
    sb.set("PATH", path).unset("BREAKGLASS_BIN");
    let project = sb.root().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join(".breakglass.toml"),
        format!("region = \"us-east-1\"\n\n[role]\narn = \"{ROLE}\"\n"),
    )
    .unwrap();
    (sb, project)
}

fn run(sb: &Sandbox, shell: Shell, dir: &Path, script: &str, exit_cmd: &str) -> Output {
    sb.command(shell.program())
        .args(shell.args())
        .arg(script)
        .env("PROFILE", shell.profile())
        .env("EXIT_CMD", exit_cmd)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", shell.name()))
}

fn values(shell: Shell, out: &Output) -> BTreeMap<String, String> {
    let text = stdout(out);
    let map: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(
        map.contains_key("leftovers"),
        "{}: the scenario did not finish\nstdout:\n{text}\nstderr:\n{}",
        shell.name(),
        stderr(out)
    );
    map
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Checks one full scenario: on, idempotent, the marker, then exit restores everything.
fn check_scenario(shell: Shell, exit_cmd: &str, shim_dir_env: Option<&str>) {
    let (mut sb, project) = sandbox();
    let expected_dir = match shim_dir_env {
        Some(name) => {
            let d = sb.root().join(name);
            sb.set("BREAKGLASS_SHIM_DIR", d.clone());
            d
        }
        None => sb.root().join("data/breakglass/shims"),
    };
    let out = run(&sb, shell, &project, shell.scenario(), exit_cmd);
    let v = values(shell, &out);
    let ctx = format!(
        "{} ({exit_cmd}):\nstdout:\n{}\nstderr:\n{}",
        shell.name(),
        stdout(&out),
        stderr(&out)
    );
    let name = shell.name();

    assert_eq!(v["source_rc"], "0", "{ctx}");
    let shim = canonical(&expected_dir).join("terraform");
    assert_eq!(v["terraform"], shim.display().to_string(), "{ctx}");
    if let Some(p) = v.get("type_p") {
        assert_eq!(p, &shim.display().to_string(), "{ctx}");
    }
    assert_eq!(
        canonical(&shim),
        canonical(&shim_bin()),
        "{name}: the terraform link is not the shim binary"
    );
    assert_eq!(v["mode"], "1", "{ctx}");
    // The real (fake) terraform ran through the shim: `version` needs no AWS.
    assert_eq!(v["tf_version"], "fake terraform stdout", "{ctx}");

    let before = &v["before_prompt"];
    assert!(!before.is_empty(), "{ctx}");
    assert_eq!(
        v["prompt"],
        format!("[BREAKGLASS deploy] {before}"),
        "{name}: the marker must come first, before the usual prompt\n{ctx}"
    );
    assert_eq!(v["source_again_rc"], "0", "{ctx}");
    assert_eq!(
        v["path_stable"], "yes",
        "{name}: sourcing twice stacked PATH\n{ctx}"
    );
    assert_eq!(
        v["prompt_again"], v["prompt"],
        "{name}: sourcing twice stacked the prompt\n{ctx}"
    );

    assert_eq!(v["exit_rc"], "0", "{ctx}");
    assert_eq!(v["path_restored"], "yes", "{ctx}");
    assert_eq!(v["mode_after"], "<unset>", "{ctx}");
    assert_eq!(v["prompt_restored"], "yes", "{ctx}");
    assert_eq!(&v["prompt_after"], before, "{ctx}");
    assert_eq!(
        v["terraform_after"],
        sb.real_dir.join("terraform").display().to_string(),
        "{name}: after exit `terraform` is the real one again\n{ctx}"
    );
    assert_eq!(
        v["leftovers"].trim(),
        "",
        "{name}: functions or variables left behind\n{ctx}"
    );
}

#[test]
fn bash_profile_puts_the_shim_first_marks_the_prompt_and_exits_cleanly() {
    check_scenario(Shell::Bash, "breakglass_exit", None);
}

#[test]
fn zsh_profile_puts_the_shim_first_marks_the_prompt_and_exits_cleanly() {
    check_scenario(Shell::Zsh, "breakglass_exit", None);
}

#[test]
fn fish_profile_puts_the_shim_first_marks_the_prompt_and_exits_cleanly() {
    check_scenario(Shell::Fish, "breakglass_exit", None);
}

#[test]
fn bg_exit_and_breakglass_shim_dir_work_in_every_shell() {
    for shell in SHELLS {
        check_scenario(shell, "bg-exit", Some("my shims"));
    }
}

/// Prompt frameworks (starship, powerlevel10k, ...) rebuild the prompt before each one:
/// the marker comes back after them, and exit leaves their hooks as they were.
#[test]
fn prompt_frameworks_that_rebuild_the_prompt_keep_the_marker() {
    let scripts = [
        (
            Shell::Bash,
            r#"PS1='plain> '; PROMPT_COMMAND='PS1="theme> "'; before=$PROMPT_COMMAND
source "$PROFILE"
eval "$PROMPT_COMMAND"; echo "prompt=${PS1@P}"
eval "$PROMPT_COMMAND"; echo "prompt2=${PS1@P}"
breakglass_exit 2>/dev/null
[ "$PROMPT_COMMAND" = "$before" ] && echo hooks=same
eval "$PROMPT_COMMAND"; echo "after=${PS1@P}""#,
        ),
        (
            // bash 5.1+: PROMPT_COMMAND as an array.
            Shell::Bash,
            r#"PS1='plain> '; PROMPT_COMMAND=('PS1="theme> "' 'true'); before=$(declare -p PROMPT_COMMAND)
run_hooks() { local c; for c in "${PROMPT_COMMAND[@]}"; do eval "$c"; done; }
source "$PROFILE"
run_hooks; echo "prompt=${PS1@P}"
run_hooks; echo "prompt2=${PS1@P}"
breakglass_exit 2>/dev/null
[ "$(declare -p PROMPT_COMMAND)" = "$before" ] && echo hooks=same
run_hooks; echo "after=${PS1@P}""#,
        ),
        (
            Shell::Zsh,
            r#"PROMPT='plain> '; theme() { PROMPT='theme> ' }; precmd_functions=(theme)
run_hooks() { local f; for f in $precmd_functions; do $f; done }
source "$PROFILE"
run_hooks; echo "prompt=$(print -P "$PROMPT")"
run_hooks; echo "prompt2=$(print -P "$PROMPT")"
breakglass_exit 2>/dev/null
[[ ${(j: :)precmd_functions} == theme ]] && ! [[ -o prompt_subst ]] && echo hooks=same
run_hooks; echo "after=$(print -P "$PROMPT")""#,
        ),
    ];
    for (shell, script) in scripts {
        let (sb, project) = sandbox();
        let out = run(&sb, shell, &project, script, "breakglass_exit");
        let text = stdout(&out);
        let ctx = format!(
            "{}:\nstdout:\n{text}\nstderr:\n{}",
            shell.name(),
            stderr(&out)
        );
        for line in [
            "prompt=[BREAKGLASS deploy] theme> ",
            "prompt2=[BREAKGLASS deploy] theme> ",
            "hooks=same",
            "after=theme> ",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?}: {ctx}");
        }
    }
}

/// In POSIX mode bash refuses `bg-exit` as a function name, fatally: the profile must
/// skip it there and still work.
#[test]
fn bash_in_posix_mode_sources_it_without_bg_exit() {
    let (sb, project) = sandbox();
    let script = r#"PS1='p> '; before=$PATH
. "$PROFILE"; echo "rc=$?"; echo "prompt=${PS1@P}"; echo "mode=$BREAKGLASS"
breakglass_exit; echo "exit_rc=$?"
[ "$PATH" = "$before" ] && echo path=same; echo "after=${PS1@P}""#;
    let out = sb
        .command(Shell::Bash.program())
        .args(["--posix", "--norc", "--noprofile", "-c", script])
        .env("PROFILE", Shell::Bash.profile())
        .current_dir(&project)
        .output()
        .unwrap();
    let text = stdout(&out);
    let ctx = format!("stdout:\n{text}\nstderr:\n{}", stderr(&out));
    for line in [
        "rc=0",
        "prompt=[BREAKGLASS deploy] p> ",
        "mode=1",
        "exit_rc=0",
        "path=same",
        "after=p> ",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}: {ctx}");
    }
}

#[test]
fn outside_a_project_the_marker_has_no_role() {
    for shell in SHELLS {
        let (sb, _project) = sandbox();
        let elsewhere = sb.root().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let out = run(&sb, shell, &elsewhere, shell.scenario(), "breakglass_exit");
        let v = values(shell, &out);
        assert_eq!(
            v["prompt"],
            format!("[BREAKGLASS] {}", v["before_prompt"]),
            "{}: {}",
            shell.name(),
            stderr(&out)
        );
        assert_eq!(v["path_restored"], "yes", "{}", shell.name());
    }
}

#[test]
fn without_breakglass_on_path_sourcing_fails_and_changes_nothing() {
    let scripts = [
        (
            Shell::Bash,
            r#"PS1='p> '; before=$PATH; source "$PROFILE"; rc=$?
echo "rc=$rc"; [ "$PATH" = "$before" ] && echo path=same; [ "$PS1" = 'p> ' ] && echo prompt=same
echo "mode=${BREAKGLASS-<unset>}"; declare -F breakglass_exit >/dev/null || echo funcs=none"#,
        ),
        (
            Shell::Zsh,
            r#"PROMPT='p> '; before=$PATH; source "$PROFILE"; rc=$?
echo "rc=$rc"; [[ $PATH == "$before" ]] && echo path=same; [[ $PROMPT == 'p> ' ]] && ! [[ -o prompt_subst ]] && echo prompt=same
echo "mode=${BREAKGLASS-<unset>}"; (( ${+functions[breakglass_exit]} )) || echo funcs=none"#,
        ),
        (
            Shell::Fish,
            r#"set before $PATH; set before_prompt (functions fish_prompt | string collect); source $PROFILE; set rc $status
echo "rc=$rc"; test (string join : -- $PATH) = (string join : -- $before); and echo path=same; test (functions fish_prompt | string collect) = "$before_prompt"; and echo prompt=same
set -q BREAKGLASS; and echo mode=$BREAKGLASS; or echo 'mode=<unset>'; functions -q breakglass_exit; or echo funcs=none"#,
        ),
    ];
    for (shell, script) in scripts {
        let (mut sb, project) = sandbox();
        sb.set("PATH", "/usr/bin:/bin");
        assert!(
            !Path::new("/usr/bin/breakglass").exists() && !Path::new("/bin/breakglass").exists(),
            "a system-wide breakglass is installed; this test needs it off PATH"
        );
        let out = run(&sb, shell, &project, script, "breakglass_exit");
        let text = stdout(&out);
        let err = stderr(&out);
        let ctx = format!("{}:\nstdout:\n{text}\nstderr:\n{err}", shell.name());
        assert!(text.contains("rc=1"), "{ctx}");
        for line in ["path=same", "prompt=same", "mode=<unset>", "funcs=none"] {
            assert!(text.lines().any(|l| l == line), "missing {line}: {ctx}");
        }
        assert!(err.contains("`breakglass` is not on PATH"), "{ctx}");
        assert!(err.contains("nothing was changed"), "{ctx}");
    }
}

#[test]
fn a_failing_install_changes_nothing() {
    // The shim directory holds a `terraform` that is not a breakglass link.
    let script = |shell: Shell| match shell {
        Shell::Bash => {
            r#"before=$PATH; source "$PROFILE"; echo "rc=$?"; [ "$PATH" = "$before" ] && echo path=same; echo "mode=${BREAKGLASS-<unset>}""#
        }
        Shell::Zsh => {
            r#"before=$PATH; source "$PROFILE"; echo "rc=$?"; [[ $PATH == "$before" ]] && echo path=same; echo "mode=${BREAKGLASS-<unset>}""#
        }
        Shell::Fish => {
            r#"set before $PATH; source $PROFILE; echo "rc=$status"; test (string join : -- $PATH) = (string join : -- $before); and echo path=same; set -q BREAKGLASS; and echo mode=$BREAKGLASS; or echo 'mode=<unset>'"#
        }
    };
    for shell in SHELLS {
        let (mut sb, project) = sandbox();
        let dir = sb.root().join("occupied");
        std::fs::create_dir_all(&dir).unwrap();
        write_exe(&dir.join("terraform"), "#!/bin/sh\n");
        sb.set("BREAKGLASS_SHIM_DIR", dir);
        let out = run(&sb, shell, &project, script(shell), "breakglass_exit");
        let text = stdout(&out);
        let ctx = format!(
            "{}:\nstdout:\n{text}\nstderr:\n{}",
            shell.name(),
            stderr(&out)
        );
        assert!(text.contains("rc=1"), "{ctx}");
        assert!(text.contains("path=same"), "{ctx}");
        assert!(text.contains("mode=<unset>"), "{ctx}");
        assert!(stderr(&out).contains("is not a breakglass link"), "{ctx}");
    }
}

#[test]
fn the_marker_shows_the_minutes_left_of_cached_credentials() {
    let moto = Moto::start();
    let bed = moto.setup_enforced();
    let (mut sb, project) = sandbox();
    sb.aws_as(&moto, &bed.user("alice"));
    // The session name (and so the cache entry) follows the login name: zsh exports
    // LOGNAME when it is unset and fish always sets USER to the account's name, bash
    // sets neither. Set both as a login would.
    let login = Command::new("id").arg("-un").output().unwrap();
    let login = stdout(&login).trim().to_string();
    sb.set("USER", login.clone()).set("LOGNAME", login);
    // Cache credentials for the deploy role (as the first terraform run would).
    let out = sb
        .breakglass(&["credentials"])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for shell in SHELLS {
        let out = run(&sb, shell, &project, shell.scenario(), "breakglass_exit");
        let v = values(shell, &out);
        let prompt = &v["prompt"];
        let rest = prompt
            .strip_prefix("[BREAKGLASS deploy ")
            .unwrap_or_else(|| panic!("{}: prompt {prompt:?}", shell.name()));
        let (minutes, after) = rest.split_once("m] ").unwrap_or_else(|| {
            panic!("{}: prompt {prompt:?}", shell.name());
        });
        let minutes: u64 = minutes
            .parse()
            .unwrap_or_else(|_| panic!("{}: prompt {prompt:?}", shell.name()));
        assert!((50..=60).contains(&minutes), "{}: {prompt:?}", shell.name());
        assert_eq!(after, v["before_prompt"], "{}", shell.name());
    }
}

#[test]
fn each_profile_starts_with_the_alias_line_for_the_rc_file() {
    for (shell, alias) in [
        (
            Shell::Bash,
            "alias breakglass-shell='source /path/to/shell/breakglass.bash'",
        ),
        (
            Shell::Zsh,
            "alias breakglass-shell='source /path/to/shell/breakglass.zsh'",
        ),
        (
            Shell::Fish,
            "alias breakglass-shell 'source /path/to/shell/breakglass.fish'",
        ),
    ] {
        let text = std::fs::read_to_string(shell.profile()).unwrap();
        let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(
            header
                .iter()
                .any(|l| l.trim_start_matches('#').trim() == alias),
            "{}: the header comment must give `{alias}`",
            shell.name()
        );
    }
}
