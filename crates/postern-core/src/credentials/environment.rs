//! The clock expiry is judged by, and the AWS variables of the environment.

use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

use super::AwsCredentials;
use crate::keychain::Secret;

/// The time, for expiry decisions (tests follow the sandbox's clock).
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The AWS variables of the environment that matter here, read once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Secret>,
    /// `AWS_DEFAULT_PROFILE`, else `AWS_PROFILE` (botocore's order).
    pub profile: Option<String>,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`).
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// `AWS_ENDPOINT_URL_STS`, `…_SSM`, `…_EC2`, `…_CLOUDTRAIL`, by service.
    pub service_endpoints: HashMap<String, String>,
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("access_key_id", &self.access_key_id)
            .field("profile", &self.profile)
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

impl Environment {
    /// Read the process's environment.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let service_endpoints = ["STS", "SSM", "EC2", "CLOUDTRAIL", "SSMMESSAGES"]
            .iter()
            .filter_map(|s| {
                var(&format!("AWS_ENDPOINT_URL_{s}")).map(|v| (s.to_ascii_lowercase(), v))
            })
            .collect();
        Self {
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY").map(Secret::new),
            session_token: var("AWS_SESSION_TOKEN")
                .or_else(|| var("AWS_SECURITY_TOKEN"))
                .map(Secret::new),
            // botocore reads AWS_DEFAULT_PROFILE first.
            profile: var("AWS_DEFAULT_PROFILE").or_else(|| var("AWS_PROFILE")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            endpoint_url: var("AWS_ENDPOINT_URL"),
            service_endpoints,
        }
    }

    pub(super) fn credentials(&self) -> Option<AwsCredentials> {
        Some(AwsCredentials {
            access_key_id: self.access_key_id.clone()?,
            secret_access_key: self.secret_access_key.clone()?,
            session_token: self.session_token.clone(),
            expires: None,
            arn: None,
            identity: None,
        })
    }
}
