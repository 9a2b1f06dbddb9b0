//! The `breakglass` management CLI.

mod credentials;
mod doctor_format;
mod man;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{CommandFactory, Parser, Subcommand};

use crate::activation::{self, Activation};
use crate::audit;
use crate::config::{format_duration, parse_duration};
use crate::credentials::{local_user, Broker};
use crate::doctor;
use crate::error::Error;
use crate::mode::{self, Reason};
use crate::paths::Dirs;
use crate::run::{self, RoleRun};
use crate::shim::{self, ShimRun};
use crate::supervisor::ChildSpec;

/// A drop-in `terraform` for the day the deployment platform is down.
///
/// Install it with `breakglass install`, put the printed directory first on PATH,
/// and type `terraform plan` / `terraform apply` as usual. When break-glass mode is on
/// for a project (`.breakglass.toml`), the shim assumes the mapped deployment role and
/// keeps the credentials fresh for the whole run.
#[derive(Debug, Parser)]
#[command(name = "breakglass", version, about, long_about)]
pub struct Cli {
    /// Act on the project at DIR instead of the current directory (like terraform's -chdir).
    #[arg(short = 'C', long = "chdir", global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show which config applies, whether break-glass mode is on and why, the role, the
    /// real terraform and the cached credentials.
    Status {
        /// Print only a short prompt marker: ROLE and minutes left (for shell prompts).
        #[arg(long)]
        prompt: bool,
    },
    /// List every role in the config, with its stack and workspace.
    Roles {
        #[arg(long)]
        json: bool,
    },
    /// Switch break-glass mode on for this project until a time, with a reason.
    On {
        /// Why (recorded in the audit trail and sent to STS as a session tag).
        #[arg(long)]
        reason: String,
        /// How long, e.g. 30m, 4h (at most 24h).
        #[arg(long = "for", default_value = "4h", value_name = "DURATION")]
        duration: String,
    },
    /// End the activation for this project.
    Off,
    /// Run any command under the role, with the credential endpoint, refresh and signals.
    Exec {
        /// The command and its arguments (after `--`).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<OsString>,
    },
    /// Print `export` lines for the role's credentials (the manual procedure; never refreshed).
    Env,
    /// Print the role's credentials as JSON: `credential_process` (Version 1) or Terragrunt's `--auth-provider-cmd`.
    Credentials {
        #[arg(long, value_enum, default_value = "process")]
        format: credentials::CredentialsFormat,
    },
    /// Create the `terraform` and `tofu` shim links and print the PATH line to add.
    Install {
        /// Directory for the links (default: the platform data directory's `shims`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print only the shim directory.
        #[arg(long)]
        print_dir: bool,
    },
    /// Remove the `terraform` and `tofu` shim links.
    Uninstall {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Remove every cached credential and MFA session.
    Logout,
    /// Push `errored.tfstate` under the role (`terraform state push errored.tfstate`).
    Recover,
    /// Write a commented `.breakglass.toml`, from flags or from the backend block.
    Init {
        /// The deployment role ARN.
        #[arg(long)]
        role: Option<String>,
        /// A read-only role for plan/show/output.
        #[arg(long)]
        read_role: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// Write `enabled = true`.
        #[arg(long)]
        enable: bool,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check the project's readiness: terraform, config, roles and the state bucket.
    Doctor {
        /// Same as `--format json`.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        #[arg(long, value_enum, default_value = "human")]
        format: doctor_format::DoctorFormat,
    },
    /// Show the audit trail of break-glass runs.
    Log {
        #[arg(long)]
        json: bool,
        /// Only runs started within this duration, e.g. 24h.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
    },
    /// Write the manual pages (breakglass.1, breakglass-COMMAND.1) into DIR.
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Runs the CLI; returns the exit code.
pub fn main(argv0: OsString, args: Vec<OsString>) -> i32 {
    crate::logging::init();
    let cli = match Cli::try_parse_from(std::iter::once(argv0).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let chdir = cli.chdir.clone();
    let result = match cli.command {
        Command::Status { prompt } => status(chdir, prompt),
        Command::Roles { json } => roles(chdir, json),
        Command::On { reason, duration } => on(chdir, &reason, &duration),
        Command::Off => off(chdir),
        Command::Exec { command } => exec(chdir, command),
        Command::Env => print_env(chdir, None),
        Command::Credentials { format } => print_env(chdir, Some(format)),
        Command::Install { dir, print_dir } => install(dir, print_dir),
        Command::Uninstall { dir } => uninstall(dir),
        Command::Logout => logout(),
        Command::Recover => recover(chdir),
        Command::Init {
            role,
            read_role,
            region,
            enable,
            force,
        } => crate::scaffold::init(chdir, role, read_role, region, enable, force),
        Command::Doctor { json, format } => run_doctor(
            chdir,
            if json {
                doctor_format::DoctorFormat::Json
            } else {
                format
            },
        ),
        Command::Man { dir } => man::write(&dir),
        Command::Log { json, since } => log(json, since),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "breakglass",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

fn dirs() -> Result<Dirs, Error> {
    run::dirs(None)
}

/// The project context for a CLI command, as the shim would see `terraform -chdir=DIR ARGS`.
fn context(chdir: Option<PathBuf>, args: &[&str]) -> Result<ShimRun, Error> {
    let mut all: Vec<OsString> = Vec::new();
    if let Some(dir) = chdir {
        let mut a = OsString::from("-chdir=");
        a.push(dir);
        all.push(a);
    }
    all.extend(args.iter().map(OsString::from));
    shim::read_context("terraform".to_string(), all)
}

/// A context that always runs under the role (`exec`, `recover`, `env`, ...).
fn role_context(chdir: Option<PathBuf>, args: &[&str], command: &str) -> Result<ShimRun, Error> {
    let mut run = context(chdir, args)?;
    run.mode = mode::Mode {
        on: true,
        reason: match activation_for(&run) {
            Some(a) => Reason::Activation(a),
            None => Reason::Command(command.to_string()),
        },
    };
    Ok(run)
}

fn activation_for(run: &ShimRun) -> Option<Activation> {
    let project = run.project.as_ref()?;
    activation::current(run.dirs.as_ref()?, &project.root)
}

fn status(chdir: Option<PathBuf>, prompt: bool) -> Result<i32, Error> {
    let mut run = context(chdir, &["plan"])?;
    run.mode = shim::decide_mode(&run)?;
    let target = run.project.as_ref().map(|_| run::target(&run));
    let cached = match (&target, run.project.as_ref(), run.dirs.as_ref()) {
        (Some(Ok(t)), Some(p), Some(d)) => {
            let reason = run::reason(&run);
            Broker::new(run::request(p, t, false, reason.as_deref()), d).cached_any()
        }
        _ => None,
    };
    if prompt {
        if let Some(Ok(t)) = &target {
            let name = t.arn.rsplit('/').next().unwrap_or(&t.arn);
            match &cached {
                Some(e) => println!(
                    "{name} {}m",
                    e.credentials.remaining(SystemTime::now()).as_secs() / 60
                ),
                None => println!("{name}"),
            }
        }
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    let _ = match &run.project {
        Some(p) => writeln!(
            out,
            "config:      {}",
            p.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        ),
        None => writeln!(
            out,
            "config:      none at or above {}",
            run.workdir.display()
        ),
    };
    let _ = writeln!(
        out,
        "mode:        {} ({})",
        if run.mode.on { "ON" } else { "off" },
        run.mode.reason
    );
    match &target {
        Some(Ok(t)) => {
            let _ = writeln!(
                out,
                "role:        {} (from {}, workspace `{}`)",
                t.arn, t.matched_by, t.workspace
            );
            if let Some(r) = &t.read_arn {
                let _ = writeln!(
                    out,
                    "read role:   {r} (plan, show, output, state list/pull/show)"
                );
            }
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "role:        none: {e}");
        }
        None => {
            let _ = writeln!(out, "role:        none (no config)");
        }
    }
    let _ = match shim::locate_terraform(&run) {
        Ok(path) => {
            let version = crate::terraform::version(&path).unwrap_or_default();
            writeln!(out, "terraform:   {} ({version})", path.display())
        }
        Err(e) => writeln!(
            out,
            "terraform:   not found: {}",
            e.to_string().lines().next().unwrap_or("")
        ),
    };
    let _ = match &cached {
        Some(e) => writeln!(
            out,
            "credentials: cached until {} ({} left)",
            crate::clock::rfc3339(e.credentials.expires_at()),
            format_duration(e.credentials.remaining(SystemTime::now()))
        ),
        None => writeln!(out, "credentials: none cached"),
    };
    Ok(0)
}

#[derive(serde::Serialize)]
struct RoleRow {
    mapping: String,
    stack: Option<String>,
    workspace: Option<String>,
    arn: Option<String>,
    read_arn: Option<String>,
}

fn roles(chdir: Option<PathBuf>, json: bool) -> Result<i32, Error> {
    let run = context(chdir, &[])?;
    let project = run::project(&run)?;
    let s = &project.settings;
    let row = |mapping: String,
               stack: Option<String>,
               workspace: Option<String>,
               r: &crate::config::RoleSettings| RoleRow {
        mapping,
        stack,
        workspace,
        arn: r.arn.as_ref().map(|a| a.value.clone()),
        read_arn: r.read_arn.as_ref().map(|a| a.value.clone()),
    };
    let mut rows = vec![row("[role]".into(), None, None, &s.role)];
    for (w, r) in &s.workspaces {
        rows.push(row(format!("[workspaces.{w}]"), None, Some(w.clone()), r));
    }
    for (st, r) in &s.stacks {
        rows.push(row(format!("[stacks.\"{st}\"]"), Some(st.clone()), None, r));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else {
        println!("{:<28} {:<14} {:<12} ROLE", "MAPPING", "STACK", "WORKSPACE");
        for r in rows {
            println!(
                "{:<28} {:<14} {:<12} {}{}",
                r.mapping,
                r.stack.unwrap_or_else(|| "*".into()),
                r.workspace.unwrap_or_else(|| "*".into()),
                r.arn.unwrap_or_else(|| "(inherits [role])".into()),
                r.read_arn
                    .map(|a| format!("  (read: {a})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(0)
}

/// The longest activation `breakglass on` accepts.
const MAX_ACTIVATION: Duration = Duration::from_secs(24 * 3600);

fn on(chdir: Option<PathBuf>, reason: &str, duration: &str) -> Result<i32, Error> {
    let run = context(chdir, &[])?;
    let project = run::project(&run)?;
    if reason.trim().is_empty() {
        return Err(Error::Message(
            "--reason is empty\n  fix: say why, e.g. --reason \"INC-123 platform down, hotfix\""
                .into(),
        ));
    }
    let d = parse_duration(duration).map_err(|e| {
        Error::Message(format!(
            "--for {duration}: {e}\n  fix: use a duration such as 30m or 4h"
        ))
    })?;
    if d.is_zero() || d > MAX_ACTIVATION {
        return Err(Error::Message(format!(
            "--for {duration} is outside 1s..24h\n  fix: use a duration such as 30m or 4h"
        )));
    }
    let until = SystemTime::now() + d;
    let a = Activation {
        project: project.root.clone(),
        // Rounded up to the second: truncating could cut up to a second off, so a
        // short activation (`--for 1s`) could be over before `on` even returned.
        until: until
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(0),
        reason: reason.to_string(),
        user: local_user(),
    };
    let dirs = dirs()?;
    activation::activate(&dirs, &a)
        .map_err(|e| Error::Message(format!("cannot record the activation: {e}")))?;
    eprintln!(
        "breakglass: break-glass mode ON for {} until {} ({})\n  reason: {reason}\n  end it early with `breakglass off`",
        project.root.display(),
        a.until_rfc3339(),
        format_duration(d)
    );
    Ok(0)
}

fn off(chdir: Option<PathBuf>) -> Result<i32, Error> {
    let run = context(chdir, &[])?;
    let project = run::project(&run)?;
    let was = activation::deactivate(&dirs()?, &project.root)
        .map_err(|e| Error::Message(format!("cannot end the activation: {e}")))?;
    eprintln!(
        "breakglass: {} for {}",
        if was {
            "break-glass activation ended"
        } else {
            "no activation was on"
        },
        project.root.display()
    );
    Ok(0)
}

fn exec(chdir: Option<PathBuf>, command: Vec<OsString>) -> Result<i32, Error> {
    let mut run = role_context(chdir, &[], "exec")?;
    let Some((program, args)) = command.split_first() else {
        return Err(Error::Message(
            "no command given\n  fix: breakglass exec -- aws sts get-caller-identity".into(),
        ));
    };
    let path = which::which_in(program, std::env::var_os("PATH"), &run.cwd).map_err(|_| {
        Error::Message(format!(
            "`{}` was not found on PATH\n  fix: check the command name",
            program.to_string_lossy()
        ))
    })?;
    run.invocation =
        crate::invocation::Invocation::parse(program.to_string_lossy(), command.clone());
    run.terraform = path.clone();
    let role = RoleRun::new(&run, "exec")?;
    let outcome = role.supervise(ChildSpec {
        program: path,
        args: args.to_vec(),
        env: Vec::new(),
    })?;
    Ok(outcome.code)
}

/// Single-quotes a value for POSIX shells.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn print_env(
    chdir: Option<PathBuf>,
    format: Option<credentials::CredentialsFormat>,
) -> Result<i32, Error> {
    let run = role_context(
        chdir,
        &[],
        if format.is_some() {
            "credentials"
        } else {
            "env"
        },
    )?;
    let target = run::target(&run)?;
    let project = run::project(&run)?;
    let reason = run::reason(&run);
    let broker = Broker::new(
        run::request(project, &target, false, reason.as_deref()),
        &run::dirs(run.dirs.as_ref())?,
    );
    let mut rt = None;
    let (entry, _) = run::obtain(&broker, &mut rt)?;
    let c = &entry.credentials;
    if let Some(format) = format {
        println!("{}", credentials::document(format, &entry));
    } else {
        eprintln!(
            "breakglass: credentials for {} until {}; they are NOT refreshed: prefer `terraform` through the shim or `breakglass exec`",
            entry.role_arn,
            crate::clock::rfc3339(c.expires_at())
        );
        println!("unset AWS_PROFILE");
        println!("unset AWS_DEFAULT_PROFILE");
        println!("export AWS_ACCESS_KEY_ID={}", sh_quote(&c.access_key_id));
        println!(
            "export AWS_SECRET_ACCESS_KEY={}",
            sh_quote(c.secret_access_key.expose())
        );
        println!(
            "export AWS_SESSION_TOKEN={}",
            sh_quote(c.session_token.expose())
        );
        println!("export AWS_REGION={}", sh_quote(&entry.region));
        println!("export AWS_DEFAULT_REGION={}", sh_quote(&entry.region));
    }
    Ok(0)
}

fn recover(chdir: Option<PathBuf>) -> Result<i32, Error> {
    let mut run = role_context(chdir, &["state", "push", "errored.tfstate"], "recover")?;
    let state = run.workdir.join("errored.tfstate");
    if !state.is_file() {
        return Err(Error::Message(format!(
            "there is no errored.tfstate in {}\n  fix: run `breakglass recover` in the directory where terraform saved it (or use -C DIR)",
            run.workdir.display()
        )));
    }
    run.terraform = shim::locate_terraform(&run)?;
    let role = RoleRun::new(&run, "recover")?;
    let outcome = role.supervise(ChildSpec {
        program: run.terraform.clone(),
        args: run.invocation.args.clone(),
        env: Vec::new(),
    })?;
    if outcome.code == 0 {
        eprintln!(
            "breakglass: pushed {} to the backend. It is left in place: check with `terraform plan`, then delete it yourself.",
            state.display()
        );
    } else {
        eprintln!(
            "breakglass: `terraform state push` failed (exit {}); errored.tfstate is untouched",
            outcome.code
        );
    }
    Ok(outcome.code)
}

/// The names the shim is installed under.
pub const SHIM_NAMES: &[&str] = &["terraform", "tofu"];

fn shim_dir(dir: Option<PathBuf>) -> Result<PathBuf, Error> {
    match dir {
        Some(d) => Ok(d),
        None => Ok(dirs()?.shim_dir()),
    }
}

fn install(dir: Option<PathBuf>, print_dir: bool) -> Result<i32, Error> {
    let dir = shim_dir(dir)?;
    let me = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Error::Message(format!("cannot find breakglass's own path: {e}")))?;
    let small = me.with_file_name("breakglass-shim");
    let target = if small.is_file() { small } else { me };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Message(format!("cannot create {}: {e}", dir.display())))?;
    for name in SHIM_NAMES {
        link(&target, &dir.join(name))?;
    }
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    if print_dir {
        println!("{}", dir.display());
        return Ok(0);
    }
    eprintln!(
        "breakglass: linked {} in {} to {}\n  add this line to your shell profile (it is printed on stdout):",
        SHIM_NAMES.join(" and "),
        dir.display(),
        target.display()
    );
    println!("export PATH=\"{}:$PATH\"", dir.display());
    Ok(0)
}

/// True when `path` is a symlink to a breakglass binary.
fn is_our_link(path: &Path) -> bool {
    std::fs::read_link(path).is_ok_and(|t| {
        t.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("breakglass"))
    })
}

/// Points `link` at `target`, replacing an older breakglass link but never anything else.
fn link(target: &Path, link: &Path) -> Result<(), Error> {
    if std::fs::symlink_metadata(link).is_ok() {
        if !is_our_link(link) {
            return Err(Error::Message(format!(
                "{} exists and is not a breakglass link\n  fix: choose another directory with `breakglass install --dir DIR`",
                link.display()
            )));
        }
        std::fs::remove_file(link)
            .map_err(|e| Error::Message(format!("cannot replace {}: {e}", link.display())))?;
    }
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| Error::Message(format!("cannot create {}: {e}", link.display())))
}

fn uninstall(dir: Option<PathBuf>) -> Result<i32, Error> {
    let dir = shim_dir(dir)?;
    let mut removed = 0;
    for name in SHIM_NAMES {
        let p = dir.join(name);
        if is_our_link(&p) {
            std::fs::remove_file(&p)
                .map_err(|e| Error::Message(format!("cannot remove {}: {e}", p.display())))?;
            removed += 1;
        }
    }
    eprintln!(
        "breakglass: removed {removed} shim link(s) from {}; remove it from PATH in your shell profile too",
        dir.display()
    );
    Ok(0)
}

fn logout() -> Result<i32, Error> {
    let n = Broker::clear(&dirs()?)
        .map_err(|e| Error::Message(format!("cannot clear the credential cache: {e}")))?;
    eprintln!("breakglass: removed {n} cached credential file(s)");
    Ok(0)
}

fn run_doctor(chdir: Option<PathBuf>, format: doctor_format::DoctorFormat) -> Result<i32, Error> {
    let run = context(chdir, &["plan"])?;
    let (started, clock) = (SystemTime::now(), std::time::Instant::now());
    let checks = doctor::run_checks(&run);
    let project = run.project.as_ref().map_or(&run.workdir, |p| &p.root);
    let project = project.display().to_string();
    doctor_format::print(format, &checks, &project, started, clock.elapsed());
    Ok(if doctor::any_failed(&checks) { 1 } else { 0 })
}

fn log(json: bool, since: Option<String>) -> Result<i32, Error> {
    let path = audit::log_path(&dirs()?);
    let records = audit::read(&path)
        .map_err(|e| Error::Message(format!("cannot read {}: {e}", path.display())))?;
    let cutoff = match since {
        Some(s) => {
            let d = parse_duration(&s).map_err(|e| {
                Error::Message(format!(
                    "--since {s}: {e}\n  fix: use a duration such as 24h"
                ))
            })?;
            Some(SystemTime::now().checked_sub(d).unwrap_or(UNIX_EPOCH))
        }
        None => None,
    };
    let records: Vec<_> = records
        .into_iter()
        .filter(
            |r| match (cutoff, crate::clock::parse_rfc3339(&r.started)) {
                (Some(c), Some(t)) => t >= c,
                _ => true,
            },
        )
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        );
        return Ok(0);
    }
    if records.is_empty() {
        eprintln!(
            "breakglass: no break-glass runs recorded in {}",
            path.display()
        );
    }
    for r in records {
        println!(
            "{}  {:<9} exit {:<4} {}@{}  {}  {} {}{}",
            r.started,
            r.kind,
            r.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            r.user,
            r.host,
            r.role_arn,
            r.project,
            r.args.join(" "),
            r.reason
                .map(|x| format!("  reason: {x}"))
                .unwrap_or_default()
        );
    }
    Ok(0)
}
