//! One team-trail event: its id, its type (`on`, `off`, `start`, `end`, `handover`,
//! `logout`, `doctor`), the run id that ties a start to its end, and every field of the
//! local audit line. Also the object key it is written under, and the rule that says
//! which events page someone.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::audit::Record;

/// A run's start: sent when terraform (or `exec`'s command) starts.
pub const START: &str = "start";
/// A run's end, with the exit code (built from the local audit line).
pub const END: &str = "end";
/// A `delivery = "env"` hand-over: terraform is exec'd, so no end is ever recorded.
pub const HANDOVER: &str = "handover";

/// A new random id: 128 bits, as 32 hex digits.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No randomness: the time and pid still keep two writers apart.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (nanos ^ (u128::from(std::process::id()) << 96)).to_be_bytes();
    }
    hex::encode(bytes)
}

/// One event, ready to be written and queued.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    /// `on`, `off`, `start`, `end`, `handover`, `logout`, `doctor`.
    pub kind: String,
    pub at: SystemTime,
    /// The object key under the trail's prefix: `<prefix><UTC date>/<time>-<id>.json`.
    pub key: String,
    /// The JSON document, exactly as written (a retry writes the same bytes).
    pub body: String,
    /// The alert to publish for it, if the event pages (see [`pages`]).
    pub alert: Option<Alert>,
}

/// An SNS message.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
pub struct Alert {
    pub subject: String,
    pub message: String,
}

#[derive(Serialize)]
struct Document<'a> {
    event_id: &'a str,
    event: &'a str,
    run_id: Option<&'a str>,
    at: String,
    /// Every field of the local audit line (so whatever it gains, the trail gains).
    #[serde(flatten)]
    record: &'a Record,
    /// Fields of this event type only (`until` for `on`).
    #[serde(flatten)]
    extra: &'a BTreeMap<String, Value>,
}

impl Event {
    /// Builds the event `kind` for `record` under `prefix`.
    pub fn new(
        kind: &str,
        run_id: Option<&str>,
        record: &Record,
        extra: &BTreeMap<String, Value>,
        prefix: &str,
    ) -> Event {
        let id = new_id();
        let at = SystemTime::now();
        let doc = Document {
            event_id: &id,
            event: kind,
            run_id,
            at: rfc3339_millis(at),
            record,
            extra,
        };
        let body = serde_json::to_string(&doc).unwrap_or_else(|e| {
            // Only a non-string map key could fail; there is none, but never lose the event.
            serde_json::json!({ "event_id": id, "event": kind, "run_id": run_id, "error": e.to_string() })
                .to_string()
        });
        let alert = pages(kind, record).then(|| alert_for(kind, record, &body));
        Event {
            key: object_key(prefix, at, &id),
            id,
            kind: kind.to_string(),
            at,
            body,
            alert,
        }
    }
}

