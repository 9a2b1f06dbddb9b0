//! Kept in one file because the refresher, the signals and the child's wait are one select loop over shared state.
//!
//! A supervised terraform run: the credential endpoint on loopback, a refresher that
//! renews the role before expiry (through shutdown too), signals passed on the way
//! terraform expects, and terraform's exit status handed back.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{watch, Notify};

use crate::broker::{Broker, CredentialsError, Entry};
use crate::clock::rfc3339;
use crate::config::OnHangup;
use crate::isolation::{endpoint_delivery, EnvChange};
use crate::nested::Marker;
use crate::server::{CredentialState, Endpoint};
use crate::signals::{self, Listener};

/// Clients are never handed credentials inside this window before their real expiry
/// while a refresh is still possible.
pub const CLIENT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The least time between two STS calls of the refresher.
const MIN_REFRESH_GAP: Duration = Duration::from_secs(5);
/// The longest wait between two refresh attempts after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest the refresher sleeps without looking at the wall clock again: the
/// monotonic clock it sleeps on stands still while a laptop is suspended.
pub const WALL_STEP: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot start the credential endpoint: {0}")]
    Endpoint(#[from] crate::server::ServerError),
    #[error("cannot set up the run: {0}")]
    Setup(std::io::Error),
    #[error("cannot start `{}`: {source}\n  fix: check that it exists and is executable", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("the credentials for {role} expire in {left} (at {at}), less than min_remaining = \"{min}\", and could not be renewed\n  fix: check the role's MaxSessionDuration and your source session (`aws sts get-caller-identity`), or lower min_remaining in .breakglass.toml")]
    TooShort {
        role: String,
        left: String,
        at: String,
        min: String,
    },
}

/// The program to supervise.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Extra environment changes (the loop guard, say), applied after isolation.
    pub env: Vec<EnvChange>,
    /// The directory to start it in (default: the shim's own).
    pub cwd: Option<PathBuf>,
}

/// How a supervised run behaves: the start-time check and the hang-up rule.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A run does not start with credentials that expire sooner than this.
    pub min_remaining: Duration,
    pub on_hangup: OnHangup,
    /// What the child's environment says about the run (project and role).
    pub marker: Marker,
}

/// How a supervised run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code to hand back: the child's, or 128+N when signal N killed it.
    pub code: i32,
    pub started: SystemTime,
    pub ended: SystemTime,
    /// The terminal hung up (SIGHUP) during the run.
    pub hangup: bool,
    /// Interrupts the shim itself sent to the child (forwarded or for a hang-up).
    pub interrupts_sent: u32,
}

/// The Expiration to advertise: shortly after the refresher's own renewal, never later
/// than 5 minutes before the real expiry, never in the past, never after the truth.
pub fn advertise_until(expires: SystemTime, window: Duration, now: SystemTime) -> SystemTime {
    let refresh_at = expires.checked_sub(window).unwrap_or(now);
    let latest_safe = expires.checked_sub(CLIENT_WINDOW).unwrap_or(now);
    let target = (refresh_at + Duration::from_secs(60)).min(latest_safe);
    target.max(now + Duration::from_secs(15)).min(expires)
}

/// When the refresher should next renew credentials that expire at `expires`.
pub fn next_refresh(expires: SystemTime, window: Duration, now: SystemTime) -> SystemTime {
    expires
        .checked_sub(window)
        .unwrap_or(now)
        .max(now + MIN_REFRESH_GAP.min(window / 4))
}

fn valid(entry: &Entry, window: Duration) -> CredentialState {
    valid_at(entry, window, SystemTime::now())
}

fn valid_at(entry: &Entry, window: Duration, now: SystemTime) -> CredentialState {
    CredentialState::Valid {
        advertise_until: advertise_until(entry.credentials.expires_at(), window, now),
        credentials: entry.credentials.clone(),
    }
}

/// Where the refresher gets renewed credentials: the [`Broker`] (cache, then STS,
/// never prompting). A trait so a test can make renewals fail on purpose.
pub trait Renew: Send + Sync + 'static {
    fn renew(&self) -> impl std::future::Future<Output = Result<Entry, CredentialsError>> + Send;
}

impl Renew for Broker {
    async fn renew(&self) -> Result<Entry, CredentialsError> {
        self.obtain(false).await.map(|(entry, _)| entry)
    }
}

