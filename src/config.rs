//! Kept in one file because every key's raw shape, check and overlay live side by side, with the error positions they share.
//!
//! `.breakglass.toml`: finding it, reading it, layering `.breakglass.local.toml` over
//! it, and checking every value. Each error names the file, line and column the value
//! came from, and how to fix it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

mod audit;
mod role;
pub use audit::{topic_region, AuditSettings, S3Location};
use role::RawRole;
pub use role::RoleSettings;

/// The project config's file name.
pub const CONFIG_FILE: &str = ".breakglass.toml";
/// The git-ignored file beside it that overrides it key by key.
pub const LOCAL_FILE: &str = ".breakglass.local.toml";

/// Shortest and longest role session STS grants.
pub const MIN_DURATION: Duration = Duration::from_secs(15 * 60);
pub const MAX_DURATION: Duration = Duration::from_secs(12 * 3600);

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}\n  fix: {fix}")]
    Invalid {
        origin: Origin,
        message: String,
        fix: String,
    },
}

/// Where a value came from: file, line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

impl Origin {
    /// An error about the value at this place.
    pub fn error(&self, message: impl Into<String>, fix: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.clone(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub origin: Origin,
}

/// How the credentials reach terraform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A loopback credential endpoint that is refreshed for the whole run (default).
    Endpoint,
    /// Plain environment variables on an exec'd terraform; never refreshed.
    Env,
}

/// What a break-glass run does when its terminal hangs up (SIGHUP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnHangup {
    /// Terraform runs to the end, with credentials renewed (default).
    Finish,
    /// Terraform gets exactly one interrupt (SIGINT): it stops gracefully and releases
    /// its lock.
    Stop,
}

/// The project config after layering and checking.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub enabled: Option<Located<bool>>,
    pub region: Option<Located<String>>,
    pub terraform: Option<Located<String>>,
    pub delivery: Option<Located<Delivery>>,
    pub min_remaining: Option<Located<Duration>>,
    pub on_hangup: Option<Located<OnHangup>>,
    pub lock_wait: Option<Located<Duration>>,
    pub role: RoleSettings,
    pub workspaces: BTreeMap<String, RoleSettings>,
    pub stacks: BTreeMap<String, RoleSettings>,
    /// `[stacks."GLOB".workspaces.NAME]`: a stack in one terraform workspace, the most
    /// specific mapping of all. Keyed by the stack glob, then the workspace.
    pub stack_workspaces: BTreeMap<String, BTreeMap<String, RoleSettings>>,
    /// `[import]`: where `breakglass import` read the platform's code, for the doctor.
    pub import: Option<ImportRecord>,
    /// `[audit]`: the team audit trail.
    pub audit: AuditSettings,
    pub state: StateSettings,
}

/// `[state]`: where the state's replica is, for `breakglass state failover` when the
/// bucket's replication configuration cannot be read (its region is down).
#[derive(Debug, Clone, Default)]
pub struct StateSettings {
    pub replica_bucket: Option<Located<String>>,
    pub replica_region: Option<Located<String>>,
}

/// The `[import]` table: the platform and the sources (relative to the config's
/// directory) that `breakglass import --write` read.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    /// `spacelift` or `tfe`.
    pub platform: Located<String>,
    pub from: Located<Vec<String>>,
    pub repository: Option<Located<String>>,
}

/// A project: the directory holding `.breakglass.toml`, and its settings.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory of the config file; stack globs are relative to it.
    pub root: PathBuf,
    /// The files read, the local override last.
    pub files: Vec<PathBuf>,
    pub settings: Settings,
}

impl Project {
    /// Walks up from `dir` to the first `.breakglass.toml` (stopping at the filesystem
    /// root) and loads it, with `.breakglass.local.toml` beside it layered on top. A
    /// file that is not trusted ([`crate::trust`]) is ignored with a warning; the walk
    /// stops there, so no config further up is applied to this directory instead.
    pub fn discover(dir: &Path) -> Result<Option<Project>, ConfigError> {
        let Some(path) = find_config(dir) else {
            return Ok(None);
        };
        let Some(text) = read_trusted(&path, false)? else {
            return Ok(None);
        };
        Project::from_text(&path, text).map(Some)
    }

