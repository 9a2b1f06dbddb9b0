//! The role keys (`[role]`, and the same keys under `[workspaces.NAME]` and
//! `[stacks."GLOB"]`), each declared once, in the list at the end of this file: the raw
//! TOML shape, the checked settings with their positions, the conversion, the overlay
//! and the first position all come from that one list. Adding a key is one line there,
//! plus its use (its check, and the resolved [`crate::mapping::RoleTarget`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{overlay, ConfigError, Located, Origin, Source};

/// How a kind of key is written in TOML.
macro_rules! raw_type {
    (text) => { String };
    (duration) => { String };
    (list) => { Vec<String> };
}

/// What a kind of key holds once checked.
macro_rules! value_type {
    (text) => { String };
    (duration) => { Duration };
    (list) => { Vec<String> };
}

/// A raw value of a kind, with its position.
macro_rules! convert {
    (text, $src:expr, $v:expr) => {
        $src.string($v)
    };
    (duration, $src:expr, $v:expr) => {
        $src.duration($v)?
    };
    (list, $src:expr, $v:expr) => {
        $v.map(|p| $src.locate(p))
    };
}

macro_rules! role_keys {
    ($( $(#[$doc:meta])* $key:ident: $kind:ident, )*) => {
        /// The role keys as written (unknown keys are errors, with a did-you-mean).
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawRole {
            $( pub(super) $key: Option<Spanned<raw_type!($kind)>>, )*
            #[serde(default)]
            pub(super) tags: BTreeMap<String, Spanned<String>>,
            /// Only in `[stacks."GLOB"]`: `[stacks."GLOB".workspaces.NAME]`.
            pub(super) workspaces: Option<BTreeMap<String, RawRole>>,
        }

        impl RawRole {
            /// True when the table sets no key of its own.
            pub(super) fn is_empty(&self) -> bool {
                $( self.$key.is_none() && )* self.tags.is_empty()
            }
        }

        /// Role settings, as written in `[role]`, `[workspaces.NAME]` or
        /// `[stacks."GLOB"]`.
        #[derive(Debug, Clone, Default)]
        pub struct RoleSettings {
            $( $(#[$doc])* pub $key: Option<Located<value_type!($kind)>>, )*
            /// Session tags (`breakglass = "true"` is always added).
            pub tags: BTreeMap<String, Located<String>>,
        }

        impl RoleSettings {
            /// The raw keys with their positions; durations parsed (a nested
            /// `workspaces` table is taken apart by the caller).
            pub(super) fn convert(src: &Source, raw: RawRole) -> Result<RoleSettings, ConfigError> {
                Ok(RoleSettings {
                    $( $key: convert!($kind, src, raw.$key), )*
                    tags: raw.tags.into_iter().map(|(k, v)| (k, src.locate(v))).collect(),
                })
            }

            /// Lays `over` on top of `self`, key by key.
            pub fn overlay(&mut self, over: RoleSettings) {
                $( overlay(&mut self.$key, over.$key); )*
                self.tags.extend(over.tags);
            }

            /// Where this mapping's first key (in the order below) was written.
            pub fn first_origin(&self) -> Option<Origin> {
                let origins = [$( self.$key.as_ref().map(|l| l.origin.clone()), )*];
                origins.into_iter().flatten().next()
            }
        }
    };
}

role_keys! {
    /// The deployment role.
    arn: text,
    /// A read-only role for `plan`, `show`, `output`, `state list|pull|show`.
    read_arn: text,
    /// The session name template (`{user}`, `{host}`, `{workspace}`).
    session_name: text,
    /// The session length.
    duration: duration,
    /// Renew this long before expiry.
    refresh_before: duration,
    external_id: text,
    mfa_serial: text,
    /// A command that prints an MFA code.
    mfa_command: text,
    /// The AWS profile of the source identity.
    source_profile: text,
    /// The source identity template.
    source_identity: text,
    /// Session policies.
    policy_arns: list,
}
