//! Kept in one file because the lock, the cache read and the STS call are one critical section and must be read together.
//!
//! The credential broker: credentials for the mapped role from the cache when they
//! have more than `refresh_before` left, else from STS (through an MFA session when
//! `mfa_serial` is set, so later refreshes never prompt), written back to the cache,
//! under a cross-process lock that is bounded and says who holds it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::cache::{key_of, Cache, CacheError, EntryLock, Holding, LockFailure, Wait};
use crate::paths::Dirs;
use crate::secret::Credentials;
use crate::sts::{AssumeParams, SourceKind, Sts, StsError, TOTAL_TIMEOUT};

use crate::mfa::{MFA_MIN_LEFT, MFA_SESSION};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Sts(#[from] StsError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("gave up after {waited}: another breakglass process ({holder}) holds the credential lock for {role}{mfa}\n  fix: finish or cancel that process, then run the command again; or raise lock_wait in .breakglass.toml (now {waited})")]
    LockTimeout {
        waited: String,
        holder: String,
        role: String,
        /// ", waiting for an MFA code" when the holder is prompting.
        mfa: String,
    },
}

/// The default bound on waiting for another process's credential lock.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(120);
/// How long a refresh tries for the lock before it renews without it.
const REFRESH_LOCK_TRY: Duration = Duration::from_millis(500);

/// What to ask STS for, and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub params: AssumeParams,
    /// The config's region (else the AWS chain's: AWS_REGION, the profile, ...).
    pub region: Option<String>,
    pub source_profile: Option<String>,
    pub mfa_serial: Option<String>,
    pub mfa_command: Option<String>,
    /// A one-time MFA code from the environment (`BREAKGLASS_MFA_TOKEN`).
    pub mfa_token: Option<crate::secret::Secret>,
    /// Where the source identity comes from.
    pub source: SourceKind,
    /// `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL`, for messages.
    pub sts_endpoint: Option<String>,
    /// The environment that selects the source identity or the endpoint, hashed into
    /// the cache key (key ids hashed, never stored).
    pub env_key: BTreeMap<&'static str, String>,
    /// Cached credentials are used only with more than this left.
    pub refresh_before: Duration,
    /// How long to wait for another process's lock on these credentials.
    pub lock_wait: Duration,
}

/// A cache entry: the credentials and what they are for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub credentials: Credentials,
    pub region: String,
    pub role_arn: String,
    pub session_name: String,
    /// The source identity's ARN, when STS told us.
    pub source_arn: Option<String>,
}

/// Everything that changes what STS would return; hashed into the cache key.
#[derive(Serialize)]
struct KeyInputs<'a> {
    v: u32,
    params: &'a AssumeParams,
    region: Option<&'a str>,
    source_profile: Option<&'a str>,
    mfa_serial: Option<&'a str>,
    env: BTreeMap<&'static str, String>,
}

/// Environment variables that select the source identity or the endpoint, for the
/// cache key. Key ids are hashed, never stored.
pub fn env_inputs(env: &crate::env::Env) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    for k in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ] {
        if let Some(v) = env.get(k) {
            m.insert(k, v.to_string());
        }
    }
    if let Some(id) = env.get("AWS_ACCESS_KEY_ID") {
        m.insert(
            "AWS_ACCESS_KEY_ID#sha256",
            hex::encode(Sha256::digest(id.as_bytes())),
        );
    }
    m
}

/// The MFA part of getting credentials.
enum MfaStep {
    /// A cached session that is still good.
    Session(Credentials),
    /// A code for a new session; the MFA cache entry stays locked until it is written.
    Code {
        serial: String,
        code: String,
        lock: crate::cache::EntryLock,
    },
}

/// Gets and renews credentials for one request, sharing the cache with every other
/// breakglass process.
#[derive(Debug)]
pub struct Broker {
    pub request: Request,
    cache: Cache,
    mfa_cache: Cache,
    key: String,
    mfa_key: String,
    sts: OnceCell<Sts>,
    /// The MFA session this process holds, so that a refresh never waits behind
    /// another process's MFA prompt.
    mfa_session: std::sync::Mutex<Option<Credentials>>,
}

impl Broker {
    pub fn new(request: Request, dirs: &Dirs) -> Broker {
        let env = request.env_key.clone();
        let p = &request.params;
        let key = key_of(&KeyInputs {
            v: 2,
            params: p,
            region: request.region.as_deref(),
            source_profile: request.source_profile.as_deref(),
            mfa_serial: request.mfa_serial.as_deref(),
            env: env.clone(),
        });
        let mfa_key = key_of(&(
            "mfa",
            1,
            request.mfa_serial.as_deref(),
            request.region.as_deref(),
            request.source_profile.as_deref(),
            &env,
        ));
        Broker {
            request,
            cache: Cache::new(dirs.cache.join("credentials")),
            mfa_cache: Cache::new(dirs.cache.join("mfa")),
            key,
            mfa_key,
            sts: OnceCell::new(),
            mfa_session: std::sync::Mutex::new(None),
        }
    }