    /// Discovery for commands that pass through in every mode (`version`, `fmt`,
    /// `-help`, ...): only the `terraform` key is read, nothing is checked, and a file
    /// that does not parse is ignored with one warning (none when `quiet`), as if there
    /// were no config.
    pub fn discover_passthrough(dir: &Path, quiet: bool) -> Option<Project> {
        let path = find_config(dir)?;
        let root = path.parent().map(Path::to_path_buf)?;
        let mut texts = vec![(path.clone(), read_trusted(&path, quiet).ok()??)];
        let local = root.join(LOCAL_FILE);
        if let Ok(Some(text)) = read_trusted(&local, quiet) {
            texts.push((local, text));
        }
        let mut terraform = None;
        for (file, text) in &texts {
            match read_terraform_key(file, text.clone()) {
                Ok(t) => overlay(&mut terraform, t),
                Err(e) => {
                    if !quiet {
                        crate::say!(
                            "breakglass: warning: {}; ignoring the config for this command",
                            e.to_string().lines().next().unwrap_or_default()
                        );
                    }
                    return None;
                }
            }
        }
        Some(Project {
            root,
            files: texts.into_iter().map(|(f, _)| f).collect(),
            settings: Settings {
                terraform,
                ..Settings::default()
            },
        })
    }

    /// Loads one config file and the local override beside it, if any (and trusted).
    pub fn load(path: &Path) -> Result<Project, ConfigError> {
        match read_trusted(path, false)? {
            Some(text) => Project::from_text(path, text),
            None => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "not trusted (see the warning above)",
                ),
            }),
        }
    }

    /// The project of the config at `path` whose text is `text`, with the local
    /// override beside it layered on top (if it is there and trusted).
    fn from_text(path: &Path, text: String) -> Result<Project, ConfigError> {
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut settings = parse_layer(path, text)?;
        let mut files = vec![path.to_path_buf()];
        let local = root.join(LOCAL_FILE);
        if let Some(text) = read_trusted(&local, false)? {
            settings.overlay(parse_layer(&local, text)?);
            files.push(local);
        }
        Ok(Project {
            root,
            files,
            settings,
        })
    }

    /// True when the config switches break-glass mode on.
    pub fn enabled(&self) -> bool {
        self.settings.enabled.as_ref().is_some_and(|e| e.value)
    }
}

/// The first `.breakglass.toml` at or above `dir`, trusted or not. A Terragrunt working copy looks from
/// the unit that owns it, so a config copied into `.terragrunt-cache` with the module's
/// source is never the one used.
pub fn find_config(dir: &Path) -> Option<PathBuf> {
    crate::terragrunt::owning_unit(dir)
        .ancestors()
        .map(|d| d.join(CONFIG_FILE))
        .find(|p| p.is_file())
}

/// The text of a config file, if it is there and may be obeyed. The file is opened
/// once, judged by the open file's owner and mode, and read from the same handle, so
/// it cannot be swapped between the check and the read. `Ok(None)`: missing, or not
/// trusted (with a warning unless `quiet`).
fn read_trusted(path: &Path, quiet: bool) -> Result<Option<String>, ConfigError> {
    use std::io::Read;
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() || !crate::trust::obeyed(path, &meta, quiet) {
        return Ok(None);
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_err)?;
    Ok(Some(text))
}

/// Only the `terraform` key of one file; every other key is ignored unread.
fn read_terraform_key(path: &Path, text: String) -> Result<Option<Located<String>>, ConfigError> {
    #[derive(Deserialize)]
    struct Lenient {
        terraform: Option<Spanned<String>>,
    }
    let src = Source {
        file: Arc::new(path.to_path_buf()),
        text,
    };
    let raw: Lenient = toml::from_str(&src.text).map_err(|e| toml_error(&src, e))?;
    Ok(src.string(raw.terraform))
}