/// A short name for a failure, so each kind is warned about once.
fn kind(e: &CredentialsError) -> &'static str {
    use crate::sts::StsError::*;
    match e {
        CredentialsError::Cache(_) => "cache",
        CredentialsError::LockTimeout { .. } => "lock",
        CredentialsError::Sts(s) => match s {
            AccessDenied { .. } => "access-denied",
            InvalidSource { .. } => "invalid-source",
            NoCredentials { .. } => "no-credentials",
            MissingRegion => "region",
            Unreachable { .. } => "unreachable",
            DurationTooLong { .. } => "duration",
            MfaUnavailable { .. } => "mfa",
            Refused { .. } => "refused",
        },
    }
}

/// The wall clock and a way to sleep: a trait so that a test can make the wall clock
/// jump during a sleep, as a laptop suspend does.
pub trait WallClock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
    fn sleep(&self, d: Duration) -> impl std::future::Future<Output = ()> + Send;
}

/// The real clocks: `SystemTime` and tokio's (monotonic) sleep.
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

/// Sleeps until the wall clock reaches `due`, looking at it again at least every
/// [`WALL_STEP`], or until `poke` is notified (the endpoint found the credentials
/// stale). A suspend that overshoots `due` ends the wait at the next look.
async fn sleep_until<C: WallClock>(clock: &C, due: SystemTime, poke: &Notify) {
    loop {
        let Ok(left) = due.duration_since(clock.now()) else {
            return;
        };
        if left.is_zero() {
            return;
        }
        tokio::select! {
            _ = clock.sleep(left.min(WALL_STEP)) => {}
            _ = poke.notified() => return,
        }
    }
}

