//! The keys a profile may have: which the AWS CLI knows, which Postern uses, which are secret,
//! and the warnings about unknown keys and odd values.

use std::collections::BTreeMap;
use std::path::Path;

use super::ini::{self, Value};
use super::{Problem, ProblemKind, Setting};

/// Keys whose values are secrets: never printed, in a dump or a Debug view.
pub fn is_secret_key(key: &str) -> bool {
    matches!(
        key,
        "aws_secret_access_key" | "aws_session_token" | "aws_security_token"
    )
}

/// What stands in for a secret value in a dump.
pub const REDACTED: &str = "(secret, not shown)";

/// Keys Postern knows (the AWS CLI's and SDKs', and aws-vault's), for the unknown-key note.
pub(super) const KNOWN_KEYS: &[&str] = &[
    "region",
    "output",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
    "aws_account_id",
    "role_arn",
    "source_profile",
    "credential_source",
    "mfa_serial",
    "external_id",
    "role_session_name",
    "duration_seconds",
    "credential_process",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "sso_region",
    "sso_account_id",
    "sso_role_name",
    "sso_registration_scopes",
    "ca_bundle",
    "endpoint_url",
    "ignore_configured_endpoint_urls",
    "services",
    "max_attempts",
    "retry_mode",
    "parameter_validation",
    "tcp_keepalive",
    "sts_regional_endpoints",
    "use_fips_endpoint",
    "use_dualstack_endpoint",
    "defaults_mode",
    "metadata_service_timeout",
    "metadata_service_num_attempts",
    "ec2_metadata_service_endpoint",
    "ec2_metadata_service_endpoint_mode",
    "ec2_metadata_v1_disabled",
    "api_versions",
    "account_id_endpoint_mode",
    "request_checksum_calculation",
    "response_checksum_validation",
    "sigv4a_signing_region_set",
    "disable_request_compression",
    "request_min_compression_size_bytes",
    "auth_scheme_preference",
    "cli_pager",
    "cli_timestamp_format",
    "cli_follow_urlparam",
    "cli_binary_format",
    "cli_auto_prompt",
    "cli_history",
    "cli_help_output",
    "s3",
    "s3api",
    "ec2",
    "sts",
    "ssm",
    "dynamodb",
    "mfa_process",
    "include_profile",
    "parent_profile",
    "session_tags",
    "transitive_session_tags",
    "source_identity",
    "color",
    "credential_source_region",
];

/// What a value's text suggests was not meant.
/// Keys whose value Postern uses: an empty one is a mistake (an empty `cli_pager` is not).
pub(super) const USED_KEYS: &[&str] = &[
    "region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "role_arn",
    "source_profile",
    "credential_source",
    "mfa_serial",
    "external_id",
    "role_session_name",
    "duration_seconds",
    "credential_process",
    "sso_session",
    "endpoint_url",
];

/// Warnings about the values of one section as written (overridden values included).
pub(super) fn value_warnings(section: &ini::Section, path: &Path, out: &mut Vec<Problem>) {
    for (key, entry) in &section.entries {
        if let Some(kind) = value_warning(key, &entry.value) {
            out.push(Problem::new(path, entry.line, kind));
        }
    }
}

pub(super) fn value_warning(key: &str, value: &Value) -> Option<ProblemKind> {
    let text = value.text()?;
    Some(if text.is_empty() {
        if !USED_KEYS.contains(&key) {
            return None;
        }
        ProblemKind::EmptyValue { key: key.into() }
    } else if text.len() >= 2
        && ((text.starts_with('"') && text.ends_with('"'))
            || (text.starts_with('\'') && text.ends_with('\'')))
    {
        ProblemKind::QuotedValue { key: key.into() }
    } else if text.contains(" #") || text.contains(" ;") || text.contains("\t#") {
        ProblemKind::InlineComment { key: key.into() }
    } else {
        return None;
    })
}

/// The known key nearest to `key` (a typo), if one is close.
pub(super) fn nearest_known(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    KNOWN_KEYS
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len() / 2)
        .min()
        .map(|(_, k)| k)
}

pub(super) fn settings_of(section: &ini::Section, path: &Path) -> BTreeMap<String, Setting> {
    section
        .entries
        .iter()
        .map(|(k, e)| {
            (
                k.clone(),
                Setting {
                    value: e.value.clone(),
                    path: path.to_owned(),
                    line: e.line,
                },
            )
        })
        .collect()
}
