//! The background sender: one thread with its own small runtime that sends this
//! process's events first, then whatever the queue holds, one entry at a time, while
//! terraform runs. The caller waits for it only at the end, and only up to the bound.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::aws::{self, Clients, SinkError};
use super::queue::{Held, Pending, Queue};
use super::Destination;
use crate::broker::Entry;

/// An event to send: queued on disk (the normal case), or only in memory when the
/// queue could not be written.
#[derive(Debug)]
pub enum Slot {
    Held(Held),
    Unqueued(Pending),
}

impl Slot {
    fn pending(&mut self) -> &mut Pending {
        match self {
            Slot::Held(h) => &mut h.pending,
            Slot::Unqueued(p) => p,
        }
    }

    fn save(self) {
        if let Slot::Held(h) = self {
            let path = h.path().to_path_buf();
            if let Err(e) = h.save() {
                crate::say!(
                    "breakglass: warning: could not update the audit queue entry {}: {e}",
                    path.display()
                );
            }
        }
    }
}

#[derive(Debug)]
enum Job {
    /// Sign with these credentials from now on.
    Creds(Box<Entry>),
    /// One of this process's own events.
    Own(Slot),
    /// Everything already in the queue.
    Flush,
}

/// What the sender has done so far.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Jobs and queue entries not yet finished.
    outstanding: usize,
    /// This process's own events fully delivered.
    pub own_done: usize,
    /// Queued entries (from earlier runs) fully delivered.
    pub flushed: usize,
    /// Objects written (or found already written), alerts published.
    pub objects: usize,
    pub alerts: usize,
    /// The first failure, for the warning.
    pub error: Option<SinkError>,
}

type Shared = Arc<(Mutex<Progress>, Condvar)>;

/// A running sender.
#[derive(Debug)]
pub struct Worker {
    tx: mpsc::Sender<Job>,
    shared: Shared,
    key_id: String,
}

impl Worker {
    /// Starts the sender for `dest`, signing with `creds`.
    pub fn start(dest: Destination, queue: Queue, creds: &Entry) -> Option<Worker> {
        let (tx, rx) = mpsc::channel();
        let shared: Shared = Arc::default();
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("breakglass-audit".into())
            .spawn(move || run(dest, queue, rx, s));
        if let Err(e) = spawned {
            crate::say!("breakglass: warning: cannot start the audit sender: {e}");
            return None;
        }
        let mut w = Worker {
            tx,
            shared,
            key_id: String::new(),
        };
        w.credentials(creds);
        Some(w)
    }

    /// Signs with `creds` from now on (a no-op for the same key).
    pub fn credentials(&mut self, creds: &Entry) {
        if creds.credentials.access_key_id != self.key_id {
            self.key_id = creds.credentials.access_key_id.clone();
            self.send(Job::Creds(Box::new(creds.clone())));
        }
    }

    /// Sends one of this process's events.
    pub fn own(&self, slot: Slot) {
        self.send(Job::Own(slot));
    }

    /// Sends everything in the queue (after this process's own events).
    pub fn flush(&self) {
        self.send(Job::Flush);
    }

    fn send(&self, job: Job) {
        let (lock, _) = &*self.shared;
        if let Ok(mut p) = lock.lock() {
            p.outstanding += 1;
        }
        if self.tx.send(job).is_err() {
            // The sender is gone (it panicked): nothing will finish this job.
            if let Ok(mut p) = lock.lock() {
                p.outstanding = p.outstanding.saturating_sub(1);
            }
        }
    }

    /// Waits until everything sent so far is done, or until `deadline`.
    pub fn wait(&self, deadline: Instant) -> Progress {
        let (lock, cvar) = &*self.shared;
        let Ok(mut p) = lock.lock() else {
            return Progress::default();
        };
        while p.outstanding > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            p = match cvar.wait_timeout(p, deadline - now) {
                Ok((guard, _)) => guard,
                Err(_) => return Progress::default(),
            };
        }
        p.clone()
    }
}