/// Parses one config text (as if read from `file`) into settings: every key checked.
pub fn parse_layer(file: &Path, text: String) -> Result<Settings, ConfigError> {
    let src = Source {
        file: Arc::new(file.to_path_buf()),
        text,
    };
    let raw: RawFile = toml::from_str(&src.text).map_err(|e| toml_error(&src, e))?;
    Settings::from_raw(&src, raw)
}

// ---------------------------------------------------------------------------------
// Raw TOML shapes. Unknown keys are errors (with a did-you-mean).

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    enabled: Option<Spanned<bool>>,
    region: Option<Spanned<String>>,
    terraform: Option<Spanned<String>>,
    delivery: Option<Spanned<String>>,
    min_remaining: Option<Spanned<String>>,
    on_hangup: Option<Spanned<String>>,
    lock_wait: Option<Spanned<String>>,
    role: Option<RawRole>,
    #[serde(default)]
    workspaces: BTreeMap<String, RawRole>,
    #[serde(default)]
    stacks: BTreeMap<String, RawRole>,
    import: Option<RawImport>,
    audit: Option<audit::RawAudit>,
    state: Option<RawState>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawState {
    replica_bucket: Option<Spanned<String>>,
    replica_region: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    platform: Spanned<String>,
    from: Spanned<Vec<String>>,
    repository: Option<Spanned<String>>,
}

/// Turns byte offsets into lines and columns for one file.
struct Source {
    file: Arc<PathBuf>,
    text: String,
}

impl Source {
    fn origin(&self, offset: usize) -> Origin {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        Origin {
            file: self.file.clone(),
            line,
            col,
        }
    }

    fn locate<T>(&self, s: Spanned<T>) -> Located<T> {
        let origin = self.origin(s.span().start);
        Located {
            value: s.into_inner(),
            origin,
        }
    }

    fn string(&self, s: Option<Spanned<String>>) -> Option<Located<String>> {
        s.map(|s| self.locate(s))
    }

    /// One of a few named values (`delivery = "env"`), or an error listing them.
    fn choice<T: Copy>(
        &self,
        s: Option<Spanned<String>>,
        key: &str,
        options: &[(&str, T)],
        fix: &str,
    ) -> Result<Option<Located<T>>, ConfigError> {
        let Some(s) = s.map(|s| self.locate(s)) else {
            return Ok(None);
        };
        match options.iter().find(|(name, _)| *name == s.value) {
            Some((_, value)) => Ok(Some(Located {
                value: *value,
                origin: s.origin,
            })),
            None => Err(s
                .origin
                .error(format!("{key} = \"{}\" is not known", s.value), fix)),
        }
    }

    fn duration(
        &self,
        s: Option<Spanned<String>>,
    ) -> Result<Option<Located<Duration>>, ConfigError> {
        let Some(s) = s.map(|s| self.locate(s)) else {
            return Ok(None);
        };
        let value = parse_duration(&s.value).map_err(|why| {
            s.origin.error(
                format!("`{}` is not a duration: {why}", s.value),
                "write a duration such as \"15m\", \"90m\" or \"1h\"",
            )
        })?;
        Ok(Some(Located {
            value,
            origin: s.origin,
        }))
    }
}

/// Parses a human duration such as "15m", "90m", "1h30m" or "45s".
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| e.to_string())
}

/// Prints a duration the way the config writes it ("1h", "15m", "90s").
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// A TOML or shape error, with a did-you-mean for unknown keys.
fn toml_error(src: &Source, e: toml::de::Error) -> ConfigError {
    let origin = src.origin(e.span().map(|s| s.start).unwrap_or(0));
    let message = e.message().trim().to_string();
    let fix = match unknown_key_suggestion(&message) {
        Some((key, Some(best))) => format!("did you mean `{best}`? (instead of `{key}`)"),
        Some((key, None)) => {
            format!("remove `{key}`; see the config reference in breakglass's README")
        }
        None => "see the config reference in breakglass's README".to_string(),
    };
    origin.error(message, fix)
}

