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

/// Role settings, as written in `[role]`, `[workspaces.NAME]` or `[stacks."GLOB"]`.
#[derive(Debug, Clone, Default)]
pub struct RoleSettings {
    pub arn: Option<Located<String>>,
    pub read_arn: Option<Located<String>>,
    pub session_name: Option<Located<String>>,
    pub duration: Option<Located<Duration>>,
    pub refresh_before: Option<Located<Duration>>,
    pub external_id: Option<Located<String>>,
    pub mfa_serial: Option<Located<String>>,
    pub mfa_command: Option<Located<String>>,
    pub source_profile: Option<Located<String>>,
    pub source_identity: Option<Located<String>>,
    pub tags: BTreeMap<String, Located<String>>,
    pub policy_arns: Option<Located<Vec<String>>>,
}

/// The project config after layering and checking.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub enabled: Option<Located<bool>>,
    pub region: Option<Located<String>>,
    pub terraform: Option<Located<String>>,
    pub delivery: Option<Located<Delivery>>,
    pub min_remaining: Option<Located<Duration>>,
    pub role: RoleSettings,
    pub workspaces: BTreeMap<String, RoleSettings>,
    pub stacks: BTreeMap<String, RoleSettings>,
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
    /// root) and loads it, with `.breakglass.local.toml` beside it layered on top.
    pub fn discover(dir: &Path) -> Result<Option<Project>, ConfigError> {
        match find_config(dir) {
            Some(path) => Project::load(&path).map(Some),
            None => Ok(None),
        }
    }

    /// Loads one config file and the local override beside it, if any.
    pub fn load(path: &Path) -> Result<Project, ConfigError> {
        let root = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut settings = read_layer(path)?;
        let mut files = vec![path.to_path_buf()];
        let local = root.join(LOCAL_FILE);
        if local.is_file() {
            settings.overlay(read_layer(&local)?);
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

/// The first `.breakglass.toml` at or above `dir`. A Terragrunt working copy looks from
/// the unit that owns it, so a config copied into `.terragrunt-cache` with the module's
/// source is never the one used.
pub fn find_config(dir: &Path) -> Option<PathBuf> {
    crate::mapping::owning_unit(dir)
        .ancestors()
        .map(|d| d.join(CONFIG_FILE))
        .find(|p| p.is_file())
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
    role: Option<RawRole>,
    #[serde(default)]
    workspaces: BTreeMap<String, RawRole>,
    #[serde(default)]
    stacks: BTreeMap<String, RawRole>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRole {
    arn: Option<Spanned<String>>,
    read_arn: Option<Spanned<String>>,
    session_name: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    refresh_before: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    mfa_serial: Option<Spanned<String>>,
    mfa_command: Option<Spanned<String>>,
    source_profile: Option<Spanned<String>>,
    source_identity: Option<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<String, Spanned<String>>,
    policy_arns: Option<Spanned<Vec<String>>>,
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

fn read_layer(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let src = Source {
        file: Arc::new(path.to_path_buf()),
        text,
    };
    let raw: RawFile = toml::from_str(&src.text).map_err(|e| toml_error(&src, e))?;
    Settings::from_raw(&src, raw)
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
        let delivery = match raw.delivery.map(|d| src.locate(d)) {
            None => None,
            Some(d) => {
                let value = match d.value.as_str() {
                    "endpoint" => Delivery::Endpoint,
                    "env" => Delivery::Env,
                    other => {
                        return Err(d.origin.error(
                            format!("delivery = \"{other}\" is not known"),
                            "use delivery = \"endpoint\" (refreshed, the default) or \"env\" (plain variables, never refreshed)",
                        ))
                    }
                };
                Some(Located {
                    value,
                    origin: d.origin,
                })
            }
        };
        let mut workspaces = BTreeMap::new();
        for (name, role) in raw.workspaces {
            workspaces.insert(name, RoleSettings::from_raw(src, role)?);
        }
        let mut stacks = BTreeMap::new();
        for (pattern, role) in raw.stacks {
            let settings = RoleSettings::from_raw(src, role)?;
            if let Err(e) = glob::Pattern::new(&pattern) {
                let origin = settings.first_origin().unwrap_or_else(|| src.origin(0));
                return Err(origin.error(
                    format!("[stacks.\"{pattern}\"] is not a valid glob: {e}"),
                    "write a path glob relative to the config's directory, e.g. [stacks.\"network/*\"]",
                ));
            }
            stacks.insert(pattern, settings);
        }
        let settings = Settings {
            enabled: raw.enabled.map(|e| src.locate(e)),
            region: src.string(raw.region),
            terraform: src.string(raw.terraform),
            delivery,
            min_remaining: src.duration(raw.min_remaining)?,
            role: raw
                .role
                .map(|r| RoleSettings::from_raw(src, r))
                .transpose()?
                .unwrap_or_default(),
            workspaces,
            stacks,
        };
        if let Some(region) = &settings.region {
            check_region(region)?;
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
        self.role.overlay(over.role);
        for (name, role) in over.workspaces {
            self.workspaces.entry(name).or_default().overlay(role);
        }
        for (pattern, role) in over.stacks {
            self.stacks.entry(pattern).or_default().overlay(role);
        }
    }
}

fn overlay<T>(base: &mut Option<T>, over: Option<T>) {
    if over.is_some() {
        *base = over;
    }
}

impl RoleSettings {
    fn from_raw(src: &Source, raw: RawRole) -> Result<RoleSettings, ConfigError> {
        let role = RoleSettings {
            arn: src.string(raw.arn),
            read_arn: src.string(raw.read_arn),
            session_name: src.string(raw.session_name),
            duration: src.duration(raw.duration)?,
            refresh_before: src.duration(raw.refresh_before)?,
            external_id: src.string(raw.external_id),
            mfa_serial: src.string(raw.mfa_serial),
            mfa_command: src.string(raw.mfa_command),
            source_profile: src.string(raw.source_profile),
            source_identity: src.string(raw.source_identity),
            tags: raw
                .tags
                .into_iter()
                .map(|(k, v)| (k, src.locate(v)))
                .collect(),
            policy_arns: raw.policy_arns.map(|p| src.locate(p)),
        };
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

    /// Lays `over` on top of `self`, key by key.
    pub fn overlay(&mut self, over: RoleSettings) {
        overlay(&mut self.arn, over.arn);
        overlay(&mut self.read_arn, over.read_arn);
        overlay(&mut self.session_name, over.session_name);
        overlay(&mut self.duration, over.duration);
        overlay(&mut self.refresh_before, over.refresh_before);
        overlay(&mut self.external_id, over.external_id);
        overlay(&mut self.mfa_serial, over.mfa_serial);
        overlay(&mut self.mfa_command, over.mfa_command);
        overlay(&mut self.source_profile, over.source_profile);
        overlay(&mut self.source_identity, over.source_identity);
        overlay(&mut self.policy_arns, over.policy_arns);
        self.tags.extend(over.tags);
    }

    fn first_origin(&self) -> Option<Origin> {
        [
            &self.arn,
            &self.read_arn,
            &self.session_name,
            &self.external_id,
            &self.mfa_serial,
        ]
        .into_iter()
        .flatten()
        .map(|l| l.origin.clone())
        .next()
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
}
