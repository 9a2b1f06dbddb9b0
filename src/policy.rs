//! The STS request policy: which role a command assumes (the read role for read-only
//! commands), the session name and source identity from their templates, the session
//! tags (the `breakglass-reason` tag included), and the refresh windows.

use std::time::Duration;

use crate::broker::{env_inputs, Request, DEFAULT_LOCK_WAIT};
use crate::config::Project;
use crate::env::Env;
use crate::identity::{clean_sts_name, Identity};
use crate::mapping::RoleTarget;
use crate::sts::{configured_endpoint, AssumeParams, SourceKind};
use crate::supervisor::CLIENT_WINDOW;

/// The session tag that carries the reason for a break-glass run.
pub const REASON_TAG: &str = "breakglass-reason";

/// The STS request for a role target: which ARN (read or write), the session name and
/// source identity filled in and cleaned, and what the environment says about the
/// source identity.
pub fn request(
    project: &Project,
    target: &RoleTarget,
    read_only: bool,
    reason: Option<&str>,
    env: &Env,
) -> Request {
    let mut tags = target.tags.clone();
    if let Some(reason) = reason {
        // CloudTrail shows session tags: the reason travels with every call.
        tags.insert(REASON_TAG.to_string(), tag_value(reason));
    }
    let who = Identity::of(env);
    Request {
        params: AssumeParams {
            role_arn: target.arn_for(read_only).to_string(),
            session_name: clean_sts_name(&who.expand(&target.session_name, &target.workspace)),
            duration: target.duration,
            external_id: target.external_id.clone(),
            source_identity: target
                .source_identity
                .as_deref()
                .map(|s| clean_sts_name(&who.expand(s, &target.workspace))),
            tags,
            policy_arns: target.policy_arns.clone(),
        },
        region: project.settings.region.as_ref().map(|r| r.value.clone()),
        source_profile: target.source_profile.clone(),
        mfa_serial: target.mfa_serial.clone(),
        mfa_command: target.mfa_command.clone(),
        mfa_token: env
            .get(crate::mfa::MFA_TOKEN_VAR)
            .map(crate::secret::Secret::new),
        source: SourceKind::detect(target.source_profile.as_deref(), env),
        sts_endpoint: configured_endpoint(env),
        env_key: env_inputs(env),
        refresh_before: effective_window(target),
        lock_wait: project
            .settings
            .lock_wait
            .as_ref()
            .map_or(DEFAULT_LOCK_WAIT, |w| w.value),
    }
}

/// A session tag value: at most 256 characters of letters, digits and `_.:/=+-@`.
/// Spaces, which STS allows, become `_` too: the SDK form-encodes them as `%20`, and
/// STS-compatible servers that re-encode the form to check the signature (moto) then
/// reject every AssumeRole whose reason has a space.
pub fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

/// The refresh window actually used: the configured one, floored at 6 minutes so that
/// clients are never handed credentials in their last 5 minutes while a refresh is
/// still possible; a window as long as the session, or longer, becomes the session less
/// a minute.
pub fn effective_window(target: &RoleTarget) -> Duration {
    window_for(target.duration, target.refresh_before)
}

/// [`effective_window`] for a session of `duration` and a configured `refresh_before`.
pub fn window_for(duration: Duration, refresh_before: Duration) -> Duration {
    let wanted = refresh_before.max(CLIENT_WINDOW + Duration::from_secs(60));
    if wanted < duration {
        wanted
    } else {
        duration.saturating_sub(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_keep_sts_characters_and_replace_the_rest() {
        assert_eq!(
            tag_value("INC-42 platform down, see #ops"),
            "INC-42_platform_down__see__ops"
        );
        assert_eq!(tag_value("a/b:c=d@e+f.g_h"), "a/b:c=d@e+f.g_h");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

    const M: u64 = 60;

    fn d(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn refresh_window_is_the_configured_one_when_shorter_than_the_session() {
        assert_eq!(window_for(d(60 * M), d(15 * M)), d(15 * M));
        // 15-minute sessions renewed 14m50s before expiry: a renewal every ~10 s.
        assert_eq!(window_for(d(15 * M), d(14 * M + 50)), d(14 * M + 50));
        // Floored at 6 minutes.
        assert_eq!(window_for(d(60 * M), d(M)), d(6 * M));
        // As long as the session, or longer: the session less a minute.
        assert_eq!(window_for(d(15 * M), d(15 * M)), d(14 * M));
        assert_eq!(window_for(d(15 * M), d(20 * M)), d(14 * M));
    }
}