/// From serde's "unknown field `x`, expected one of `a`, `b`": the key and the nearest
/// known key, if one is close.
fn unknown_key_suggestion(message: &str) -> Option<(String, Option<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let best = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (strsim::jaro_winkler(key, cand), cand))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, cand)| cand.to_string());
    Some((key.to_string(), best))
}

impl Settings {
    fn from_raw(src: &Source, raw: RawFile) -> Result<Settings, ConfigError> {
        let delivery = src.choice(
            raw.delivery,
            "delivery",
            &[("endpoint", Delivery::Endpoint), ("env", Delivery::Env)],
            "use delivery = \"endpoint\" (refreshed, the default) or \"env\" (plain variables, never refreshed)",
        )?;
        let on_hangup = src.choice(
            raw.on_hangup,
            "on_hangup",
            &[("finish", OnHangup::Finish), ("stop", OnHangup::Stop)],
            "use on_hangup = \"finish\" (terraform runs to the end, the default) or \"stop\" (one graceful interrupt)",
        )?;
        let lock_wait = src.duration(raw.lock_wait)?;
        if let Some(w) = &lock_wait {
            if w.value.is_zero() || w.value > Duration::from_secs(3600) {
                return Err(w.origin.error(
                    "lock_wait must be from 1s to 1h",
                    "use a bound such as \"2m\" (the default)",
                ));
            }
        }
        let mut workspaces = BTreeMap::new();
        for (name, role) in raw.workspaces {
            workspaces.insert(name, RoleSettings::from_raw(src, role)?);
        }
        let mut stacks = BTreeMap::new();
        let mut stack_workspaces = BTreeMap::new();
        for (pattern, mut role) in raw.stacks {
            let nested = role.workspaces.take();
            let only_workspaces = nested.is_some() && role.is_empty();
            let settings = RoleSettings::from_raw(src, role)?;
            let mut per_workspace = BTreeMap::new();
            for (name, ws) in nested.unwrap_or_default() {
                per_workspace.insert(name, RoleSettings::from_raw(src, ws)?);
            }
            if let Err(e) = glob::Pattern::new(&pattern) {
                let origin = settings
                    .first_origin()
                    .or_else(|| per_workspace.values().find_map(RoleSettings::first_origin))
                    .unwrap_or_else(|| src.origin(0));
                return Err(origin.error(
                    format!("[stacks.\"{pattern}\"] is not a valid glob: {e}"),
                    "write a path glob relative to the config's directory, e.g. [stacks.\"network/*\"]",
                ));
            }
            // A table that only holds workspaces (`[stacks."app".workspaces.prod]`
            // alone) is no stack mapping of its own: it must not hide a glob that
            // matches the same directory in other workspaces.
            if !only_workspaces {
                stacks.insert(pattern.clone(), settings);
            }
            if !per_workspace.is_empty() {
                stack_workspaces.insert(pattern, per_workspace);
            }
        }
        let import = match raw.import {
            None => None,
            Some(i) => {
                let platform = src.locate(i.platform);
                if !matches!(platform.value.as_str(), "spacelift" | "tfe") {
                    return Err(platform.origin.error(
                        format!("[import] platform = \"{}\" is not known", platform.value),
                        "use platform = \"spacelift\" or \"tfe\" (as `breakglass import spacelift|tfe --write` writes it)",
                    ));
                }
                let from = src.locate(i.from);
                if from.value.is_empty() {
                    return Err(from.origin.error(
                        "[import] from = [] names no source",
                        "list the admin stack's directory, e.g. from = [\"admin\"] (as `breakglass import ... --write` writes it)",
                    ));
                }
                Some(ImportRecord {
                    platform,
                    from,
                    repository: src.string(i.repository),
                })
            }
        };
        let settings = Settings {
            enabled: raw.enabled.map(|e| src.locate(e)),
            region: src.string(raw.region),
            terraform: src.string(raw.terraform),
            delivery,
            min_remaining: src.duration(raw.min_remaining)?,
            on_hangup,
            lock_wait,
            role: raw
                .role
                .map(|r| RoleSettings::from_raw(src, r))
                .transpose()?
                .unwrap_or_default(),
            workspaces,
            stacks,
            stack_workspaces,
            import,
            audit: raw
                .audit
                .map(|a| AuditSettings::from_raw(src, a))
                .transpose()?
                .unwrap_or_default(),
            state: StateSettings {
                replica_bucket: src
                    .string(raw.state.as_ref().and_then(|s| s.replica_bucket.clone())),
                replica_region: src.string(raw.state.and_then(|s| s.replica_region)),
            },
        };
        if let Some(region) = &settings.region {
            check_region(region)?;
        }
        if let Some(region) = &settings.state.replica_region {
            check_region(region)?;
        }
        if let Some(b) = &settings.state.replica_bucket {
            if b.value.trim().is_empty() || b.value.contains('/') {
                return Err(b.origin.error(
                    format!("replica_bucket = \"{}\" is not a bucket name", b.value),
                    "write the replica bucket's name only, e.g. replica_bucket = \"tfstate-replica\"",
                ));
            }
        }
        if let Some(t) = &settings.terraform {
            if t.value.trim().is_empty() {
                return Err(t.origin.error(
                    "terraform = \"\" names no program",
                    "write terraform = \"terraform\", \"tofu\" or a path to the real binary",
                ));
            }
        }
        Ok(settings)
    }

