//! Kept in one file because the connection limits, the token check and the shutdown share one accept loop and its state.
//!
//! The loopback credential endpoint: terraform's AWS provider reads the assumed
//! role's credentials from here, in the ECS container-credentials format.
//!
//! Terraform gets `AWS_CONTAINER_CREDENTIALS_FULL_URI` (a `http://127.0.0.1:PORT/creds`
//! URL) and `AWS_CONTAINER_AUTHORIZATION_TOKEN` (a fresh 256-bit token per run) from
//! [`Endpoint::env`]. aws-sdk-go-v2 and botocore then `GET` that URL with the token as
//! the `Authorization` header, and get back
//!
//! ```json
//! {"AccessKeyId": "...", "SecretAccessKey": "...", "Token": "...", "Expiration": "2026-11-21T22:27:38Z"}
//! ```
//!
//! They come back before `Expiration`, so the credentials can be renewed under a run
//! that outlives them: a refresher task publishes each new set on a
//! [`watch`] channel of [`CredentialState`], and every request serves the newest.
//!
//! The server is small and defensive: it listens on loopback only, compares the token
//! in constant time, never reads a request body, bounds header size, header read time,
//! connection lifetime and the number of connections, and answers anything it refuses
//! with a short JSON `{"Message": ...}` that never holds credentials.

#[cfg(test)]
use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::clock::rfc3339;
use crate::secret::{Credentials, Secret};

/// The path in the URL handed to terraform. Any path is served; this one just reads well.
pub const PATH: &str = "/creds";

/// TEST HOOK: the environment variable naming a file to append one line per request
/// to: `RFC3339TIME STATUS ACCESS_KEY_ID_OR_-`. The end-to-end tests read it to see
/// which key sets terraform was served; it never holds secrets. Off (and free) unless
/// set.
pub const LOG_ENV: &str = "BREAKGLASS_ENDPOINT_LOG";

/// How many recent requests [`Endpoint::served`] remembers (unit tests only).
#[cfg(test)]
const LOG_CAPACITY: usize = 10_000;

/// How long in-flight connections get to finish when the endpoint shuts down, or when
/// a connection reaches its lifetime.
const GRACE: Duration = Duration::from_secs(1);

/// hyper refuses a smaller `max_buf_size`.
const MIN_BUF: usize = 8 * 1024;

/// What the endpoint serves. A refresher owns the [`watch::Sender`]; the endpoint reads
/// the newest value on every request.
#[derive(Debug, Clone)]
pub enum CredentialState {
    /// Credentials to serve, and the Expiration to advertise to clients (earlier than
    /// the real one, so that they come back for renewed credentials in time).
    Valid {
        credentials: Credentials,
        advertise_until: SystemTime,
    },
    /// The credentials really ran out and could not be renewed: answer 503 with a JSON
    /// Message. The message reaches terraform's output, so it must not hold secrets.
    Expired { message: String },
}

/// Limits and knobs. [`Options::default`] is what a run uses; tests shorten the timeouts.
#[derive(Debug, Clone)]
pub struct Options {
    /// A client must send a complete request head within this time of connecting (or
    /// of its previous response), else it is dropped.
    pub header_read_timeout: Duration,
    /// No connection lives longer than this; then it is shut down gracefully.
    pub connection_timeout: Duration,
    /// Connections beyond this many at once are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Request line plus headers beyond this many bytes get 431 and a closed connection
    /// (at least 8 KiB).
    pub max_header_bytes: usize,
    /// Append one line per request to this file (see [`LOG_ENV`]).
    pub log_file: Option<PathBuf>,
    /// Notified when an authorized request finds the credentials expired (after a
    /// suspend, say): the refresher renews at once, and the request waits for it (at
    /// most [`RENEW_WAIT`]) instead of getting a 503.
    pub renew: Option<Arc<Notify>>,
}

/// How long a request that found the credentials expired waits for a renewal.
pub const RENEW_WAIT: Duration = Duration::from_secs(4);

impl Default for Options {
    fn default() -> Options {
        Options {
            header_read_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
            max_connections: 256,
            max_header_bytes: 16 * 1024,
            log_file: None,
            renew: None,
        }
    }
}

