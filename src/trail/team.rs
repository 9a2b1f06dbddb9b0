//! `breakglass log --team`: reads the team trail from S3 (the date folders of the
//! window asked for), pairs each run's start with its end by run id, and shows who,
//! which role, why, the command and the exit code, and the runs that started and
//! never ended (killed, the machine lost, or still running).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::Error;
use crate::run::{self, RoleRun};
use crate::sink::aws::{self, Clients, SinkError};
use crate::sink::event::{self, END, HANDOVER, START};
use crate::sink::Destination;

/// The window `--team` shows without `--since`.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(24 * 3600);
/// How long the whole read may take.
const READ_LIMIT: Duration = Duration::from_secs(60);
/// Objects read at once.
const PARALLEL_READS: usize = 16;

/// The team's runs and other events.
#[derive(Debug, Default, serde::Serialize)]
pub struct View {
    /// One per run id: the start's fields overlaid by the end's, with `status`
    /// `ended`, `never ended` or `handed over`.
    pub runs: Vec<Value>,
    /// `on`, `off`, `logout`, `doctor`.
    pub events: Vec<Value>,
}

type Doc = Map<String, Value>;

/// Pairs events into runs. Events are JSON objects as written by [`event::Event`].
pub fn pair(docs: Vec<Value>) -> View {
    let mut runs: BTreeMap<String, (Option<Doc>, Option<Doc>)> = BTreeMap::new();
    let mut view = View::default();
    for doc in docs {
        let Value::Object(map) = doc else { continue };
        let kind = map.get("event").and_then(Value::as_str).unwrap_or("");
        let run_id = map
            .get("run_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        match (kind, run_id) {
            (START | HANDOVER, Some(id)) => runs.entry(id).or_default().0 = Some(map),
            (END, Some(id)) => runs.entry(id).or_default().1 = Some(map),
            _ => view.events.push(Value::Object(map)),
        }
    }
    for (run_id, (start, end)) in runs {
        let handed_over = start
            .as_ref()
            .and_then(|s| s.get("event"))
            .is_some_and(|e| e == HANDOVER);
        let status = match (&end, handed_over) {
            (Some(_), _) => "ended",
            (None, true) => "handed over",
            (None, false) => "never ended",
        };
        let start_id = start.as_ref().and_then(|s| s.get("event_id").cloned());
        let end_id = end.as_ref().and_then(|e| e.get("event_id").cloned());
        let mut run = start.unwrap_or_default();
        // Every field of the end (exit code, hang-up, ...) wins over the start's.
        run.extend(end.unwrap_or_default());
        for k in ["event", "event_id", "at"] {
            run.remove(k);
        }
        if status != "ended" {
            run.insert("ended".into(), Value::Null);
        }
        run.insert("run_id".into(), Value::from(run_id));
        run.insert("status".into(), Value::from(status));
        run.insert("start_event_id".into(), start_id.unwrap_or(Value::Null));
        run.insert("end_event_id".into(), end_id.unwrap_or(Value::Null));
        view.runs.push(Value::Object(run));
    }
    let time = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    view.runs.sort_by_key(|r| time(r, "started"));
    view.events.sort_by_key(|e| time(e, "at"));
    view
}

/// `breakglass log --team [--since D] [--json]`.
pub fn show(ctx: &Context, since: Option<Duration>, json: bool) -> Result<i32, Error> {
    let project = ctx.project()?;
    let Some(dest) = Destination::of(project).filter(|d| d.s3.is_some()) else {
        return Err(Error::Message(format!(
            "{} has no [audit] s3 = \"s3://...\", so there is no team trail to read\n  fix: add [audit] s3 = \"s3://BUCKET/breakglass/audit/\" to .breakglass.toml (README: Team audit trail)",
            project.files[0].display()
        )));
    };
    let role = RoleRun::for_command(ctx, "log")?;
    let mut rt = None;
    let (creds, _) = run::obtain(&role.broker, &mut rt)?;
    let runtime = match rt {
        Some(r) => r,
        None => run::runtime()?,
    };
    let cutoff = SystemTime::now()
        .checked_sub(since.unwrap_or(DEFAULT_SINCE))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let docs = runtime
        .block_on(async {
            let clients = Clients::new(&dest, &creds, READ_LIMIT).await;
            tokio::time::timeout(READ_LIMIT, read(&clients, &dest, cutoff)).await
        })
        .map_err(|_| SinkError::TimedOut(humantime::format_duration(READ_LIMIT).to_string()))
        .and_then(|r| r)
        .map_err(|e| {
            Error::Message(format!(
                "cannot read the team audit trail {}: {e}\n  fix: {}",
                dest.describe(),
                if matches!(e, SinkError::Denied { .. }) {
                    "grant the role that permission (README: Team audit trail)"
                } else {
                    "check the network path to S3, then run the command again"
                }
            ))
        })?;
    let cutoff_text = crate::clock::rfc3339(cutoff);
    let docs: Vec<Value> = docs
        .into_iter()
        .filter(|d| d.get("at").and_then(Value::as_str).unwrap_or("") >= cutoff_text.as_str())
        .collect();
    let view = pair(docs);
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&view).unwrap_or_default()
        );
        return Ok(0);
    }
    if view.runs.is_empty() && view.events.is_empty() {
        crate::say!(
            "breakglass: no break-glass use in {} since {cutoff_text}",
            dest.describe()
        );
    }
    for line in human(&view) {
        // A closed pipe (`| head`) ends the listing quietly.
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(0)
}