    /// Lays `over` on top of `self`, key by key.
    fn overlay(&mut self, over: Settings) {
        overlay(&mut self.enabled, over.enabled);
        overlay(&mut self.region, over.region);
        overlay(&mut self.terraform, over.terraform);
        overlay(&mut self.delivery, over.delivery);
        overlay(&mut self.min_remaining, over.min_remaining);
        overlay(&mut self.on_hangup, over.on_hangup);
        overlay(&mut self.lock_wait, over.lock_wait);
        overlay(&mut self.state.replica_bucket, over.state.replica_bucket);
        overlay(&mut self.state.replica_region, over.state.replica_region);
        self.role.overlay(over.role);
        for (name, role) in over.workspaces {
            self.workspaces.entry(name).or_default().overlay(role);
        }
        for (pattern, role) in over.stacks {
            self.stacks.entry(pattern).or_default().overlay(role);
        }
        for (pattern, per_workspace) in over.stack_workspaces {
            let mine = self.stack_workspaces.entry(pattern).or_default();
            for (name, role) in per_workspace {
                mine.entry(name).or_default().overlay(role);
            }
        }
        overlay(&mut self.import, over.import);
        self.audit.overlay(over.audit);
    }
}

fn overlay<T>(base: &mut Option<T>, over: Option<T>) {
    if over.is_some() {
        *base = over;
    }
}

impl RoleSettings {
    fn from_raw(src: &Source, raw: RawRole) -> Result<RoleSettings, ConfigError> {
        if let Some(nested) = &raw.workspaces {
            let origin = nested
                .values()
                .find_map(|r| r.arn.as_ref().map(|a| src.origin(a.span().start)))
                .unwrap_or_else(|| src.origin(0));
            return Err(origin.error(
                "a `workspaces` table is allowed only directly under [stacks.\"GLOB\"]",
                "write it as [stacks.\"DIR\".workspaces.NAME], or use [workspaces.NAME] for every directory",
            ));
        }
        let role = RoleSettings::convert(src, raw)?;
        role.check()?;
        Ok(role)
    }

