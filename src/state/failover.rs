//! `breakglass state failover` and `failback`: the override file that points the
//! backend at the replica, the git guard, and whether a failback may push the
//! replica's state home.
//!
//! An `_override.tf` file's backend block replaces the original block as a whole, so
//! the override repeats every setting of the original, with the bucket and region
//! changed and S3 lockfile locking instead of a DynamoDB table (a table in the dead
//! region is dead too).

use std::path::Path;
use std::process::{Command, Stdio};

use hcl::{Attribute, Block, Body, Expression};

use crate::backend::Backend;

use super::location::Location;
use super::marker::OVERRIDE_FILE;
use super::replica::Replica;
use super::snapshot::Snapshot;
use super::StateError;

/// Settings of the original block that the override leaves out: DynamoDB locking.
const DROPPED: &[&str] = &["dynamodb_table"];

/// The text of `breakglass_failover_override.tf`: the original s3 backend block with
/// `bucket` and `region` set to the replica's, `use_lockfile = true` and no
/// `dynamodb_table`.
pub fn override_text(
    original: &Backend,
    replica: &Replica,
    header: &str,
) -> Result<String, StateError> {
    let text = std::fs::read_to_string(&original.file)
        .map_err(|e| StateError::io(format!("read {}", original.file.display()), e))?;
    let body: Body = hcl::parse(&text).map_err(|e| crate::backend::BackendError::Parse {
        path: original.file.clone(),
        message: e.to_string().lines().next().unwrap_or("").to_string(),
    })?;
    let block = body
        .blocks()
        .filter(|b| b.identifier() == "terraform")
        .flat_map(|t| t.body().blocks())
        .find(|b| {
            b.identifier() == "backend" && b.labels().first().is_some_and(|l| l.as_str() == "s3")
        })
        .ok_or_else(|| StateError::NoBackend {
            dir: original.file.display().to_string(),
        })?;
    let mut attrs: Vec<Attribute> = Vec::new();
    for a in block.body().attributes() {
        let value = match a.key() {
            "bucket" => Expression::from(replica.bucket.clone()),
            "region" => Expression::from(replica.region.clone()),
            "use_lockfile" => Expression::from(true),
            k if DROPPED.contains(&k) => continue,
            _ => a.expr().clone(),
        };
        attrs.push(Attribute::new(a.key().to_string(), value));
    }
    for (key, value) in [
        ("region", Expression::from(replica.region.clone())),
        ("use_lockfile", Expression::from(true)),
    ] {
        if !attrs.iter().any(|a| a.key() == key) {
            attrs.push(Attribute::new(key, value));
        }
    }
    let backend = Block::builder("backend")
        .add_label("s3")
        .add_attributes(attrs)
        .add_blocks(block.body().blocks().cloned())
        .build();
    let out = Body::builder()
        .add_block(Block::builder("terraform").add_block(backend).build())
        .build();
    let hcl = hcl::to_string(&out)
        .map_err(|e| StateError::io("write the override", std::io::Error::other(e.to_string())))?;
    Ok(format!("{header}{hcl}"))
}

/// The comment at the top of the override file.
pub fn header(
    primary: &Location,
    replica: &Replica,
    original: &Backend,
    when: &str,
    who: &str,
) -> String {
    format!(
        "# Written by `breakglass state failover` at {when} ({who}).\n\
         # The state bucket s3://{} ({}) was out of reach, so terraform uses its replica\n\
         # s3://{} ({}) with S3 lockfile locking. This block replaces the backend block of\n\
         # {} as a whole.\n\
         # Never commit this file. End the failover with `breakglass state failback`.\n\n",
        primary.bucket,
        primary.region.as_deref().unwrap_or("the role's region"),
        replica.bucket,
        replica.region,
        original.file.display(),
    )
}

/// Refuses when the override file is tracked by git (a failover must never reach the
/// other users of the repository). Returns a warning when git does not ignore it.
pub fn git_guard(dir: &Path) -> Result<Option<String>, StateError> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .and_then(|s| s.code())
    };
    if git(&["ls-files", "--error-unmatch", "--", OVERRIDE_FILE]) == Some(0) {
        return Err(StateError::refused(
            format!("{OVERRIDE_FILE} is tracked by git in {}: a failover written there would reach everyone who pulls", dir.display()),
            format!("git rm --cached {OVERRIDE_FILE}, add `{OVERRIDE_FILE}` to .gitignore, commit, then run this again"),
        ));
    }
    // 1: a repository that does not ignore it (0: ignored, 128: no repository).
    Ok(
        (git(&["check-ignore", "-q", "--", OVERRIDE_FILE]) == Some(1)).then(|| {
            format!("{OVERRIDE_FILE} is not in .gitignore: add it, so that it is never committed")
        }),
    )
}

/// What a failback does with the replica's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failback {
    /// The replica is newer: push it to the primary.
    Push,
    /// Both hold the same state: nothing to push.
    NothingNew,
}