    /// Takes `cache`'s lock on `key` off the runtime thread. `None` when `quiet` and
    /// the lock could not be had within the bound.
    async fn lock(
        &self,
        cache: &Cache,
        key: &str,
        wait: Wait,
    ) -> Result<Option<EntryLock>, CredentialsError> {
        let (c, k, role) = (
            cache.clone(),
            key.to_string(),
            self.request.params.role_arn.clone(),
        );
        let got = tokio::task::spawn_blocking(move || c.lock(&k, &role, wait))
            .await
            .map_err(|e| CacheError {
                dir: cache.dir().to_path_buf(),
                source: std::io::Error::other(e),
            })?;
        match got {
            Ok(lock) => Ok(Some(lock)),
            Err(LockFailure::Io(e)) => Err(e.into()),
            Err(LockFailure::TimedOut(_)) if !wait.tell => Ok(None),
            Err(LockFailure::TimedOut(holder)) => Err(CredentialsError::LockTimeout {
                waited: crate::config::format_duration(wait.bound),
                holder: holder.describe(),
                role: self.request.params.role_arn.clone(),
                mfa: if holder.mfa {
                    ", waiting for an MFA code".to_string()
                } else {
                    String::new()
                },
            }),
        }
    }

    /// How an interactive run waits for a lock, and how a refresh does: briefly, then
    /// on without it.
    fn wait(&self, interactive: bool) -> Wait {
        if interactive {
            Wait {
                bound: self.request.lock_wait,
                tell: true,
            }
        } else {
            Wait {
                bound: REFRESH_LOCK_TRY,
                tell: false,
            }
        }
    }

    /// The cached credentials, if they have more than `refresh_before` left. No lock,
    /// no network: this is the warm path.
    pub fn cached(&self) -> Option<Entry> {
        self.usable(self.cache.read::<Entry>(&self.key))
    }

    /// The cached credentials for this request while they are still valid at all (for
    /// `breakglass status`).
    pub fn cached_any(&self) -> Option<Entry> {
        self.cache
            .read::<Entry>(&self.key)
            .filter(|e| e.credentials.remaining(SystemTime::now()) > Duration::ZERO)
    }

    fn usable(&self, entry: Option<Entry>) -> Option<Entry> {
        entry.filter(|e| {
            e.role_arn == self.request.params.role_arn
                && e.credentials.remaining(SystemTime::now()) > self.request.refresh_before
        })
    }

    /// Credentials with more than `refresh_before` left: from the cache if another
    /// process renewed them, else from STS. Holds the entry's lock throughout, so
    /// processes started together make one STS call. `interactive` allows an MFA prompt
    /// on the terminal.
    ///
    /// A refresh (`interactive` false) never waits behind another process: when the
    /// lock is held (by a process prompting for an MFA code, say) it renews without it,
    /// from the MFA session this process already holds.
    pub async fn obtain(&self, interactive: bool) -> Result<(Entry, bool), CredentialsError> {
        let lock = self
            .lock(&self.cache, &self.key, self.wait(interactive))
            .await?;
        if let Some(entry) = self.usable(self.cache.read::<Entry>(&self.key)) {
            tracing::debug!(key = %self.key, "credentials from the cache (renewed by another process)");
            return Ok((entry, true));
        }
        tracing::debug!(key = %self.key, role = %self.request.params.role_arn, "asking STS");
        let entry = self.fetch_from_sts(interactive, lock.as_ref()).await?;
        // Good credentials are never thrown away for a cache that cannot be written.
        if let Err(e) = self.cache.write(&self.key, &entry) {
            crate::cache::warn(&format!("the credentials were not cached: {e}"));
        }
        drop(lock);
        Ok((entry, false))
    }

    async fn sts(&self) -> Result<&Sts, StsError> {
        self.sts
            .get_or_try_init(|| {
                Sts::connect(
                    self.request.source_profile.as_deref(),
                    self.request.region.as_deref(),
                    self.request.source.clone(),
                    self.request.sts_endpoint.clone(),
                )
            })
            .await
    }

    async fn fetch_from_sts(
        &self,
        interactive: bool,
        held: Option<&EntryLock>,
    ) -> Result<Entry, CredentialsError> {
        // The MFA step (a cached session, or a code from the person or mfa_command) comes
        // first and is not timed: typing a code may take longer than STS may.
        let mfa = match &self.request.mfa_serial {
            Some(serial) => Some(self.mfa_step(serial, interactive, held).await?),
            None => None,
        };
        let network = async {
            let sts = self.sts().await?;
            let signer = match mfa {
                Some(MfaStep::Session(session)) => sts.with_session(&session),
                Some(MfaStep::Code { serial, code, lock }) => {
                    let session = sts.mfa_session(&serial, &code, MFA_SESSION).await?;
                    if let Err(e) = self.mfa_cache.write(&self.mfa_key, &session) {
                        crate::cache::warn(&format!("the MFA session was not cached: {e}"));
                    }
                    drop(lock);
                    self.hold_mfa_session(&session);
                    sts.with_session(&session)
                }
                None => sts.clone(),
            };
            let (assumed, caller) = tokio::join!(
                signer.assume_role(&self.request.params),
                signer.caller_arn()
            );
            Ok::<Entry, CredentialsError>(Entry {
                credentials: assumed?,
                region: sts.region.clone(),
                role_arn: self.request.params.role_arn.clone(),
                session_name: self.request.params.session_name.clone(),
                source_arn: caller.ok(),
            })
        };
        match tokio::time::timeout(TOTAL_TIMEOUT, network).await {
            Ok(result) => result,
            Err(_) => Err(StsError::Unreachable {
                endpoint: crate::sts::endpoint_description(
                    self.request.region.as_deref().unwrap_or("us-east-1"),
                    self.request.sts_endpoint.as_deref(),
                ),
                detail: format!("no answer within {} s", TOTAL_TIMEOUT.as_secs()),
            }
            .into()),
        }
    }