    /// Checks each value on its own; checks across layers happen in `mapping`.
    fn check(&self) -> Result<(), ConfigError> {
        for arn in [&self.arn, &self.read_arn].into_iter().flatten() {
            check_arn(arn, "role", "arn:aws:iam::111111111111:role/deploy")?;
        }
        if let Some(serial) = &self.mfa_serial {
            check_arn(serial, "mfa", "arn:aws:iam::111111111111:mfa/alice")?;
        }
        if let Some(policies) = &self.policy_arns {
            for p in &policies.value {
                if !p.starts_with("arn:") || !p.contains(":policy/") {
                    return Err(policies.origin.error(
                        format!("`{p}` is not a managed policy ARN"),
                        "write policy ARNs such as \"arn:aws:iam::aws:policy/ReadOnlyAccess\"",
                    ));
                }
            }
        }
        if let Some(d) = &self.duration {
            if d.value < MIN_DURATION || d.value > MAX_DURATION {
                return Err(d.origin.error(
                    format!("duration = \"{}\" is outside what STS grants", format_duration(d.value)),
                    "use a duration from \"15m\" to \"12h\" (and at most \"1h\" when the role is chained, e.g. with MFA)",
                ));
            }
        }
        if let Some(r) = &self.refresh_before {
            if r.value < Duration::from_secs(1) {
                return Err(r.origin.error(
                    "refresh_before must be at least 1s",
                    "use a window such as \"15m\"",
                ));
            }
        }
        if let Some(id) = &self.external_id {
            if id.value.len() < 2 || id.value.len() > 1224 {
                return Err(id.origin.error(
                    "external_id must be 2 to 1224 characters",
                    "copy the external ID from the role's trust policy",
                ));
            }
        }
        Ok(())
    }
}

/// `arn:PARTITION:iam::ACCOUNT:KIND/NAME`, with a 12-digit account.
fn check_arn(arn: &Located<String>, kind: &str, example: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = arn.value.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2]
            == (if kind == "role" || kind == "mfa" {
                "iam"
            } else {
                parts[2]
            })
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix(kind)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|name| !name.is_empty() && !name.ends_with('/'));
    if ok {
        Ok(())
    } else {
        Err(arn.origin.error(
            format!("`{}` is not an IAM {kind} ARN", arn.value),
            format!("write it as \"{example}\""),
        ))
    }
}