fn finish(shared: &Shared, update: impl FnOnce(&mut Progress)) {
    let (lock, cvar) = &**shared;
    if let Ok(mut p) = lock.lock() {
        update(&mut p);
        p.outstanding = p.outstanding.saturating_sub(1);
    }
    cvar.notify_all();
}

/// The sender's thread.
fn run(dest: Destination, queue: Queue, rx: mpsc::Receiver<Job>, shared: Shared) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::say!("breakglass: warning: cannot start the audit sender: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let mut clients: Option<Clients> = None;
        let mut backlog: VecDeque<PathBuf> = VecDeque::new();
        loop {
            // This process's own events go before the backlog.
            let job = if backlog.is_empty() {
                match rx.recv() {
                    Ok(job) => Some(job),
                    Err(_) => return,
                }
            } else {
                rx.try_recv().ok()
            };
            match job {
                Some(Job::Creds(creds)) => {
                    clients = Some(Clients::new(&dest, &creds, dest.timeout).await);
                    finish(&shared, |_| {});
                }
                Some(Job::Own(slot)) => {
                    let result = match &clients {
                        Some(c) => Some(deliver(c, &dest, slot).await),
                        None => None,
                    };
                    finish(&shared, |p| {
                        if let Some(r) = result {
                            p.add(&r);
                            p.own_done += usize::from(r.done);
                        }
                    });
                }
                Some(Job::Flush) => {
                    let paths = queue.paths();
                    let (lock, _) = &*shared;
                    if let Ok(mut p) = lock.lock() {
                        p.outstanding += paths.len();
                    }
                    backlog.extend(paths);
                    finish(&shared, |_| {});
                }
                None => {
                    let Some(path) = backlog.pop_front() else {
                        continue;
                    };
                    // Entries held by this or another process are theirs to send.
                    let result = match (&clients, queue.take(&path)) {
                        (Some(c), Some(held)) => Some(deliver(c, &dest, Slot::Held(held)).await),
                        _ => None,
                    };
                    finish(&shared, |p| {
                        if let Some(r) = result {
                            p.add(&r);
                            p.flushed += usize::from(r.done);
                        }
                    });
                }
            }
        }
    });
}

/// What one delivery did.
struct Outcome {
    object: bool,
    alert: bool,
    done: bool,
    error: Option<SinkError>,
}

impl Progress {
    fn add(&mut self, r: &Outcome) {
        self.objects += usize::from(r.object);
        self.alerts += usize::from(r.alert);
        if self.error.is_none() {
            self.error = r.error.clone();
        }
    }
}

/// Sends what is left of one event (object and alert together) and records progress.
async fn deliver(clients: &Clients, dest: &Destination, mut slot: Slot) -> Outcome {
    let bound = dest.timeout;
    let p = slot.pending();
    let put = async {
        match (&p.key, &clients.s3, &dest.s3) {
            (Some(key), Some(s3), Some(loc)) => Some(
                bounded(bound, aws::put(s3, &loc.bucket, key, &p.body))
                    .await
                    .map(|_| ()),
            ),
            _ => None,
        }
    };
    let publish = async {
        match (&p.alert, &clients.sns, &dest.topic) {
            (Some(alert), Some(sns), Some(topic)) => {
                Some(bounded(bound, aws::publish(sns, topic, alert, &p.event_id)).await)
            }
            _ => None,
        }
    };
    let (put, publish) = tokio::join!(put, publish);
    let object = matches!(put, Some(Ok(())));
    let alert = matches!(publish, Some(Ok(())));
    if object {
        p.key = None;
    }
    if alert {
        p.alert = None;
    }
    let done = p.is_done();
    let error = put
        .and_then(Result::err)
        .or_else(|| publish.and_then(Result::err));
    slot.save();
    Outcome {
        object,
        alert,
        done,
        error,
    }
}

async fn bounded<T>(
    bound: Duration,
    call: impl std::future::Future<Output = Result<T, SinkError>>,
) -> Result<T, SinkError> {
    match tokio::time::timeout(bound, call).await {
        Ok(r) => r,
        Err(_) => Err(SinkError::TimedOut(
            humantime::format_duration(bound).to_string(),
        )),
    }
}