    fn hold_mfa_session(&self, session: &Credentials) {
        if let Ok(mut held) = self.mfa_session.lock() {
            *held = Some(session.clone());
        }
    }

    /// The MFA session this process holds, if it has more than `min` left.
    fn held_mfa_session(&self, min: Duration) -> Option<Credentials> {
        let held = self.mfa_session.lock().ok()?;
        held.as_ref()
            .filter(|c| c.remaining(SystemTime::now()) > min)
            .cloned()
    }

    /// The cached MFA session, or a code for a new one (one prompt: the lock is held
    /// until the new session is cached). A refresh first uses the session this process
    /// holds, without any lock.
    async fn mfa_step(
        &self,
        serial: &str,
        interactive: bool,
        held: Option<&EntryLock>,
    ) -> Result<MfaStep, CredentialsError> {
        if !interactive {
            if let Some(c) = self.held_mfa_session(Duration::from_secs(60)) {
                return Ok(MfaStep::Session(c));
            }
        }
        let wait = self.wait(interactive);
        let Some(lock) = self.lock(&self.mfa_cache, &self.mfa_key, wait).await? else {
            // Another process holds the MFA lock (it is prompting): a refresh uses the
            // cached session without the lock (writes are atomic renames).
            if let Some(c) = self
                .mfa_cache
                .read::<Credentials>(&self.mfa_key)
                .filter(|c| c.remaining(SystemTime::now()) > Duration::from_secs(60))
            {
                self.hold_mfa_session(&c);
                return Ok(MfaStep::Session(c));
            }
            return Err(StsError::MfaUnavailable {
                serial: serial.to_string(),
                why: "another breakglass process is asking for an MFA code, and this refresh does not wait for it".to_string(),
            }
            .into());
        };
        if let Some(c) = self.mfa_cache.read::<Credentials>(&self.mfa_key) {
            let left = c.remaining(SystemTime::now());
            // A refresh uses any session that is still valid; a new run wants some room.
            if left > MFA_MIN_LEFT || (!interactive && left > Duration::from_secs(60)) {
                self.hold_mfa_session(&c);
                return Ok(MfaStep::Session(c));
            }
        }
        // Waiters on either lock are told that this process waits for a code.
        lock.note(Holding::MfaCode);
        if let Some(h) = held {
            h.note(Holding::MfaCode);
        }
        // The prompt or mfa_command blocks: keep it off the runtime's only thread, so the
        // endpoint and the signals stay served during a refresh.
        let (serial_owned, command) = (serial.to_string(), self.request.mfa_command.clone());
        let token = self
            .request
            .mfa_token
            .as_ref()
            .map(|t| t.expose().to_string());
        let code = tokio::task::spawn_blocking(move || {
            crate::mfa::code(
                &serial_owned,
                token.as_deref(),
                command.as_deref(),
                interactive,
            )
        })
        .await
        .map_err(|e| StsError::MfaUnavailable {
            serial: serial.to_string(),
            why: format!("asking for the code failed: {e}"),
        })??;
        Ok(MfaStep::Code {
            serial: serial.to_string(),
            code,
            lock,
        })
    }

    /// Assumes the role without the credential cache (for `breakglass doctor`: the
    /// credentials are thrown away). An MFA session is reused or started as usual.
    pub async fn probe(&self) -> Result<(Entry, Sts), CredentialsError> {
        let entry = self.fetch_from_sts(true, None).await?;
        let sts = self.sts().await?.with_session(&entry.credentials);
        Ok((entry, sts))
    }

    /// Removes every cached credential and MFA session.
    pub fn clear(dirs: &Dirs) -> std::io::Result<usize> {
        Ok(Cache::new(dirs.cache.join("credentials")).clear()?
            + Cache::new(dirs.cache.join("mfa")).clear()?)
    }

    /// Where the source identity comes from.
    pub fn source(&self) -> SourceKind {
        self.request.source.clone()
    }
}

impl From<CredentialsError> for crate::error::Error {
    fn from(e: CredentialsError) -> Self {
        crate::error::Error::Role(Box::new(e))
    }
}
