//! `breakglass init`: writes a commented `.breakglass.toml`, from flags or from what the
//! project's backend block shows (its region and `assume_role.role_arn`).

use std::path::Path;

use crate::config::{Project, CONFIG_FILE};
use crate::error::Error;

/// Writes `.breakglass.toml` in the project directory (`-C DIR` or the current one).
pub fn init(
    dir: &Path,
    role: Option<String>,
    read_role: Option<String>,
    region: Option<String>,
    enable: bool,
    force: bool,
) -> Result<i32, Error> {
    let path = dir.join(CONFIG_FILE);
    if path.exists() && !force {
        return Err(Error::Message(format!(
            "{} already exists\n  fix: edit it, or pass --force to overwrite it",
            path.display()
        )));
    }
    let backend = crate::backend::find(dir).ok().flatten();
    let region = region.or_else(|| {
        backend
            .as_ref()
            .and_then(|b| b.string("region"))
            .map(str::to_string)
    });
    let role = role.or_else(|| {
        backend.as_ref().and_then(|b| {
            b.nested("assume_role", "role_arn")
                .or_else(|| b.string("role_arn"))
                .map(str::to_string)
        })
    });
    let text = render(
        role.as_deref(),
        read_role.as_deref(),
        region.as_deref(),
        enable,
    );
    std::fs::write(&path, &text)
        .map_err(|e| Error::Message(format!("cannot write {}: {e}", path.display())))?;
    // Check what was written, so a bad flag is reported now and not at 2 a.m.
    if let Err(e) = Project::load(&path) {
        return Err(Error::Message(format!(
            "wrote {}, but it does not load: {e}",
            path.display()
        )));
    }
    crate::say!(
        "breakglass: wrote {}{}\n  next: `breakglass doctor`, then `breakglass on --reason \"...\"` when the platform is down",
        path.display(),
        if role.is_none() { " (fill in [role] arn)" } else { "" }
    );
    Ok(0)
}

fn render(
    role: Option<&str>,
    read_role: Option<&str>,
    region: Option<&str>,
    enable: bool,
) -> String {
    let mut t = String::new();
    t.push_str(
        "# breakglass: run terraform under the deployment role when the platform is down.\n",
    );
    t.push_str("# Reference: the config section of breakglass's README.\n\n");
    t.push_str("# true: every `terraform` here assumes the role. Prefer `breakglass on --reason ... --for 4h`.\n");
    t.push_str(&format!("enabled = {enable}\n"));
    match region {
        Some(r) => t.push_str(&format!("region = \"{r}\"\n")),
        None => t.push_str("# region = \"eu-west-1\"\n"),
    }
    t.push_str("# terraform = \"terraform\"   # or \"tofu\", or a path\n\n");
    t.push_str("[role]\n");
    match role {
        Some(r) => t.push_str(&format!("arn = \"{r}\"\n")),
        None => t.push_str("# arn = \"arn:aws:iam::111111111111:role/deploy\"\n"),
    }
    match read_role {
        Some(r) => t.push_str(&format!(
            "read_arn = \"{r}\"   # plan, show, output, state list/pull/show\n"
        )),
        None => t.push_str("# read_arn = \"arn:aws:iam::111111111111:role/read\"\n"),
    }
    t.push_str("session_name = \"breakglass-{user}\"\n");
    t.push_str("duration = \"1h\"          # 15m..12h; 1h when chained (MFA)\n");
    t.push_str("refresh_before = \"15m\"   # renew this long before expiry\n");
    t.push_str("# mfa_serial = \"arn:aws:iam::111111111111:mfa/alice\"\n");
    t.push_str("# source_profile = \"sso-admin\"\n\n");
    t.push_str("# [workspaces.prod]\n# arn = \"arn:aws:iam::222222222222:role/deploy\"\n\n");
    t.push_str("# [stacks.\"network/*\"]\n# arn = \"arn:aws:iam::333333333333:role/deploy\"\n");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_config_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(
            &p,
            render(
                Some("arn:aws:iam::111111111111:role/deploy"),
                None,
                Some("eu-west-1"),
                true,
            ),
        )
        .unwrap();
        let project = Project::load(&p).unwrap();
        assert!(project.enabled());
        std::fs::write(&p, render(None, None, None, false)).unwrap();
        assert!(!Project::load(&p).unwrap().enabled());
    }
}