/// Renews the credentials `window` before expiry, for as long as it runs, following
/// the wall clock. On failure it keeps serving the still-valid credentials, retries
/// with backoff, and warns once per kind of failure; when they really run out it says
/// so loudly and the endpoint answers 503.
async fn refresher<R: Renew, C: WallClock>(
    broker: Arc<R>,
    mut current: Entry,
    tx: watch::Sender<CredentialState>,
    window: Duration,
    clock: C,
    poke: Arc<Notify>,
) {
    let mut warned: HashSet<&'static str> = HashSet::new();
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    let mut expired = false;
    loop {
        if !failing {
            let due = next_refresh(current.credentials.expires_at(), window, clock.now());
            sleep_until(&clock, due, &poke).await;
        }
        match broker.renew().await {
            Ok(entry) => {
                if failing {
                    crate::say!(
                        "breakglass: credentials renewed for {}; refreshing again as usual",
                        entry.role_arn
                    );
                }
                tracing::debug!(key = %entry.credentials.access_key_id, until = %rfc3339(entry.credentials.expires_at()), "renewed");
                current = entry;
                failing = false;
                expired = false;
                backoff = Duration::from_secs(1);
                let _ = tx.send(valid_at(&current, window, clock.now()));
            }
            Err(e) => {
                failing = true;
                let now = clock.now();
                if current.credentials.expires_at() <= now {
                    if !expired {
                        expired = true;
                        crate::say!(
                            "breakglass: ERROR: the credentials for {} expired at {} and could not be renewed: {e}\n  terraform's AWS calls now fail; breakglass does not stop terraform. When it ends, follow any errored.tfstate advice below.",
                            current.role_arn,
                            rfc3339(current.credentials.expires_at())
                        );
                    }
                    let _ = tx.send(CredentialState::Expired {
                        message: format!(
                            "breakglass: the credentials for {} expired at {} and could not be renewed",
                            current.role_arn,
                            rfc3339(current.credentials.expires_at())
                        ),
                    });
                } else {
                    if warned.insert(kind(&e)) {
                        crate::say!(
                            "breakglass: warning: could not renew the credentials (still valid until {}; retrying): {e}",
                            rfc3339(current.credentials.expires_at())
                        );
                    }
                    let _ = tx.send(valid_at(&current, window, now));
                }
                tokio::select! {
                    _ = clock.sleep(backoff) => {}
                    _ = poke.notified() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Runs `child` under the role: starts the endpoint and the refresher, passes signals
/// on, and returns when the child has exited.
///
/// The child starts with SIGHUP ignored (an ignored disposition survives exec, and
/// terraform never asks for SIGHUP), so a terminal that hangs up, or a shell that
/// passes the hang-up on to the job, never kills it halfway; the shim stays up too and
/// follows `policy.on_hangup`. Unless the shim is the foreground job of its terminal
/// (CI, cron, `setsid`, a background job, GNU `timeout` in a terminal), the child gets
/// its own process group, so a signal sent to the shim's whole group reaches terraform
/// once, through the shim.
pub async fn supervise(
    broker: Arc<Broker>,
    entry: Entry,
    child: ChildSpec,
    policy: &Policy,
) -> Result<Outcome, SupervisorError> {
    let window = broker.request.refresh_before;
    let left = entry.credentials.remaining(SystemTime::now());
    if left < policy.min_remaining {
        return Err(SupervisorError::TooShort {
            role: entry.role_arn.clone(),
            left: crate::config::format_duration(left),
            at: rfc3339(entry.credentials.expires_at()),
            min: crate::config::format_duration(policy.min_remaining),
        });
    }
    // Signals first: from here on the shim is never killed by one while terraform runs.
    let mut listener = Listener::install().map_err(SupervisorError::Setup)?;
    let (tx, rx) = watch::channel(valid(&entry, window));
    let poke = Arc::new(Notify::new());
    let endpoint = Endpoint::start(rx, Some(poke.clone())).await?;
    let run_dir = tempfile::Builder::new()
        .prefix("breakglass-run-")
        .tempdir()
        .map_err(SupervisorError::Setup)?;
    let env = endpoint_delivery(
        &endpoint.env(),
        &entry.region,
        run_dir.path(),
        &policy.marker,
    )
    .map_err(SupervisorError::Setup)?;
    let refresh = tokio::spawn(refresher(broker, entry, tx, window, SystemClock, poke));

    // Share terraform's process group only with a terminal whose foreground job this
    // is (Ctrl-C, job control and prompts); otherwise a signal to the shim's group
    // (`timeout`, a CI runner) must reach terraform once, through the shim.
    let own_group = !signals::terminal_delivers_sigint();
    let started = SystemTime::now();
    let mut cmd = tokio::process::Command::new(&child.program);
    cmd.args(&child.args);
    if let Some(dir) = &child.cwd {
        cmd.current_dir(dir);
    }
    for (k, v) in env.iter().chain(child.env.iter()) {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    // SAFETY: signal and setpgid are async-signal-safe and touch no memory of the
    // parent; this runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            if own_group {
                libc::setpgid(0, 0);
            }
            Ok(())
        });
    }
    let mut proc = cmd.spawn().map_err(|source| SupervisorError::Spawn {
        program: child.program.clone(),
        source,
    })?;
    let mut hangup = false;
    let mut interrupts_sent = 0;
    let status = loop {
        tokio::select! {
            status = proc.wait() => break status,
            got = listener.recv() => {
                tracing::debug!(signal = got.signal, "signal");
                let Some(pid) = proc.id() else { continue };
                if got.signal == libc::SIGHUP {
                    if !hangup {
                        hangup = true;
                        match policy.on_hangup {
                            OnHangup::Finish => crate::say!("breakglass: the terminal hung up; terraform goes on to the end (on_hangup = \"finish\")"),
                            OnHangup::Stop => {
                                crate::say!("breakglass: the terminal hung up; interrupting terraform once so it stops gracefully (on_hangup = \"stop\")");
                                signals::send(pid, libc::SIGINT);
                                interrupts_sent += 1;
                            }
                        }
                    }
                } else if signals::should_forward(got.signal, got.sender, !own_group, signals::terminal_delivers_sigint) {
                    signals::send(pid, got.signal);
                    interrupts_sent += 1;
                }
            }
        }
    };
    let ended = SystemTime::now();
    refresh.abort();
    endpoint.shutdown().await;
    drop(run_dir);
    let code = match status {
        Ok(s) => exit_code(&s),
        Err(e) => {
            crate::say!("breakglass: lost track of terraform: {e}");
            crate::error::SHIM_FAILURE
        }
    };
    Ok(Outcome {
        code,
        started,
        ended,
        hangup,
        interrupts_sent,
    })
}

/// The child's exit code, or 128+N when signal N killed it.
pub fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => crate::error::SHIM_FAILURE,
    }
}