fn check_region(region: &Located<String>) -> Result<(), ConfigError> {
    let ok = !region.value.is_empty()
        && region
            .value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.value.contains('-');
    if ok {
        Ok(())
    } else {
        Err(region.origin.error(
            format!("region = \"{}\" is not an AWS region name", region.value),
            "write a region such as \"eu-west-1\"",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    }

    fn load_err(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), CONFIG_FILE, text);
        Project::load(&p).unwrap_err().to_string()
    }

    #[test]
    fn full_example_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            CONFIG_FILE,
            r#"
enabled = false
region = "eu-west-1"
terraform = "tofu"

[role]
arn = "arn:aws:iam::111111111111:role/deploy"
read_arn = "arn:aws:iam::111111111111:role/read"
session_name = "breakglass-{user}"
duration = "1h"
refresh_before = "15m"
external_id = "xyz123"
mfa_serial = "arn:aws:iam::111111111111:mfa/alice"
source_profile = "ops"
source_identity = "{user}"
tags = { breakglass = "true" }

[workspaces.prod]
arn = "arn:aws:iam::222222222222:role/deploy"

[stacks."network/*"]
arn = "arn:aws:iam::333333333333:role/deploy"
"#,
        );
        let project = Project::load(&p).unwrap();
        let s = &project.settings;
        assert!(!project.enabled());
        assert_eq!(s.terraform.as_ref().unwrap().value, "tofu");
        assert_eq!(
            s.role.duration.as_ref().unwrap().value,
            Duration::from_secs(3600)
        );
        assert_eq!(
            s.role.refresh_before.as_ref().unwrap().value,
            Duration::from_secs(900)
        );
        assert_eq!(s.workspaces["prod"].arn.as_ref().unwrap().origin.line, 19);
        assert!(s.stacks.contains_key("network/*"));
    }

    #[test]
    fn unknown_key_gets_did_you_mean_and_position() {
        let err = load_err("enabled = true\nenabeld = true\n");
        assert!(err.contains(":2:1:"), "{err}");
        assert!(err.contains("did you mean `enabled`"), "{err}");
        let err =
            load_err("[role]\narn = \"arn:aws:iam::111111111111:role/x\"\ndurration = \"1h\"\n");
        assert!(err.contains(":3:1:"), "{err}");
        assert!(err.contains("did you mean `duration`"), "{err}");
    }

    #[test]
    fn bad_values_name_line_and_column() {
        let err = load_err("[role]\narn = \"arn:aws:iam::1111:role/x\"\n");
        assert!(err.contains(":2:7:"), "{err}");
        assert!(err.contains("not an IAM role ARN"), "{err}");
        let err = load_err("[role]\nduration = \"soon\"\n");
        assert!(
            err.contains(":2:12:") && err.contains("not a duration"),
            "{err}"
        );
        let err = load_err("[role]\nduration = \"13h\"\n");
        assert!(err.contains("15m") && err.contains("12h"), "{err}");
        let err = load_err("enabled = \"yes\"\n");
        assert!(err.contains(":1:11:"), "{err}");
        let err = load_err("delivery = \"smoke\"\n");
        assert!(err.contains("endpoint"), "{err}");
        let err = load_err("[role]\nmfa_serial = \"arn:aws:iam::111111111111:role/x\"\n");
        assert!(err.contains("not an IAM mfa ARN"), "{err}");
        let err = load_err("region = \"Europe\"\n");
        assert!(err.contains("not an AWS region"), "{err}");
    }

    #[test]
    fn state_replica_keys_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            CONFIG_FILE,
            "[state]\nreplica_bucket = \"tfstate-replica\"\nreplica_region = \"eu-central-1\"\n",
        );
        let s = Project::load(&p).unwrap().settings.state;
        assert_eq!(s.replica_bucket.unwrap().value, "tfstate-replica");
        assert_eq!(s.replica_region.unwrap().value, "eu-central-1");
        let err = load_err("[state]\nreplica_bucket = \"b\"\nreplica_regoin = \"eu-west-1\"\n");
        assert!(err.contains(":3:1:"), "{err}");
        assert!(err.contains("did you mean `replica_region`"), "{err}");
        let err = load_err("[state]\nreplica_region = \"Frankfurt\"\n");
        assert!(
            err.contains(":2:18:") && err.contains("not an AWS region"),
            "{err}"
        );
        let err = load_err("[state]\nreplica_bucket = \"s3://b/k\"\n");
        assert!(err.contains("not a bucket name"), "{err}");
    }

    #[test]
    fn human_durations() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("ninety").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h 30m");
    }

    #[test]
    fn local_file_overrides_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            CONFIG_FILE,
            "enabled = false\nregion = \"eu-west-1\"\n[role]\narn = \"arn:aws:iam::111111111111:role/a\"\nduration = \"2h\"\n",
        );
        write(
            dir.path(),
            LOCAL_FILE,
            "enabled = true\n[role]\narn = \"arn:aws:iam::111111111111:role/b\"\n",
        );
        let project = Project::load(&p).unwrap();
        assert!(project.enabled());
        let s = &project.settings;
        assert_eq!(s.region.as_ref().unwrap().value, "eu-west-1");
        assert!(s.role.arn.as_ref().unwrap().value.ends_with("role/b"));
        assert!(s
            .role
            .arn
            .as_ref()
            .unwrap()
            .origin
            .file
            .ends_with(LOCAL_FILE));
        assert_eq!(
            s.role.duration.as_ref().unwrap().value,
            Duration::from_secs(7200)
        );
        assert_eq!(project.files.len(), 2);
    }

    #[test]
    fn stack_and_workspace_tables_and_the_import_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            CONFIG_FILE,
            r#"
[stacks."app".workspaces.prod]
arn = "arn:aws:iam::111111111111:role/prod"

[stacks."net"]
arn = "arn:aws:iam::111111111111:role/net"

[stacks."net".workspaces.dev]
arn = "arn:aws:iam::111111111111:role/dev"

