//! The team audit trail (`[audit]`): every break-glass use (`on`, `off`, the start and
//! end of each run, `logout`, the doctor's probe) as one JSON object under an S3
//! prefix, and an SNS alert when break-glass mode goes on or a command that changes
//! infrastructure starts. Events are signed with the role's credentials, queued on
//! disk before they are sent (at least once; the event id in the key makes retries
//! harmless), and never hold up terraform longer than the bound (default 2 s).
//!
//! - [`event`]: the event document, its key, and which events page.
//! - [`queue`]: the local queue.
//! - [`aws`]: the S3 and SNS calls.
//! - `worker`: the background sender.
//! - [`team`]: `breakglass log --team`.
//! - [`check`]: the doctor's `audit.sink`.

pub mod aws;
pub mod event;
pub mod queue;
mod worker;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::audit::Record;
use crate::broker::Entry;
use crate::config::{topic_region, Project, S3Location};
use crate::paths::Dirs;
use event::Event;
use queue::{Pending, Queue};
use worker::{Slot, Worker};

/// Where a project's events go, and how long a run waits for them.
#[derive(Debug, Clone)]
pub struct Destination {
    pub s3: Option<S3Location>,
    pub topic: Option<String>,
    pub timeout: Duration,
}

impl Destination {
    /// The project's `[audit]` destination, if it has one.
    pub fn of(project: &Project) -> Option<Destination> {
        let a = &project.settings.audit;
        a.is_configured().then(|| Destination {
            s3: a.s3.as_ref().map(|l| l.value.clone()),
            topic: a.sns_topic_arn.as_ref().map(|t| t.value.clone()),
            timeout: a.timeout(),
        })
    }

    pub fn topic_region(&self) -> Option<&str> {
        self.topic.as_deref().and_then(topic_region)
    }

    /// A short stable name for the destination: its queue directory.
    pub fn id(&self) -> String {
        let text = format!(
            "{}|{}",
            self.s3
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            self.topic.as_deref().unwrap_or("")
        );
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }

    /// `s3://bucket/prefix/` and/or the topic, for messages.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .s3
            .iter()
            .map(ToString::to_string)
            .chain(self.topic.iter().cloned())
            .collect();
        parts.join(" and ")
    }

    fn prefix(&self) -> &str {
        self.s3.as_ref().map_or("", |l| l.prefix.as_str())
    }
}

/// One process's events for one destination.
#[derive(Debug)]
pub struct Trail {
    pub dest: Destination,
    pub queue: Queue,
    pub project: String,
    /// Ties a run's start to its end.
    pub run_id: String,
    pub worker: Option<Worker>,
    pub posted: usize,
    pub flushing: bool,
}

impl Trail {
    /// The trail for `project`, or `None` when it has no `[audit]` table.
    pub fn for_project(project: &Project, dirs: &Dirs) -> Option<Trail> {
        let dest = Destination::of(project)?;
        Some(Trail {
            queue: Queue::new(dirs, &dest.id()),
            dest,
            project: project.root.display().to_string(),
            run_id: event::new_id(),
            worker: None,
            posted: 0,
            flushing: false,
        })
    }

    /// Queues the event `kind` for `record` and, with credentials, starts sending it
    /// (then the rest of the queue) in the background. Without credentials it stays
    /// queued for the next run. Never blocks and never fails.
    pub fn post(
        &mut self,
        kind: &str,
        record: &Record,
        extra: &BTreeMap<String, Value>,
        creds: Option<&Entry>,
    ) {
        let run_id = matches!(kind, event::START | event::END | event::HANDOVER)
            .then_some(self.run_id.as_str());
        let ev = Event::new(kind, run_id, record, extra, self.dest.prefix());
        let pending = Pending::new(
            &ev,
            self.dest.s3.is_some(),
            self.dest.topic.is_some(),
            &self.project,
        );
        let slot = match self
            .queue
            .add(pending.clone(), &event::object_key("", ev.at, &ev.id))
        {
            Ok(held) => Slot::Held(held),
            Err(e) => {
                crate::say!(
                    "breakglass: warning: cannot queue the audit event in {}: {e}; sending it once without a copy",
                    self.queue.dir().display()
                );
                Slot::Unqueued(pending)
            }
        };
        self.posted += 1;
        if let Some(creds) = creds {
            match &mut self.worker {
                Some(w) => w.credentials(creds),
                None => self.worker = Worker::start(self.dest.clone(), self.queue.clone(), creds),
            }
        }
        if let Some(w) = &self.worker {
            w.own(slot);
            if !self.flushing {
                w.flush();
                self.flushing = true;
            }
        }
    }

    /// Waits, at most the bound, for what was posted (and the queue's backlog), and
    /// warns once if this process's events did not get through: they stay queued.
    pub fn wait(&mut self) {
        let Some(w) = &self.worker else {
            return;
        };
        let progress = w.wait(Instant::now() + self.dest.timeout);
        if progress.own_done < self.posted {
            let why = progress.error.map_or_else(
                || {
                    format!(
                        "no answer within {}",
                        humantime::format_duration(self.dest.timeout)
                    )
                },
                |e| e.to_string(),
            );
            crate::say!(
                "breakglass: warning: the team audit trail ({}) was not reached: {why}\n  {} event(s) wait in {}; the next break-glass run or `breakglass log --flush` sends them\n  fix: {}",
                self.dest.describe(),
                self.posted - progress.own_done,
                self.queue.dir().display(),
                fix_for(&why),
            );
        }
    }

    /// Sends the whole queue with `creds`, waiting up to `limit`.
    pub fn flush_all(&mut self, creds: &Entry, limit: Duration) -> worker::Progress {
        match &mut self.worker {
            Some(w) => w.credentials(creds),
            None => self.worker = Worker::start(self.dest.clone(), self.queue.clone(), creds),
        }
        match &self.worker {
            Some(w) => {
                w.flush();
                w.wait(Instant::now() + limit)
            }
            None => worker::Progress::default(),
        }
    }
}

/// The next step for a failure's text.
pub fn fix_for(why: &str) -> String {
    if why.contains("the role needs") {
        "grant the role that permission (README: Team audit trail), then run `breakglass log --flush`".to_string()
    } else {
        "check the network path to S3 and SNS, then run `breakglass log --flush`".to_string()
    }
}