/// `errored.tfstate` in `workdir`, if terraform wrote it during this run.
pub fn errored_state(workdir: &Path, since: SystemTime) -> Option<PathBuf> {
    let path = workdir.join("errored.tfstate");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    // File times can be coarser than the clock: allow a second.
    (modified + Duration::from_secs(1) >= since).then_some(path)
}

/// The recovery steps for a state that could not be written.
pub fn recovery_text(path: &Path) -> String {
    let dir = path.parent().unwrap_or(Path::new("."));
    format!(
        "breakglass: terraform could not write its state and saved it to {}\n  \
         the infrastructure changed but the remote state does not know it yet. To recover, in {}:\n  \
         1. if terraform reported a state lock it could not release, note its ID (\"Lock Info: ID\") and run:\n       terraform force-unlock LOCK_ID\n  \
         2. push the saved state under the role, with fresh credentials:\n       breakglass recover\n     \
         (the same as `terraform state push errored.tfstate` under the role)\n  \
         breakglass never deletes or moves errored.tfstate.",
        path.display(),
        dir.display()
    )
}

impl From<SupervisorError> for crate::error::Error {
    fn from(e: SupervisorError) -> Self {
        crate::error::Error::Role(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[test]
    fn advertised_expiry_brings_clients_back_before_the_last_five_minutes() {
        // 1h credentials renewed 15m before expiry.
        let adv = advertise_until(at(H), Duration::from_secs(900), at(0));
        assert_eq!(adv, at(H - 900 + 60));
        assert!(adv <= at(H) - CLIENT_WINDOW);
        // A short window still never advertises past expiry minus 5 minutes.
        let adv = advertise_until(at(H), Duration::from_secs(120), at(0));
        assert_eq!(adv, at(H) - CLIENT_WINDOW);
        // Renewal failing inside the last 5 minutes: near future, never past the truth.
        let adv = advertise_until(at(H), Duration::from_secs(900), at(H - 100));
        assert_eq!(adv, at(H - 85));
        let adv = advertise_until(at(H), Duration::from_secs(900), at(H - 5));
        assert_eq!(adv, at(H));
    }

    #[test]
    fn refreshes_are_due_at_the_window_and_never_back_to_back() {
        assert_eq!(
            next_refresh(at(H), Duration::from_secs(900), at(0)),
            at(H - 900)
        );
        assert_eq!(
            next_refresh(at(H), Duration::from_secs(900), at(H - 10)),
            at(H - 5)
        );
    }

    /// Renewals that always fail: credentials that really run out mid-run cannot be
    /// produced by STS or moto in a test's time (sessions last 15 minutes at least), so
    /// this fake stands in for an STS that has gone away for good.
    struct Down;

    impl Renew for Down {
        async fn renew(&self) -> Result<Entry, CredentialsError> {
            Err(crate::sts::StsError::Unreachable {
                endpoint: "http://127.0.0.1:9".into(),
                detail: "connection refused".into(),
            }
            .into())
        }
    }

    fn entry(expires_in: Duration) -> Entry {
        let expiration = (SystemTime::now() + expires_in)
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Entry {
            credentials: crate::secret::Credentials {
                access_key_id: "ASIAOLD".into(),
                secret_access_key: crate::secret::Secret::new("s"),
                session_token: crate::secret::Secret::new("t"),
                expiration,
            },
            region: "us-east-1".into(),
            role_arn: "arn:aws:iam::111111111111:role/deploy".into(),
            session_name: "s".into(),
            source_arn: None,
        }
    }

    #[test]
    fn credentials_that_run_out_are_served_as_503_not_as_expired_keys() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let first = entry(Duration::from_secs(3));
            let window = Duration::from_secs(600);
            let (tx, mut rx) = watch::channel(valid(&first, window));
            let task = tokio::spawn(refresher(
                Arc::new(Down),
                first,
                tx,
                window,
                SystemClock,
                Arc::new(Notify::new()),
            ));
            // While they last, the old credentials are served, advertised no later than the truth.
            let mut saw_valid = false;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            loop {
                let state = rx.borrow_and_update().clone();
                match state {
                    CredentialState::Valid {
                        credentials,
                        advertise_until,
                    } => {
                        assert_eq!(credentials.access_key_id, "ASIAOLD");
                        assert!(advertise_until <= credentials.expires_at());
                        saw_valid = true;
                    }
                    CredentialState::Expired { message } => {
                        assert!(
                            message.contains("expired") && message.contains("role/deploy"),
                            "{message}"
                        );
                        break;
                    }
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never reported as expired"
                );
                let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
            }
            assert!(saw_valid);
            task.abort();
        });
    }

    /// A wall clock that a suspend moves: every sleep returns at once, with the wall
    /// clock moved on by the sleep plus `jump`.
    #[derive(Clone)]
    struct Suspending {
        now: Arc<std::sync::Mutex<SystemTime>>,
        jump: Duration,
        sleeps: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl WallClock for Suspending {
        fn now(&self) -> SystemTime {
            *self.now.lock().unwrap()
        }
        async fn sleep(&self, d: Duration) {
            *self.now.lock().unwrap() += d + self.jump;
            self.sleeps
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    }

    /// Renewals that succeed, each an hour from the fake wall clock's now, noting how
    /// many sleeps had happened when each was asked for.
    struct Renews {
        clock: Suspending,
        at_sleep: std::sync::Mutex<Vec<usize>>,
    }

    impl Renew for Renews {
        async fn renew(&self) -> Result<Entry, CredentialsError> {
            let sleeps = self.clock.sleeps.load(std::sync::atomic::Ordering::SeqCst);
            self.at_sleep.lock().unwrap().push(sleeps);
            let mut e = entry(Duration::ZERO);
            e.credentials.access_key_id = format!("ASIANEW{sleeps}");
            e.credentials.expiration = (self.clock.now() + Duration::from_secs(3600))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            Ok(e)
        }
    }

    #[test]
    fn after_a_suspend_that_overshot_the_refresh_time_the_refresher_renews_at_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let clock = Suspending {
                now: Arc::new(std::sync::Mutex::new(SystemTime::now())),
                // Every sleep hides a two-hour suspend.
                jump: Duration::from_secs(2 * 3600),
                sleeps: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            };
            let renews = Arc::new(Renews {
                clock: clock.clone(),
                at_sleep: std::sync::Mutex::new(Vec::new()),
            });
            // An hour left, renewed 15 minutes before expiry: due in 45 minutes.
            let first = entry(Duration::from_secs(3600));
            let window = Duration::from_secs(900);
            let (tx, mut rx) = watch::channel(valid(&first, window));
            let task = tokio::spawn(refresher(
                renews.clone(),
                first,
                tx,
                window,
                clock.clone(),
                Arc::new(Notify::new()),
            ));
            for _ in 0..3 {
                tokio::time::timeout(Duration::from_secs(5), rx.changed())
                    .await
                    .expect("no renewal")
                    .unwrap();
                match &*rx.borrow_and_update() {
                    CredentialState::Valid { credentials, .. } => {
                        assert!(credentials.access_key_id.starts_with("ASIANEW"));
                    }
                    CredentialState::Expired { message } => {
                        panic!("503 while renewal works: {message}")
                    }
                }
            }
            task.abort();
            // Each renewal came right after the one sleep (of at most WALL_STEP) that the
            // suspend overshot: never a second sleep first.
            let at = renews.at_sleep.lock().unwrap().clone();
            assert_eq!(&at[..3], &[1, 2, 3], "{at:?}");
        });
    }

    #[test]
    fn the_refresher_never_sleeps_more_than_a_wall_step_between_looks() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let clock = Suspending {
                now: Arc::new(std::sync::Mutex::new(SystemTime::now())),
                jump: Duration::ZERO,
                sleeps: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            };
            let start = clock.now();
            let due = start + Duration::from_secs(45 * 60);
            sleep_until(&clock, due, &Notify::new()).await;
            // 45 minutes in steps of 30 s: 90 looks at the wall clock.
            assert_eq!(clock.sleeps.load(std::sync::atomic::Ordering::SeqCst), 90);
            assert!(clock.now() >= due);
        });
    }

    #[test]
    fn errored_state_must_be_new() {
        let dir = tempfile::tempdir().unwrap();
        assert!(errored_state(dir.path(), SystemTime::now()).is_none());
        std::fs::write(dir.path().join("errored.tfstate"), "{}").unwrap();
        assert!(errored_state(dir.path(), SystemTime::now() - Duration::from_secs(5)).is_some());
        assert!(errored_state(dir.path(), SystemTime::now() + Duration::from_secs(60)).is_none());
        assert!(recovery_text(&dir.path().join("errored.tfstate"))
            .contains("terraform state push errored.tfstate"));
    }
}