/// Every event document in the date folders from `cutoff` to now.
async fn read(
    clients: &Clients,
    dest: &Destination,
    cutoff: SystemTime,
) -> Result<Vec<Value>, SinkError> {
    let (Some(s3), Some(loc)) = (&clients.s3, &dest.s3) else {
        return Ok(Vec::new());
    };
    let now = SystemTime::now();
    let mut folders = Vec::new();
    let mut day = cutoff;
    loop {
        let folder = event::day_prefix(&loc.prefix, day.min(now));
        if !folders.contains(&folder) {
            folders.push(folder);
        }
        if day >= now {
            break;
        }
        day += Duration::from_secs(24 * 3600);
    }
    let mut keys = Vec::new();
    for folder in &folders {
        keys.extend(aws::list(s3, &loc.bucket, folder).await?);
    }
    let mut docs = Vec::new();
    for chunk in keys.chunks(PARALLEL_READS) {
        let mut set = tokio::task::JoinSet::new();
        for key in chunk {
            let (s3, bucket, key) = (s3.clone(), loc.bucket.clone(), key.clone());
            set.spawn(async move {
                let body = aws::get(&s3, &bucket, &key).await;
                (key, body)
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((key, body)) = joined else { continue };
            match serde_json::from_slice::<Value>(&body?) {
                Ok(v) => docs.push(v),
                Err(e) => crate::say!(
                    "breakglass: warning: skipping s3://{}/{key}: not an audit event ({e})",
                    loc.bucket
                ),
            }
        }
    }
    Ok(docs)
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The listing for people: one line per run and per event, in time order.
pub fn human(view: &View) -> Vec<String> {
    let mut lines: Vec<(String, String)> = Vec::new();
    let who = |v: &Value| format!("{}@{}", text(v, "user"), text(v, "host"));
    let role = |v: &Value| {
        let arn = text(v, "role_arn");
        arn.rsplit('/').next().unwrap_or(arn).to_string()
    };
    let reason = |v: &Value| match v.get("reason").and_then(Value::as_str) {
        Some(r) => format!("  reason: {r}"),
        None => String::new(),
    };
    for r in &view.runs {
        let status = text(r, "status");
        let exit = match r.get("exit_code") {
            Some(Value::Number(n)) => n.to_string(),
            _ => "-".to_string(),
        };
        let args: Vec<&str> = r
            .get("args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let shown_status = if status == "never ended" {
            "NEVER ENDED".to_string()
        } else {
            status.to_string()
        };
        lines.push((
            text(r, "started").to_string(),
            format!(
                "{}  {:<12} exit {:<4} {:<24} {:<12} {} {}{}",
                text(r, "started"),
                shown_status,
                exit,
                who(r),
                role(r),
                text(r, "kind"),
                args.join(" "),
                reason(r)
            ),
        ));
    }
    for e in &view.events {
        let at = text(e, "at");
        let at = at.split('.').next().unwrap_or(at);
        let until = match e.get("until").and_then(Value::as_str) {
            Some(u) => format!(" until {u}"),
            None => String::new(),
        };
        lines.push((
            text(e, "at").to_string(),
            format!(
                "{at}Z  {:<12} {:<9} {:<24} {:<12} {}{until}{}",
                text(e, "event"),
                "",
                who(e),
                role(e),
                text(e, "project"),
                reason(e)
            ),
        ));
    }
    lines.sort();
    lines.into_iter().map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn starts_pair_with_ends_and_lone_starts_never_ended() {
        let docs = vec![
            json!({"event": "start", "event_id": "s1", "run_id": "r1", "at": "2026-01-01T00:00:01.000Z", "started": "2026-01-01T00:00:01Z", "ended": "", "user": "alice", "exit_code": null}),
            json!({"event": "end", "event_id": "e1", "run_id": "r1", "at": "2026-01-01T00:00:09.000Z", "started": "2026-01-01T00:00:01Z", "ended": "2026-01-01T00:00:09Z", "user": "alice", "exit_code": 0, "hangup": false}),
            json!({"event": "start", "event_id": "s2", "run_id": "r2", "at": "2026-01-01T00:00:05.000Z", "started": "2026-01-01T00:00:05Z", "ended": "", "user": "bob", "exit_code": null}),
            json!({"event": "on", "event_id": "o1", "at": "2026-01-01T00:00:00.000Z", "user": "alice"}),
        ];
        let v = pair(docs);
        assert_eq!(v.runs.len(), 2);
        assert_eq!(v.runs[0]["run_id"], "r1");
        assert_eq!(v.runs[0]["status"], "ended");
        assert_eq!(v.runs[0]["exit_code"], 0);
        assert_eq!(v.runs[0]["hangup"], false, "fields of the end flow through");
        assert_eq!(v.runs[0]["start_event_id"], "s1");
        assert_eq!(v.runs[0]["end_event_id"], "e1");
        assert_eq!(v.runs[1]["status"], "never ended");
        assert_eq!(v.runs[1]["ended"], Value::Null);
        assert_eq!(v.events.len(), 1);
        let lines = human(&v);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains(" on "), "{lines:?}");
        assert!(lines[2].contains("NEVER ENDED"), "{lines:?}");
    }
}
