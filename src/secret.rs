//! Credentials and the secret strings inside them. A [`Secret`] prints as `***` in
//! `Debug` and `Display`, so no log line, error or panic message can leak it.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A string that never prints.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the places that must hand it on (STS signing, the
    /// credential endpoint, terraform's environment).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Temporary AWS credentials and when they expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    /// Seconds since the Unix epoch.
    pub expiration: u64,
}

impl Credentials {
    /// The same credentials for an AWS SDK client; `source` names them in the SDK's
    /// own messages.
    pub fn for_sdk(&self, source: &'static str) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose().to_string(),
            Some(self.session_token.expose().to_string()),
            Some(self.expires_at()),
            source,
        )
    }

    pub fn expires_at(&self) -> SystemTime {
        // A value past what the clock can hold counts as the epoch: expired.
        SystemTime::UNIX_EPOCH
            .checked_add(std::time::Duration::from_secs(self.expiration))
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// Time left before expiry at `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> std::time::Duration {
        self.expires_at().duration_since(now).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI"),
            session_token: Secret::new("FwoGZXIvYXdzEJr"),
            expiration: 0,
        };
        let shown = format!("{c:?} {}", c.secret_access_key);
        assert!(
            !shown.contains("wJalrXUtnFEMI") && !shown.contains("FwoGZXIvYXdzEJr"),
            "{shown}"
        );
        assert!(shown.contains("ASIAEXAMPLE"));
    }
}
