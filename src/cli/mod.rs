//! The `breakglass` management CLI: the clap definitions and the dispatch. Each
//! command (or family of commands) lives in its own module here.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::context::{Context, Reading};
use crate::env::Env;
use crate::error::Error;

mod activation;
mod completions;
mod credentials;
mod doctor;
mod doctor_format;
mod exec;
mod handover;
mod import;
mod init;
mod install;
mod log;
mod logout;
mod man;
mod recover;
mod roles;
mod state;
mod status;
mod trust;
mod trust_statement;

pub use install::SHIM_NAMES;

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
    Init(crate::scaffold::InitOptions),
    /// Check the project's readiness: terraform, config, roles and the state bucket.
    Doctor {
        /// Same as `--format json`.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        #[arg(long, value_enum, default_value = "human")]
        format: doctor_format::DoctorFormat,
    },
    /// Show the audit trail of break-glass runs (this machine's, or the team's).
    Log {
        #[arg(long)]
        json: bool,
        /// Only runs started within this duration, e.g. 24h (with --team: default 24h).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// The team's trail from the project's [audit] S3 prefix, starts paired with ends.
        #[arg(long, conflicts_with = "flush")]
        team: bool,
        /// Send the queued team-trail events and alerts now.
        #[arg(long)]
        flush: bool,
    },
    /// Obey a config file that another user owns or others can write (a trust list,
    /// like git's safe.directory).
    Trust {
        /// The config file or directory (default: the config that applies here).
        path: Option<PathBuf>,
    },
    /// When the state itself is hurt: list its versions, restore one, fail over to the
    /// replica and back.
    State {
        #[command(subcommand)]
        command: state::StateCommand,
    },
    /// Read every stack's deployment role from the platform's own code (or Spacelift's
    /// JSON export) and print the mappings, or merge them into .breakglass.toml.
    Import(import::ImportArgs),
    /// Print the IAM trust statement that lets a break-glass principal assume a
    /// platform's deployment role.
    TrustStatement(trust_statement::TrustArgs),
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
pub fn main(argv0: OsString, args: Vec<OsString>, env: Env) -> i32 {
    crate::logging::init(&env);
    let cli = match Cli::try_parse_from(std::iter::once(argv0).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match dispatch(cli, env) {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

fn dispatch(cli: Cli, env: Env) -> Result<i32, Error> {
    let ctx = || Context::new(cli.chdir.as_deref(), env.clone(), Reading::Full);
    // Commands that must work with a broken config (or write a new one) read only
    // what they need of it.
    let lenient = || {
        Context::new(
            cli.chdir.as_deref(),
            env.clone(),
            Reading::TerraformKeyOnly { quiet: true },
        )
    };
    match cli.command {
        Command::Status { prompt } => status::run(&ctx()?, prompt),
        Command::Roles { json } => roles::run(&ctx()?, json),
        Command::On { reason, duration } => activation::on(&ctx()?, &reason, &duration),
        Command::Off => activation::off(&ctx()?),
        Command::Exec { command } => exec::run(&ctx()?, command),
        Command::Env => handover::env(&ctx()?),
        Command::Credentials { format } => handover::credentials(&ctx()?, format),
        Command::Install { dir, print_dir } => install::install(dir, print_dir),
        Command::Uninstall { dir } => install::uninstall(dir),
        Command::Logout => logout::run(ctx().ok().as_ref()),
        Command::Recover => recover::run(&ctx()?),
        Command::Init(opts) => init::run(&lenient()?, opts),
        Command::Doctor { json, format } => doctor::run(
            &ctx()?,
            if json {
                doctor_format::DoctorFormat::Json
            } else {
                format
            },
        ),
        Command::Log {
            json,
            since,
            team,
            flush,
        } => log::run(
            &(if team || flush { ctx() } else { lenient() })?,
            log::LogArgs {
                json,
                since,
                team,
                flush,
            },
        ),
        Command::Trust { path } => trust::run(&lenient()?, path),
        Command::State { command } => state::run(&ctx()?, command),
        Command::Import(args) => import::run(&ctx()?, args),
        Command::TrustStatement(args) => trust_statement::run(args),
        Command::Man { dir } => man::write(&dir),
        Command::Completions { shell } => completions::run(shell),
    }
}