impl Options {
    /// The defaults, with `log_file` from [`LOG_ENV`] when that is set and not empty.
    pub fn from_env() -> Options {
        Options {
            log_file: std::env::var_os(LOG_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            ..Options::default()
        }
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot make a random token for the credential endpoint: {0}")]
    Random(getrandom::Error),
    #[error("cannot listen on 127.0.0.1 for the credential endpoint: {0}")]
    Bind(std::io::Error),
    #[error("cannot open the endpoint log {}: {source}", path.display())]
    LogFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One request the endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRecord {
    pub at: SystemTime,
    /// The HTTP status sent.
    pub status: u16,
    /// The access key id handed out, when credentials were (status 200).
    pub access_key_id: Option<String>,
}

/// The running endpoint. Dropping it stops the accept loop too; [`Endpoint::shutdown`]
/// also waits for it.
pub struct Endpoint {
    /// `http://127.0.0.1:PORT/creds`
    pub url: String,
    /// The value clients must send as `Authorization`.
    pub token: Secret,
    pub addr: SocketAddr,
    #[cfg(test)]
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Starts the endpoint with [`Options::from_env`], on the current tokio runtime.
    pub async fn start(
        state: watch::Receiver<CredentialState>,
        renew: Option<Arc<Notify>>,
    ) -> Result<Endpoint, ServerError> {
        Endpoint::start_with(
            state,
            Options {
                renew,
                ..Options::from_env()
            },
        )
        .await
    }

    /// Binds `127.0.0.1:0`, makes a fresh token and spawns the accept loop on the
    /// current tokio runtime.
    pub async fn start_with(
        state: watch::Receiver<CredentialState>,
        options: Options,
    ) -> Result<Endpoint, ServerError> {
        let token = fresh_token()?;
        let log = RequestLog::open(options.log_file.clone())?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(ServerError::Bind)?;
        let addr = listener.local_addr().map_err(ServerError::Bind)?;
        let shared = Arc::new(Shared {
            token: token.clone(),
            state,
            log,
            renew: options.renew.clone(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), options, stop_rx));
        tracing::debug!(%addr, "credential endpoint listening");
        Ok(Endpoint {
            url: format!("http://{addr}{PATH}"),
            token,
            addr,
            #[cfg(test)]
            shared,
            stop,
            task,
        })
    }

    /// The variables that point an AWS SDK at this endpoint. The token is in the
    /// clear here: this goes into terraform's environment, nowhere else.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
                self.url.clone(),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN".to_string(),
                self.token.expose().to_string(),
            ),
        ]
    }

    /// The most recent requests answered (up to 10 000), oldest first (unit tests).
    #[cfg(test)]
    pub fn served(&self) -> Vec<ServedRecord> {
        self.shared.log.records()
    }

    /// Stops accepting, lets in-flight requests finish (for up to a second), and
    /// waits for the accept loop to end.
    pub async fn shutdown(self) {
        let Endpoint { stop, task, .. } = self;
        let _ = stop.send(true);
        if let Err(e) = task.await {
            tracing::warn!("credential endpoint task ended badly: {e}");
        }
    }
}

/// 32 random bytes, hex: 64 characters, 256 bits.
fn fresh_token() -> Result<Secret, ServerError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(ServerError::Random)?;
    Ok(Secret::new(hex::encode(bytes)))
}

/// What every connection's service reads.
struct Shared {
    token: Secret,
    state: watch::Receiver<CredentialState>,
    log: RequestLog,
    renew: Option<Arc<Notify>>,
}