[import]
platform = "spacelift"
from = ["admin"]
"#,
        );
        let s = Project::load(&p).unwrap().settings;
        assert!(
            !s.stacks.contains_key("app"),
            "a table holding only workspaces is no stack mapping"
        );
        assert!(s.stacks.contains_key("net"));
        assert_eq!(
            s.stack_workspaces["app"]["prod"]
                .arn
                .as_ref()
                .unwrap()
                .origin
                .line,
            3
        );
        assert!(s.stack_workspaces["net"].contains_key("dev"));
        let import = s.import.unwrap();
        assert_eq!(import.platform.value, "spacelift");
        assert_eq!(import.from.value, vec!["admin".to_string()]);
        let err = load_err(
            "[workspaces.prod.workspaces.x]\narn = \"arn:aws:iam::111111111111:role/a\"\n",
        );
        assert!(err.contains("only directly under [stacks"), "{err}");
        let err = load_err("[import]\nplatform = \"jenkins\"\nfrom = [\"a\"]\n");
        assert!(err.contains(":2:12:") && err.contains("spacelift"), "{err}");
        let err = load_err("[import]\nplatform = \"tfe\"\nfrom = [\"a\"]\nfrm = 1\n");
        assert!(err.contains("did you mean `from`"), "{err}");
    }

    #[test]
    fn discovery_walks_up_to_the_first_config() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), CONFIG_FILE, "enabled = true\n");
        let deep = dir.path().join("a/b/c");
        fs::create_dir_all(&deep).unwrap();
        let project = Project::discover(&deep).unwrap().unwrap();
        assert_eq!(project.root, dir.path());
        assert!(project.enabled());
        let other = tempfile::tempdir().unwrap();
        assert!(Project::discover(other.path()).unwrap().is_none());
    }

    mod properties {
        //! Any config text at all: never a panic; an error always names the file,
        //! line and column; a config that loads also resolves without a panic.
        use super::*;
        use proptest::prelude::*;

        fn line() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                Just("enabled"),
                Just("region"),
                Just("terraform"),
                Just("delivery"),
                Just("min_remaining"),
                Just("on_hangup"),
                Just("lock_wait"),
                Just("arn"),
                Just("read_arn"),
                Just("duration"),
                Just("refresh_before"),
                Just("external_id"),
                Just("mfa_serial"),
                Just("session_name"),
                Just("policy_arns"),
                Just("tags"),
                Just("source_profile"),
            ];
            let value = prop_oneof![
                Just("true".to_string()),
                Just("\"15m\"".to_string()),
                Just("\"arn:aws:iam::111111111111:role/x\"".to_string()),
                Just("\"eu-west-1\"".to_string()),
                Just("\"stop\"".to_string()),
                Just("[\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]".to_string()),
                Just("{ a = \"b\" }".to_string()),
                "\"[ -~]{0,16}\"",
                "[0-9]{1,5}",
            ];
            prop_oneof![
                (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
                Just("[role]".to_string()),
                "\\[workspaces\\.[a-z]{1,5}\\]",
                "\\[stacks\\.\"[a-z*/?\\[\\]]{0,8}\"\\]",
                "[ -~]{0,30}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]
            #[test]
            fn any_config_text_loads_or_says_where_it_is_wrong(
                lines in proptest::collection::vec(line(), 0..10),
                dir in "[a-z]{0,3}(/[a-z*]{1,3}){0,2}",
                workspace in "[a-z]{1,6}",
            ) {
                let file = Path::new("/p/.breakglass.toml");
                match parse_layer(file, lines.join("\n")) {
                    Err(e) => {
                        let m = e.to_string();
                        prop_assert!(m.starts_with("/p/.breakglass.toml:"), "{}", m);
                        prop_assert!(m.contains("fix:"), "{}", m);
                    }
                    Ok(settings) => {
                        let project = Project {
                            root: PathBuf::from("/p"),
                            files: vec![file.to_path_buf()],
                            settings,
                        };
                        let _ = project.resolve(&Path::new("/p").join(&dir), &workspace);
                    }
                }
            }
        }
    }
}
