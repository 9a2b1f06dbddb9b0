//! `breakglass import spacelift|tfe`: reads every stack's deployment role from the
//! platform's own code (or Spacelift's JSON export) and prints the mappings as TOML,
//! or merges them into `.breakglass.toml` with `--write`. What cannot be read is listed
//! on stderr with its place and reason, never guessed.

use std::path::{Component, Path, PathBuf};

use crate::config::{find_config, CONFIG_FILE};
use crate::context::Context;
use crate::error::Error;
use crate::import::{self, export, write, Platform};
use crate::invocation::normalize;
use crate::say;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlatformArg {
    /// Spacelift: `spacelift_stack` and its AWS integrations.
    Spacelift,
    /// HCP Terraform / Terraform Enterprise: `tfe_workspace` and its variables.
    Tfe,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[arg(value_enum)]
    pub platform: PlatformArg,
    /// The admin stack's directory of .tf files, or (spacelift) a JSON export saved with
    /// `spacectl api`. Relative to -C DIR when given.
    #[arg(long, value_name = "PATH", num_args = 1.., required_unless_present = "print_query")]
    pub from: Vec<PathBuf>,
    /// Keep only the stacks of this repository (spacelift).
    #[arg(long, value_name = "NAME")]
    pub repository: Option<String>,
    /// Merge into .breakglass.toml (keeping its comments) instead of printing.
    #[arg(long)]
    pub write: bool,
    /// Print the GraphQL query for `spacectl api` that saves the JSON export.
    #[arg(long, conflicts_with_all = ["from", "write", "repository"])]
    pub print_query: bool,
}

/// `path` relative to `base` (both absolute and normalised), with `..` where needed.
fn relative(path: &Path, base: &Path) -> String {
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        ".".to_string()
    } else {
        out.to_string_lossy().into_owned()
    }
}

pub fn run(ctx: &Context, args: ImportArgs) -> Result<i32, Error> {
    let platform = match args.platform {
        PlatformArg::Spacelift => Platform::Spacelift,
        PlatformArg::Tfe => Platform::Tfe,
    };
    if args.print_query {
        if platform != Platform::Spacelift {
            return Err(Error::Message(
                "--print-query is for spacelift only\n  fix: breakglass import tfe --from ADMIN_DIR reads the tfe provider's code".into(),
            ));
        }
        crate::out::stdout_bytes(export::QUERY.as_bytes());
        return Ok(0);
    }
    if platform == Platform::Tfe && args.repository.is_some() {
        return Err(Error::Message(
            "--repository is for spacelift only: HCP Terraform workspaces are keyed by working_directory\n  fix: leave out --repository".into(),
        ));
    }
    let (cwd, workdir) = (&ctx.cwd, &ctx.workdir);
    let config = match &ctx.project {
        Some(p) => p.files[0].clone(),
        None => match find_config(workdir) {
            // There is a config, but it is not obeyed (another user's, or writable by
            // others): an import does not write into it.
            Some(path) if args.write => {
                return Err(Error::Message(format!(
                    "{} is not obeyed: it is owned by another user or writable by others\n  fix: if it is yours to use, `breakglass trust {}`, then import again",
                    path.display(),
                    path.display()
                )))
            }
            Some(path) => path,
            None => workdir.join(CONFIG_FILE),
        },
    };
    let moved = std::fs::canonicalize(cwd).ok().as_ref() != Some(workdir);
    let config_dir = config.parent().map_or(workdir.clone(), Path::to_path_buf);
    // Read with the paths as typed (relative to -C DIR when given), so places read the
    // way the user wrote them.
    let from: Vec<PathBuf> = args
        .from
        .iter()
        .map(|p| if moved { workdir.join(p) } else { p.clone() })
        .collect();
    let inv = import::read(platform, &from, args.repository.as_deref())
        .map_err(|e| Error::Message(e.to_string()))?;
    let repo_root = import::repository_root(&config_dir);
    let (mappings, more) = import::mappings(&inv.stacks, &repo_root, &config_dir);
    let skipped: Vec<_> = inv.skipped.iter().chain(&more).collect();
    if !skipped.is_empty() {
        say!(
            "breakglass: {} item(s) skipped and left out (never guessed):",
            skipped.len()
        );
        for s in &skipped {
            say!("  {s}");
        }
    }
    let repos = import::repositories(&inv);
    if args.repository.is_none() && repos.len() > 1 {
        say!(
            "breakglass: warning: the stacks come from {} repositories ({}); project_root is relative to each one's root\n  fix: keep one with --repository NAME",
            repos.len(),
            repos.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    if mappings.is_empty() {
        return Err(Error::Message(format!(
            "no stack could be mapped from {}\n  fix: pass the directory of the admin stack that declares the {} resources",
            args.from.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            platform.name()
        )));
    }
    let record = write::Record {
        platform,
        from: from
            .iter()
            .map(|p| relative(&normalize(&cwd.join(p)), &normalize(&config_dir)))
            .collect(),
        repository: args.repository.clone(),
    };
    if args.write {
        write::write_config(&config, &mappings, &record)
            .map_err(|e| Error::Message(e.to_string()))?;
        say!(
            "breakglass: wrote {} mapping(s) to {}; check them with `breakglass roles` and `breakglass doctor`",
            mappings.len(),
            config.display()
        );
    } else {
        let text = write::merge("", &config.display().to_string(), &mappings, &record)
            .map_err(|e| Error::Message(e.to_string()))?;
        crate::out::stdout_bytes(text.as_bytes());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/r/admin"), Path::new("/r")), "admin");
        assert_eq!(relative(Path::new("/r"), Path::new("/r")), ".");
        assert_eq!(
            relative(Path::new("/x/admin"), Path::new("/r/p")),
            "../../x/admin"
        );
    }
}
