//! Time helpers: RFC 3339 for humans and for the credential endpoint.

use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `2026-11-21T22:27:38Z`, to the second, in UTC.
pub fn rfc3339(t: SystemTime) -> String {
    // OffsetDateTime::from panics past year 9999; such a time is "far future".
    let Ok(t) = OffsetDateTime::from_unix_timestamp(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs().min(253_402_300_799) as i64)
            .unwrap_or(0),
    ) else {
        return "?".to_string();
    };
    t.format(&Rfc3339).unwrap_or_else(|_| "?".to_string())
}

/// Parses an RFC 3339 time.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(SystemTime::from)
}