/// Whether the replica's state may go home. Refused when the primary was written after
/// the failover (its serial is newer), or holds another lineage, or the two diverged at
/// the same serial: a push would lose those changes.
pub fn decide(
    primary: Option<&Snapshot>,
    replica: &Snapshot,
    primary_url: &str,
    replica_url: &str,
) -> Result<Failback, StateError> {
    let Some(p) = primary else {
        return Ok(Failback::Push);
    };
    let keep = format!(
        "compare the two (`terraform state pull` now shows the replica's; `breakglass state versions` after a failback shows the primary's) and bring the missing changes into one of them; to keep the primary's state and drop the replica's, delete {OVERRIDE_FILE} and run `terraform init -reconfigure`"
    );
    if p.lineage != replica.lineage {
        return Err(StateError::refused(
            format!("the primary {primary_url} holds another state (lineage {}) than the replica {replica_url} (lineage {})", p.lineage, replica.lineage),
            keep,
        ));
    }
    if p.serial > replica.serial {
        return Err(StateError::refused(
            format!(
                "the primary {primary_url} was written after the failover: its serial {} is newer than the replica's {} ({replica_url}). Pushing the replica would throw those changes away",
                p.serial, replica.serial
            ),
            keep,
        ));
    }
    if p.serial == replica.serial {
        return if p.same_content(replica) {
            Ok(Failback::NothingNew)
        } else {
            Err(StateError::refused(
                format!("the primary {primary_url} and the replica {replica_url} both hold serial {} with different resources: both were written", p.serial),
                keep,
            ))
        };
    }
    Ok(Failback::Push)
}

/// The loud banner after a failover.
pub fn banner(replica: &Location, from: &str) -> String {
    let line = "=".repeat(72);
    format!(
        "{line}\n  FAILED OVER: terraform now keeps this project's state in the replica\n  {} ({}), found from {from},\n  with S3 lockfile locking. Every terraform run here uses it until\n  `breakglass state failback`, once the primary region is back.\n{line}",
        replica.url(),
        replica.region.as_deref().unwrap_or("?"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_repeats_every_setting_with_the_replica() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("main.tf");
        std::fs::write(
            &file,
            "terraform {\n  backend \"s3\" {\n    bucket = \"tfstate\"\n    key = \"p/t.tfstate\"\n    region = \"eu-west-1\"\n    dynamodb_table = \"locks\"\n    encrypt = true\n    allowed_account_ids = [\"123456789012\"]\n    assume_role = {\n      role_arn = \"arn:aws:iam::123456789012:role/x\"\n    }\n  }\n}\nresource \"terraform_data\" \"x\" {}\n",
        )
        .unwrap();
        let original = crate::backend::find(dir.path()).unwrap().unwrap();
        let replica = Replica {
            bucket: "tfstate-replica".into(),
            region: "eu-central-1".into(),
            from: "test".into(),
        };
        let text = override_text(&original, &replica, "# header\n").unwrap();
        assert!(text.starts_with("# header\n"), "{text}");
        let parsed = crate::backend::parse(&text, Path::new("o.tf"))
            .unwrap()
            .unwrap();
        assert_eq!(parsed.string("bucket"), Some("tfstate-replica"));
        assert_eq!(parsed.string("region"), Some("eu-central-1"));
        assert_eq!(parsed.string("key"), Some("p/t.tfstate"));
        assert_eq!(parsed.bool("encrypt"), Some(true));
        assert_eq!(parsed.bool("use_lockfile"), Some(true));
        assert_eq!(parsed.string("dynamodb_table"), None);
        assert_eq!(
            parsed.nested("assume_role", "role_arn"),
            Some("arn:aws:iam::123456789012:role/x")
        );
        assert!(text.contains("allowed_account_ids"), "{text}");
    }

    fn snap(serial: u64, lineage: &str, res: &str) -> Snapshot {
        Snapshot::parse(
            format!("{{\"serial\":{serial},\"lineage\":\"{lineage}\",\"resources\":[{res}]}}")
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn failback_pushes_only_a_newer_replica() {
        let r = snap(5, "L", "");
        assert_eq!(decide(None, &r, "p", "r").unwrap(), Failback::Push);
        assert_eq!(
            decide(Some(&snap(4, "L", "")), &r, "p", "r").unwrap(),
            Failback::Push
        );
        assert_eq!(
            decide(Some(&snap(5, "L", "")), &r, "p", "r").unwrap(),
            Failback::NothingNew
        );
        let newer = decide(Some(&snap(6, "L", "")), &r, "p", "r")
            .unwrap_err()
            .to_string();
        assert!(
            newer.contains("written after the failover") && newer.contains("fix:"),
            "{newer}"
        );
        assert!(decide(Some(&snap(5, "L", "{}")), &r, "p", "r").is_err());
        assert!(decide(Some(&snap(1, "M", "")), &r, "p", "r").is_err());
    }

    #[test]
    fn a_tracked_override_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("git is needed for this test")
                .success();
            assert!(ok, "git {args:?} failed");
        };
        // No repository: fine, and nothing to warn about.
        assert!(git_guard(dir.path()).unwrap().is_none());
        git(&["init", "-q"]);
        let warning = git_guard(dir.path())
            .unwrap()
            .expect("not ignored: a warning");
        assert!(warning.contains(".gitignore"), "{warning}");
        std::fs::write(dir.path().join(".gitignore"), format!("{OVERRIDE_FILE}\n")).unwrap();
        assert!(git_guard(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join(OVERRIDE_FILE), "# x\n").unwrap();
        git(&["add", "-f", OVERRIDE_FILE]);
        let err = git_guard(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("tracked by git") && err.contains(".gitignore"),
            "{err}"
        );
    }
}
