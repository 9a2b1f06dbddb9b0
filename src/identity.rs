//! Who runs breakglass, as it names them: the local user and host, the session-name
//! and source-identity templates they fill, and STS's rules for such names.

use crate::env::Env;

/// The local user and this machine, as recorded in audit lines and session names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub host: String,
}

impl Identity {
    /// `USER` (else `LOGNAME`, else `uidN`) and the host name.
    pub fn of(env: &Env) -> Identity {
        let user = env
            .get("USER")
            .or_else(|| env.get("LOGNAME"))
            .map(str::to_string)
            .unwrap_or_else(|| {
                // SAFETY: getuid has no preconditions and cannot fail.
                format!("uid{}", unsafe { libc::getuid() })
            });
        Identity {
            user,
            host: host_name(),
        }
    }

    /// Fills a `session_name` / `source_identity` template: `{user}`, `{host}`,
    /// `{workspace}`.
    pub fn expand(&self, template: &str, workspace: &str) -> String {
        template
            .replace("{user}", &self.user)
            .replace("{host}", &self.host)
            .replace("{workspace}", workspace)
    }
}

/// Cleans a name to STS's rules for session names and source identities:
/// 2 to 64 characters of `[\w+=,.@-]`; others become `-`.
pub fn clean_sts_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while s.len() < 2 {
        s.push('-');
    }
    s
}

/// This machine's host name.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates
    // within it or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_follow_sts_rules() {
        assert_eq!(clean_sts_name("breakglass-alice"), "breakglass-alice");
        assert_eq!(clean_sts_name("bg alice/ü"), "bg-alice--");
        assert_eq!(clean_sts_name("x"), "x-");
        assert_eq!(clean_sts_name(&"a".repeat(100)).len(), 64);
        assert_eq!(clean_sts_name("a=b,c.d@e+f_g"), "a=b,c.d@e+f_g");
    }

    #[test]
    fn templates_fill_user_host_and_workspace() {
        let id = Identity::of(&Env::from_pairs([("USER".to_string(), "alice".into())]));
        assert_eq!(id.expand("bg-{user}-{workspace}", "prod"), "bg-alice-prod");
        assert!(!id.expand("{host}", "x").is_empty());
    }
}