impl Shared {
    /// For an authorized GET that would get a 503 (credentials expired by the wall
    /// clock, or marked expired): asks the refresher to renew now and waits for a
    /// usable state, at most [`RENEW_WAIT`].
    async fn renew_if_stale<B>(&self, req: &Request<B>) {
        let Some(poke) = &self.renew else { return };
        if req.method() != Method::GET || !matches!(authorize(&self.token, req), Auth::Ok) {
            return;
        }
        if !stale(&self.state.borrow(), SystemTime::now()) {
            return;
        }
        let mut rx = self.state.clone();
        rx.mark_unchanged();
        poke.notify_one();
        let _ = tokio::time::timeout(RENEW_WAIT, async {
            while stale(&rx.borrow_and_update(), SystemTime::now()) {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }
}

/// True when the state would be answered with a 503.
fn stale(state: &CredentialState, now: SystemTime) -> bool {
    match state {
        CredentialState::Expired { .. } => true,
        CredentialState::Valid { credentials, .. } => credentials.expires_at() <= now,
    }
}

/// The requests answered: the [`LOG_ENV`] test hook's file, and in unit tests an
/// in-memory list.
struct RequestLog {
    #[cfg(test)]
    records: Mutex<VecDeque<ServedRecord>>,
    file: Option<Mutex<File>>,
}

impl RequestLog {
    fn open(path: Option<PathBuf>) -> Result<RequestLog, ServerError> {
        let file = match path {
            None => None,
            Some(path) => {
                let file = crate::paths::private_file()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|source| ServerError::LogFile { path, source })?;
                Some(Mutex::new(file))
            }
        };
        Ok(RequestLog {
            #[cfg(test)]
            records: Mutex::new(VecDeque::new()),
            file,
        })
    }

    fn record(&self, record: ServedRecord) {
        if let Some(file) = &self.file {
            let line = format!(
                "{} {} {}\n",
                rfc3339(record.at),
                record.status,
                record.access_key_id.as_deref().unwrap_or("-")
            );
            // One write of one line to an O_APPEND file: lines from parallel requests
            // (or several endpoints sharing the file) do not interleave.
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = file.write_all(line.as_bytes()) {
                tracing::warn!("cannot write the endpoint log: {e}");
            }
        }
        #[cfg(test)]
        {
            let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
            if records.len() >= LOG_CAPACITY {
                records.pop_front();
            }
            records.push_back(record);
        }
        #[cfg(not(test))]
        let _ = record;
    }

    #[cfg(test)]
    fn records(&self) -> Vec<ServedRecord> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records.iter().cloned().collect()
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    options: Options,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_header_size(options.max_header_bytes.max(MIN_BUF))
        .max_buf_size(options.max_header_bytes.max(MIN_BUF))
        .half_close(false);
    let http = Arc::new(http);
    let slots = Arc::new(Semaphore::new(
        options.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let mut connections = JoinSet::new();

    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!("credential endpoint cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "credential endpoint: more than {} connections; closing one",
                options.max_connections
            );
            drop(stream);
            continue;
        };
        let http = http.clone();
        let shared = shared.clone();
        let stop = stop.clone();
        let lifetime = options.connection_timeout;
        connections.spawn(async move {
            serve_connection(&http, stream, shared, lifetime, stop).await;
            drop(permit);
        });
    }

    // Shutting down: in-flight connections were told too; give them a moment.
    let drained = tokio::time::timeout(GRACE + Duration::from_millis(100), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

async fn serve_connection(
    http: &hyper::server::conn::http1::Builder,
    stream: TcpStream,
    shared: Arc<Shared>,
    lifetime: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        async move {
            shared.renew_if_stale(&req).await;
            Ok::<_, Infallible>(handle(&shared, &req))
        }
    });
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        result = conn.as_mut() => Some(result),
        _ = tokio::time::sleep(lifetime) => None,
        _ = stop.changed() => None,
    };
    match ended {
        Some(Ok(())) => {}
        Some(Err(e)) => tracing::debug!("credential endpoint connection: {e}"),
        None => {
            // Lifetime over or shutting down: finish the response in flight, if any,
            // then close; a client that does not cooperate is dropped after GRACE.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GRACE, conn.as_mut()).await;
        }
    }
}

/// Answers one request and records it. Never reads the body.
fn handle<B>(shared: &Shared, req: &Request<B>) -> Response<Full<Bytes>> {
    let now = SystemTime::now();
    let (response, access_key_id) = answer(shared, req, now);
    shared.log.record(ServedRecord {
        at: now,
        status: response.status().as_u16(),
        access_key_id,
    });
    response
}

fn answer<B>(
    shared: &Shared,
    req: &Request<B>,
    now: SystemTime,
) -> (Response<Full<Bytes>>, Option<String>) {
    if req.method() != Method::GET {
        let mut response = message(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return (response, None);
    }
    match authorize(&shared.token, req) {
        Auth::Missing => {
            return (
                message(StatusCode::UNAUTHORIZED, "missing Authorization token"),
                None,
            )
        }
        Auth::Wrong => {
            return (
                message(StatusCode::FORBIDDEN, "invalid Authorization token"),
                None,
            )
        }
        Auth::Ok => {}
    }

    let state = shared.state.borrow();
    match &*state {
        CredentialState::Expired { message: text } => {
            (message(StatusCode::SERVICE_UNAVAILABLE, text), None)
        }
        CredentialState::Valid { credentials, .. } if credentials.expires_at() <= now => (
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "the assumed role's credentials have expired and were not renewed",
            ),
            None,
        ),
        CredentialState::Valid {
            credentials,
            advertise_until,
        } => {
            let body = serde_json::json!({
                "AccessKeyId": credentials.access_key_id,
                "SecretAccessKey": credentials.secret_access_key.expose(),
                "Token": credentials.session_token.expose(),
                "Expiration": rfc3339(advertised(credentials, *advertise_until, now)),
            });
            (
                json(StatusCode::OK, body.to_string()),
                Some(credentials.access_key_id.clone()),
            )
        }
    }
}

/// The Expiration to tell clients: `advertise_until`, but never later than the real
/// expiry; and once `advertise_until` has passed without a renewal, the real expiry,
/// so that clients keep working until then rather than rejecting credentials that
/// look expired on arrival.
fn advertised(
    credentials: &Credentials,
    advertise_until: SystemTime,
    now: SystemTime,
) -> SystemTime {
    let real = credentials.expires_at();
    // The Expiration is written to the whole second (truncated): within the last
    // seconds before `advertise_until` it would already be past on arrival, so from
    // then on the real expiry is served.
    if advertise_until > now + ADVERTISE_MARGIN {
        advertise_until.min(real)
    } else {
        real
    }
}

/// How close to `advertise_until` the real expiry is served instead.
const ADVERTISE_MARGIN: Duration = Duration::from_secs(2);

enum Auth {
    Missing,
    Wrong,
    Ok,
}

impl Auth {
    #[cfg(test)]
    fn is_ok(&self) -> bool {
        matches!(self, Auth::Ok)
    }
}

fn authorize<B>(token: &Secret, req: &Request<B>) -> Auth {
    let mut values = req.headers().get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Auth::Missing;
    };
    if values.next().is_some() {
        return Auth::Wrong;
    }
    if value.is_empty() {
        return Auth::Missing;
    }
    // Constant time in the content; a length mismatch fails at once (the length of
    // the token is no secret: it is always 64).
    if bool::from(value.as_bytes().ct_eq(token.expose().as_bytes())) {
        Auth::Ok
    } else {
        Auth::Wrong
    }
}

fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "Message": text }).to_string())
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    const SESSION: &str = "FwoGZXIvYXdzEJr//////////wEaDEXAMPLESESSION";

    fn secs(t: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(t)
    }

    fn now_secs() -> u64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn valid(key: &str, secret: &str, expiration: u64, advertise: u64) -> CredentialState {
        CredentialState::Valid {
            credentials: Credentials {
                access_key_id: key.to_string(),
                secret_access_key: Secret::new(secret),
                session_token: Secret::new(SESSION),
                expiration,
            },
            advertise_until: secs(advertise),
        }
    }

    fn test_options() -> Options {
        Options {
            header_read_timeout: Duration::from_millis(300),
            connection_timeout: Duration::from_secs(5),
            ..Options::default()
        }
    }

    async fn start(state: CredentialState) -> (Endpoint, watch::Sender<CredentialState>) {
        let (tx, rx) = watch::channel(state);
        let endpoint = Endpoint::start_with(rx, test_options()).await.unwrap();
        (endpoint, tx)
    }

    struct Reply {
        status: u16,
        head: String,
        body: String,
        raw: String,
    }

    /// Sends `request` as is and reads until the server closes the connection.
    async fn raw(endpoint: &Endpoint, request: &[u8]) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect(endpoint.addr).await?;
        stream.write_all(request).await?;
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        let raw = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(Reply {
            status,
            head: head.to_string(),
            body: body.to_string(),
            raw: raw.clone(),
        })
    }

    async fn get(endpoint: &Endpoint, authorization: Option<&str>) -> Reply {
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /creds HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
            endpoint.addr
        );
        raw(endpoint, request.as_bytes()).await.unwrap()
    }

    fn assert_no_credentials(reply: &Reply) {
        assert!(!reply.raw.contains(SECRET), "{}", reply.raw);
        assert!(!reply.raw.contains(SESSION), "{}", reply.raw);
        assert!(!reply.raw.contains("SecretAccessKey"), "{}", reply.raw);
    }

    fn json_message(reply: &Reply) -> String {
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        v["Message"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn serves_credentials_with_the_right_token() {
        let exp = now_secs() + 3600;
        let (endpoint, _tx) = start(valid("ASIAONE", SECRET, exp, exp - 900)).await;
        assert!(endpoint.url.starts_with("http://127.0.0.1:"));
        assert!(endpoint.url.ends_with("/creds"));
        assert_eq!(endpoint.token.expose().len(), 64);
        assert!(endpoint
            .token
            .expose()
            .bytes()
            .all(|b| b.is_ascii_hexdigit()));

        let reply = get(&endpoint, Some(endpoint.token.expose())).await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
        assert!(reply
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"));
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(v["AccessKeyId"], "ASIAONE");
        assert_eq!(v["SecretAccessKey"], SECRET);
        assert_eq!(v["Token"], SESSION);
        let expiration = v["Expiration"].as_str().unwrap();
        assert!(expiration.ends_with('Z'), "{expiration}");
        assert_eq!(
            crate::clock::parse_rfc3339(expiration),
            Some(secs(exp - 900))
        );

        // Any path is served.
        let request = format!(
            "GET /v2/credentials/whatever?x=1 HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            endpoint.token.expose()
        );
        assert_eq!(
            raw(&endpoint, request.as_bytes()).await.unwrap().status,
            200
        );

        let served = endpoint.served();
        assert_eq!(served.len(), 2);
        assert!(served.iter().all(|r| r.status == 200));
        assert_eq!(served[0].access_key_id.as_deref(), Some("ASIAONE"));
        endpoint.shutdown().await;
    }

    #[tokio::test]
    async fn keep_alive_serves_several_requests() {
        let exp = now_secs() + 3600;
        let (endpoint, _tx) = start(valid("ASIAKA", SECRET, exp, exp - 900)).await;
        let mut stream = TcpStream::connect(endpoint.addr).await.unwrap();
        let one = format!(
            "GET /creds HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
            endpoint.token.expose()
        );
        let last = format!(
            "GET /creds HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            endpoint.token.expose()
        );
        stream
            .write_all(format!("{one}{one}{last}").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
        assert_eq!(endpoint.served().len(), 3);
    }

    #[tokio::test]
    async fn no_token_is_401_without_credentials() {
        let exp = now_secs() + 3600;
        let (endpoint, _tx) = start(valid("ASIAONE", SECRET, exp, exp - 900)).await;
        let reply = get(&endpoint, None).await;
        assert_eq!(reply.status, 401);
        assert_no_credentials(&reply);
        assert!(!json_message(&reply).is_empty());
        assert!(reply
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"));

        // An empty header is no token either.
        let reply = get(&endpoint, Some("")).await;
        assert_eq!(reply.status, 401);
        assert_no_credentials(&reply);

        let served = endpoint.served();
        assert!(served
            .iter()
            .all(|r| r.status == 401 && r.access_key_id.is_none()));
    }

    #[tokio::test]
    async fn wrong_token_is_403_without_credentials() {
        let exp = now_secs() + 3600;
        let (endpoint, _tx) = start(valid("ASIAONE", SECRET, exp, exp - 900)).await;
        let token = endpoint.token.expose().to_string();

        // Same length, one character off.
        let mut wrong = token.clone().into_bytes();
        wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
        let wrong = String::from_utf8(wrong).unwrap();
        let shorter = &token[..63];
        let longer = format!("{token}0");
        let bearer = format!("Bearer {token}");
        for bad in [
            wrong.as_str(),
            shorter,
            longer.as_str(),
            bearer.as_str(),
            "x",
        ] {
            let reply = get(&endpoint, Some(bad)).await;
            assert_eq!(reply.status, 403, "{bad}: {}", reply.raw);
            assert_no_credentials(&reply);
            assert!(!json_message(&reply).is_empty());
        }

        // Two Authorization headers, even if one is right.
        let request = format!(
            "GET /creds HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nAuthorization: x\r\nConnection: close\r\n\r\n"
        );
        let reply = raw(&endpoint, request.as_bytes()).await.unwrap();
        assert_eq!(reply.status, 403);
        assert_no_credentials(&reply);
    }

    #[tokio::test]
    async fn other_methods_are_405() {
        let exp = now_secs() + 3600;
        let (endpoint, _tx) = start(valid("ASIAONE", SECRET, exp, exp - 900)).await;
        for method in ["POST", "PUT", "DELETE", "HEAD"] {
            let request = format!(
                "{method} /creds HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                endpoint.token.expose()
            );
            let reply = raw(&endpoint, request.as_bytes()).await.unwrap();
            assert_eq!(reply.status, 405, "{method}: {}", reply.raw);
            assert!(reply.head.to_ascii_lowercase().contains("allow: get"));
            assert_no_credentials(&reply);
        }
    }

    #[tokio::test]
    async fn oversized_headers_are_refused() {
        let exp = now_secs() + 3600;
        let (endpoint, _tx) = start(valid("ASIAONE", SECRET, exp, exp - 900)).await;
        let request = format!(
            "GET /creds HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
            endpoint.token.expose(),
            "a".repeat(64 * 1024)
        );
        // The server may answer 431 and close before reading it all, so the write or
        // the read can fail with a reset: that is a refusal too.
        match raw(&endpoint, request.as_bytes()).await {
            Ok(reply) => {
                assert!(reply.status == 431 || reply.status == 0, "{}", reply.head);
                assert_no_credentials(&reply);
            }
            Err(e) => assert_ne!(e.to_string(), "timed out"),
        }
        assert!(endpoint.served().is_empty());

        // Headers within the limit are fine.
        let request = format!(
            "GET /creds HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
            endpoint.token.expose(),
            "a".repeat(8 * 1024)
        );
        assert_eq!(
            raw(&endpoint, request.as_bytes()).await.unwrap().status,
            200
        );
    }

    #[tokio::test]
    async fn silent_client_is_dropped_after_the_header_timeout() {
        let exp = now_secs() + 3600;
        let (endpoint, _tx) = start(valid("ASIAONE", SECRET, exp, exp - 900)).await;
        let started = std::time::Instant::now();
        let mut stream = TcpStream::connect(endpoint.addr).await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut buf))
            .await
            .expect("the server should close a silent connection");
        // Closed (EOF, or a reset), with nothing sent.
        if read.is_ok() {
            assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
        }
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");

        // A slow client that sends half a request head is dropped too.
        let mut stream = TcpStream::connect(endpoint.addr).await.unwrap();
        stream
            .write_all(b"GET /creds HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut buf))
            .await
            .expect("the server should close a stalled connection");
        if read.is_ok() {
            assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
        }
        assert!(endpoint.served().is_empty());
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed() {
        let exp = now_secs() + 3600;
        let (tx, rx) = watch::channel(valid("ASIAONE", SECRET, exp, exp - 900));
        let options = Options {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(5),
            ..test_options()
        };
        let endpoint = Endpoint::start_with(rx, options).await.unwrap();
        let _a = TcpStream::connect(endpoint.addr).await.unwrap();
        let _b = TcpStream::connect(endpoint.addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut c = TcpStream::connect(endpoint.addr).await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), c.read_to_end(&mut buf))
            .await
            .expect("the third connection should be closed at once");
        if read.is_ok() {
            assert!(buf.is_empty());
        }
        // Once one of the two goes away, there is room again.
        drop(_a);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            get(&endpoint, Some(endpoint.token.expose())).await.status,
            200
        );
        drop(tx);
    }

    #[tokio::test]
    async fn rotation_serves_the_newest_credentials() {
        let exp = now_secs() + 3600;
        let (endpoint, tx) = start(valid("ASIAONE", SECRET, exp, exp - 900)).await;
        let token = endpoint.token.expose().to_string();
        let reply = get(&endpoint, Some(&token)).await;
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(v["AccessKeyId"], "ASIAONE");

        let exp2 = exp + 3600;
        tx.send(valid("ASIATWO", "second-secret", exp2, exp2 - 900))
            .unwrap();
        let reply = get(&endpoint, Some(&token)).await;
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(v["AccessKeyId"], "ASIATWO");
        assert_eq!(v["SecretAccessKey"], "second-secret");
        assert_eq!(
            crate::clock::parse_rfc3339(v["Expiration"].as_str().unwrap()),
            Some(secs(exp2 - 900))
        );

        let keys: Vec<_> = endpoint
            .served()
            .into_iter()
            .map(|r| r.access_key_id.unwrap_or_default())
            .collect();
        assert_eq!(keys, ["ASIAONE", "ASIATWO"]);
    }

    #[tokio::test]
    async fn expired_state_is_503_with_a_message() {
        let (endpoint, _tx) = start(CredentialState::Expired {
            message: "role credentials expired; run `breakglass login`".into(),
        })
        .await;
        let reply = get(&endpoint, Some(endpoint.token.expose())).await;
        assert_eq!(reply.status, 503);
        assert_eq!(
            json_message(&reply),
            "role credentials expired; run `breakglass login`"
        );
        assert_no_credentials(&reply);
        assert_eq!(endpoint.served()[0].status, 503);
        assert_eq!(endpoint.served()[0].access_key_id, None);
    }

    #[tokio::test]
    async fn valid_but_past_expiry_is_503() {
        let past = now_secs() - 10;
        let (endpoint, _tx) = start(valid("ASIAOLD", SECRET, past, past - 900)).await;
        let reply = get(&endpoint, Some(endpoint.token.expose())).await;
        assert_eq!(reply.status, 503, "{}", reply.raw);
        assert!(!json_message(&reply).is_empty());
        assert_no_credentials(&reply);
        assert!(!reply.raw.contains("ASIAOLD"));
    }

    /// After a suspend the wall clock has passed the expiry before the refresher woke
    /// up: the request pokes the refresher and waits for the renewal, never a 503.
    #[tokio::test]
    async fn expired_by_the_wall_clock_waits_for_a_renewal_instead_of_503() {
        let past = now_secs() - 10;
        let (tx, rx) = watch::channel(valid("ASIAOLD", SECRET, past, past - 900));
        let poke = Arc::new(Notify::new());
        let endpoint = Endpoint::start_with(
            rx,
            Options {
                renew: Some(poke.clone()),
                ..test_options()
            },
        )
        .await
        .unwrap();
        let renewer = tokio::spawn(async move {
            poke.notified().await;
            let later = now_secs() + 3600;
            let _ = tx.send(valid("ASIANEW", SECRET, later, later - 900));
            tx
        });
        let reply = get(&endpoint, Some(endpoint.token.expose())).await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
        assert!(reply.body.contains("ASIANEW"), "{}", reply.body);
        let _tx = renewer.await.unwrap();
        // Without the right token, nothing is poked and nothing waits.
        let reply = get(&endpoint, Some("wrong")).await;
        assert_eq!(reply.status, 403);
    }

    mod properties {
        //! Any request at all: never a panic, and never credentials without the token.
        use super::*;
        use proptest::prelude::*;

        fn shared(token: &str) -> Shared {
            let (_tx, rx) = watch::channel(valid(
                "ASIAPROP",
                SECRET,
                now_secs() + 3600,
                now_secs() + 2700,
            ));
            Shared {
                token: Secret::new(token),
                state: rx,
                log: RequestLog::open(None).unwrap(),
                renew: None,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]
            #[test]
            fn any_request_is_answered_without_panic(
                method in prop_oneof![Just("GET".to_string()), Just("POST".to_string()), "[A-Z]{1,8}"],
                path in "/[ -~]{0,40}",
                headers in proptest::collection::vec(("[A-Za-z-]{1,20}", "[ -~]{0,80}"), 0..6),
                auth in proptest::option::of("[ -~]{0,80}"),
                right in any::<bool>(),
            ) {
                let token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
                let shared = shared(token);
                let mut b = Request::builder().method(method.as_str()).uri(path.as_str());
                for (k, v) in &headers {
                    b = b.header(k.as_str(), v.as_str());
                }
                let sent_right = right && method == "GET";
                if right {
                    b = b.header(AUTHORIZATION, token);
                } else if let Some(a) = &auth {
                    b = b.header(AUTHORIZATION, a.as_str());
                }
                let Ok(req) = b.body(()) else { return Ok(()) };
                let (resp, key) = answer(&shared, &req, SystemTime::now());
                let status = resp.status().as_u16();
                prop_assert!([200, 401, 403, 405].contains(&status), "{status}");
                if key.is_some() {
                    prop_assert_eq!(status, 200);
                    prop_assert!(authorize(&shared.token, &req).is_ok());
                }
                if sent_right && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
                    prop_assert_eq!(status, 200);
                }
            }
        }
    }

    #[test]
    fn advertised_expiration_never_exceeds_the_real_one() {
        let c = Credentials {
            access_key_id: "A".into(),
            secret_access_key: Secret::new("s"),
            session_token: Secret::new("t"),
            expiration: 10_000,
        };
        let now = secs(5_000);
        assert_eq!(advertised(&c, secs(9_000), now), secs(9_000));
        assert_eq!(advertised(&c, secs(20_000), now), secs(10_000));
        // The advertised time passed without a renewal: the real expiry.
        assert_eq!(advertised(&c, secs(4_000), now), secs(10_000));
        // Less than a second before it, the truncated Expiration would already be
        // past on arrival (found by shell/chaos.sh): the real expiry too.
        let almost = SystemTime::UNIX_EPOCH + Duration::from_millis(8_999_700);
        assert_eq!(advertised(&c, secs(9_000), almost), secs(10_000));
    }

    #[tokio::test]
    async fn secrets_stay_out_of_debug_and_logs() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("endpoint.log");
        let exp = now_secs() + 3600;
        let (tx, rx) = watch::channel(valid("ASIAONE", SECRET, exp, exp - 900));
        let options = Options {
            log_file: Some(log.clone()),
            ..test_options()
        };
        let endpoint = Endpoint::start_with(rx, options).await.unwrap();
        let token = endpoint.token.expose().to_string();
        assert_eq!(get(&endpoint, Some(&token)).await.status, 200);
        assert_eq!(get(&endpoint, None).await.status, 401);
        assert_eq!(get(&endpoint, Some("nope")).await.status, 403);
        tx.send(CredentialState::Expired {
            message: "gone".into(),
        })
        .unwrap();
        assert_eq!(get(&endpoint, Some(&token)).await.status, 503);

        let shown = format!("{endpoint:?} {:?} {:?}", endpoint.served(), *tx.borrow());
        let written = std::fs::read_to_string(&log).unwrap();
        for text in [&shown, &written] {
            assert!(!text.contains(SECRET), "{text}");
            assert!(!text.contains(SESSION), "{text}");
            assert!(!text.contains(&token), "{text}");
        }

        let lines: Vec<Vec<&str>> = written.lines().map(|l| l.split(' ').collect()).collect();
        assert_eq!(lines.len(), 4, "{written}");
        for line in &lines {
            assert_eq!(line.len(), 3, "{written}");
            assert!(crate::clock::parse_rfc3339(line[0]).is_some(), "{written}");
        }
        let tail: Vec<_> = lines.iter().map(|l| (l[1], l[2])).collect();
        assert_eq!(
            tail,
            [("200", "ASIAONE"), ("401", "-"), ("403", "-"), ("503", "-")]
        );

        let env = endpoint.env();
        assert_eq!(
            env[0],
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
                endpoint.url.clone()
            )
        );
        assert_eq!(
            env[1],
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN".into(), token.clone())
        );
        endpoint.shutdown().await;
    }

    #[tokio::test]
    async fn tokens_differ_between_runs_and_shutdown_stops_listening() {
        let exp = now_secs() + 3600;
        let (a, _ta) = start(valid("A", SECRET, exp, exp - 900)).await;
        let (b, _tb) = start(valid("B", SECRET, exp, exp - 900)).await;
        assert_ne!(a.token, b.token);
        let addr = a.addr;
        a.shutdown().await;
        assert!(TcpStream::connect(addr).await.is_err());
        drop(b);
    }
}