/// `<prefix><UTC date>/<HHMMSS.mmm>Z-<id>.json`: a listing is in time order, and two
/// writers never collide.
pub fn object_key(prefix: &str, at: SystemTime, id: &str) -> String {
    let t = utc(at);
    format!(
        "{prefix}{:04}-{:02}-{:02}/{:02}{:02}{:02}.{:03}Z-{id}.json",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The date folder for a day: `<prefix><YYYY-MM-DD>/`.
pub fn day_prefix(prefix: &str, day: SystemTime) -> String {
    let t = utc(day);
    format!(
        "{prefix}{:04}-{:02}-{:02}/",
        t.year(),
        u8::from(t.month()),
        t.day()
    )
}

fn utc(at: SystemTime) -> OffsetDateTime {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis().min(253_402_300_799_000) as i128)
        .unwrap_or(0);
    OffsetDateTime::from_unix_timestamp_nanos(secs * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-11-22T05:30:12.123Z`.
fn rfc3339_millis(at: SystemTime) -> String {
    let t = utc(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Terraform subcommands that change infrastructure or state.
const CHANGING: &[&str] = &[
    "apply",
    "destroy",
    "import",
    "taint",
    "untaint",
    "force-unlock",
];
/// `terraform state` subcommands that change state.
const CHANGING_STATE: &[&str] = &["rm", "mv", "push", "replace-provider"];
/// breakglass's own commands (the audit record's kind or subcommand) that change state:
/// `recover` (a state push) and `breakglass state restore|failover`.
const CHANGING_COMMANDS: &[&str] = &[
    "recover",
    "restore",
    "failover",
    "failback",
    "state restore",
    "state failover",
    "state failback",
];

/// True when the event pages: `on`, and the start of anything that can change
/// infrastructure or state. Decided from the audit record alone (its kind, subcommand
/// and redacted arguments), so a new command only has to be named in the lists above.
pub fn pages(kind: &str, r: &Record) -> bool {
    match kind {
        "on" => true,
        START | HANDOVER => changes_infrastructure(r),
        _ => false,
    }
}

/// True for a run that can change infrastructure or state.
pub fn changes_infrastructure(r: &Record) -> bool {
    if CHANGING_COMMANDS.contains(&r.kind.as_str())
        || r.subcommand
            .as_deref()
            .is_some_and(|s| CHANGING_COMMANDS.contains(&s) && r.kind != "terraform")
    {
        return true;
    }
    match r.kind.as_str() {
        "terraform" => terraform_changes(&r.args),
        // `breakglass exec -- terraform apply`: the program's own arguments.
        "exec" => r.args.split_first().is_some_and(|(program, rest)| {
            let name = program.rsplit('/').next().unwrap_or(program);
            (name == "terraform" || name == "tofu") && terraform_changes(rest)
        }),
        _ => false,
    }
}

/// True for a terraform command line (arguments after the program) that changes
/// infrastructure or state.
fn terraform_changes(args: &[String]) -> bool {
    // As terraform reads it: global options first, then the subcommand.
    let mut words = args
        .iter()
        .map(String::as_str)
        .skip_while(|a| a.starts_with('-'));
    match words.next() {
        Some("state") => words
            .find(|a| !a.starts_with('-'))
            .is_some_and(|s| CHANGING_STATE.contains(&s)),
        Some(sub) => CHANGING.contains(&sub),
        None => false,
    }
}

/// The SNS message for an event: a subject line for e-mail and chat, and a body that
/// says who, what, where and why, then the event itself.
fn alert_for(kind: &str, r: &Record, body: &str) -> Alert {
    let role = r.role_arn.rsplit('/').next().unwrap_or(&r.role_arn);
    let (what, short) = match kind {
        "on" => (
            "switched break-glass mode on".to_string(),
            "break-glass ON".to_string(),
        ),
        _ => (
            format!("started `{}`", command_line(r)),
            format!("{} {}", r.kind, r.subcommand.as_deref().unwrap_or("")),
        ),
    };
    // The subject is short (SNS allows 100 characters): who, what, which role.
    let subject: String = format!(
        "breakglass: {}@{} {} as {role}",
        r.user,
        r.host,
        short.trim()
    )
    .chars()
    .map(|c| {
        if c.is_ascii() && !c.is_ascii_control() {
            c
        } else {
            '_'
        }
    })
    .take(100)
    .collect();
    let message = format!(
        "{}@{} {what}\nrole: {}\nreason: {}\nproject: {} (workspace {})\n\n{body}\n",
        r.user,
        r.host,
        r.role_arn,
        r.reason.as_deref().unwrap_or("(none given)"),
        r.project,
        r.workspace,
    );
    Alert { subject, message }
}

/// How a run's command reads: `terraform apply -auto-approve`, `exec aws s3 ls`, ...
pub fn command_line(r: &Record) -> String {
    let mut words = vec![r.kind.clone()];
    words.extend(r.args.iter().cloned());
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, args: &[&str]) -> Record {
        Record {
            started: String::new(),
            ended: String::new(),
            user: "alice".into(),
            host: "h".into(),
            kind: kind.into(),
            source_arn: None,
            role_arn: "arn:aws:iam::111111111111:role/deploy".into(),
            session_name: "s".into(),
            source_identity: None,
            workspace: "default".into(),
            project: "/p".into(),
            subcommand: args
                .iter()
                .find(|a| !a.starts_with('-'))
                .map(|s| s.to_string()),
            args: args.iter().map(|s| s.to_string()).collect(),
            reason: Some("INC-1".into()),
            exit_code: None,
            hangup: false,
        }
    }

    #[test]
    fn changing_commands_page_and_reading_ones_do_not() {
        for args in [
            &["apply", "-auto-approve"][..],
            &["-chdir=x", "destroy"],
            &["import", "a.b", "id"],
            &["state", "rm", "a.b"],
            &["state", "-lock=false", "push", "f"],
            &["state", "replace-provider", "a", "b"],
            &["taint", "a"],
            &["untaint", "a"],
            &["force-unlock", "ID"],
        ] {
            assert!(pages(START, &record("terraform", args)), "{args:?}");
        }
        for args in [
            &["plan"][..],
            &["state", "list"],
            &["state", "pull"],
            &["init"],
            &["output"],
        ] {
            assert!(!pages(START, &record("terraform", args)), "{args:?}");
        }
        assert!(pages("on", &record("on", &[])));
        assert!(!pages("off", &record("off", &[])));
        assert!(!pages(END, &record("terraform", &["apply"])));
        assert!(pages(
            START,
            &record("recover", &["state", "push", "errored.tfstate"])
        ));
        assert!(pages(START, &record("state", &["restore"])));
        assert!(pages(START, &record("failover", &[])));
        assert!(pages(
            START,
            &record("exec", &["/usr/bin/terraform", "apply"])
        ));
        assert!(!pages(START, &record("exec", &["aws", "s3", "ls"])));
    }

    #[test]
    fn keys_are_dated_and_in_time_order() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_763_789_412_123);
        assert_eq!(
            object_key("audit/", t, "ab"),
            "audit/2025-11-22/053012.123Z-ab.json"
        );
        assert_eq!(day_prefix("a/", t), "a/2025-11-22/");
        assert_eq!(new_id().len(), 32);
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn the_document_holds_the_record_and_the_ids() {
        let r = record("terraform", &["apply", "-var=x=<redacted>"]);
        let mut extra = BTreeMap::new();
        extra.insert("until".to_string(), Value::from("later"));
        let e = Event::new(START, Some("run1"), &r, &extra, "p/");
        let v: Value = serde_json::from_str(&e.body).unwrap();
        assert_eq!(v["event_id"], e.id.as_str());
        assert_eq!(v["event"], "start");
        assert_eq!(v["run_id"], "run1");
        assert_eq!(v["role_arn"], r.role_arn.as_str());
        assert_eq!(v["args"][1], "-var=x=<redacted>");
        assert_eq!(v["until"], "later");
        assert!(e.key.starts_with("p/") && e.key.ends_with(&format!("-{}.json", e.id)));
        let alert = e.alert.unwrap();
        assert!(alert.subject.contains("alice") && alert.subject.contains("apply"));
        assert!(alert.message.contains(&e.id));
    }
}
