//! The three STS calls Postern makes, with AWS's errors mapped once into what the user can act
//! on.

use std::time::{Duration, SystemTime};

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::{AwsCredentials, CredentialError};
use crate::keychain::{Secret, SessionCredentials};

/// Where and how STS is called.
#[derive(Clone, Debug)]
pub(crate) struct Sts {
    pub(crate) region: String,
    pub(crate) endpoint: Option<String>,
    /// Learns AWS's time from every answer.
    pub(crate) clock: crate::aws::AwsClock,
}

/// What an STS call failed with, before the caller decides what it means.
#[derive(Debug)]
pub(crate) enum StsFailure {
    /// AWS answered with an error code.
    Service { code: String, message: String },
    /// No answer.
    Network(String),
}

impl StsFailure {
    fn from_sdk<E, R>(error: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match error {
            SdkError::ServiceError(service) => StsFailure::Service {
                code: service.err().code().unwrap_or("Unknown").to_owned(),
                message: service.err().message().unwrap_or("").to_owned(),
            },
            other => StsFailure::Network(crate::failure::transport_failure(other)),
        }
    }

    /// The error for `operation`, when nothing more specific applies.
    pub(crate) fn into_error(self, operation: &'static str) -> CredentialError {
        match self {
            StsFailure::Service { code, message } => match code.as_str() {
                "ExpiredToken" | "ExpiredTokenException" => CredentialError::Expired { message },
                "AccessDenied" | "AccessDeniedException" => {
                    CredentialError::AccessDenied { operation, message }
                }
                "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "UnrecognizedClientException" => CredentialError::BadKeys { message },
                _ => CredentialError::Sts {
                    operation,
                    code,
                    message,
                },
            },
            StsFailure::Network(detail) => CredentialError::Network(detail),
        }
    }

    /// The error for `operation` made with credentials `used`: a temporary session AWS refuses
    /// (expired by AWS's clock, revoked, unknown) is [`CredentialError::SessionRefused`], to be
    /// replaced; long-lived keys AWS refuses are bad keys.
    pub(crate) fn into_error_with(
        self,
        operation: &'static str,
        used: &AwsCredentials,
    ) -> CredentialError {
        match self {
            StsFailure::Service { code, message }
                if !used.is_long_lived() && REFUSED_SESSION.contains(&code.as_str()) =>
            {
                CredentialError::SessionRefused {
                    key_id: used.access_key_id.clone(),
                    message,
                }
            }
            other => other.into_error(operation),
        }
    }

    /// Whether AWS refused an MFA code.
    pub(crate) fn is_mfa_rejection(&self) -> bool {
        matches!(self, StsFailure::Service { code, message }
            if code == "AccessDenied" && message.contains("MultiFactorAuthentication failed"))
    }

    /// Whether AWS refused a duration over the one hour allowed to a chained role.
    pub(crate) fn is_chain_limit(&self) -> bool {
        matches!(self, StsFailure::Service { message, .. } if message.contains("role chaining"))
    }

    /// Whether the refusal is about `sts:SetSourceIdentity` (the role's trust policy).
    pub(crate) fn is_source_identity_refusal(&self) -> bool {
        matches!(self, StsFailure::Service { code, message }
            if code == "AccessDenied" && message.contains("sts:SetSourceIdentity"))
    }
}

/// The codes with which STS refuses a session's credentials themselves.
const REFUSED_SESSION: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
];

/// What AssumeRole is asked.
pub(crate) struct AssumeRole<'a> {
    pub(crate) role_arn: &'a str,
    pub(crate) session_name: &'a str,
    pub(crate) source_identity: Option<&'a str>,
    pub(crate) external_id: Option<&'a str>,
    pub(crate) duration_seconds: u32,
    pub(crate) mfa: Option<(&'a str, &'a str)>,
}

fn to_system_time(time: &aws_smithy_types::DateTime) -> SystemTime {
    let secs = time.secs().max(0) as u64;
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn session(c: &aws_sdk_sts::types::Credentials, arn: Option<String>) -> SessionCredentials {
    let expires = to_system_time(c.expiration())
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    SessionCredentials {
        access_key_id: c.access_key_id().to_owned(),
        secret_access_key: Secret::new(c.secret_access_key()),
        session_token: Secret::new(c.session_token()),
        expires,
        arn,
        identity: None,
    }
}

impl Sts {
    fn client(&self, credentials: &AwsCredentials) -> aws_sdk_sts::Client {
        use aws_sdk_sts::config::{BehaviorVersion, Region, retry::RetryConfig};
        let mut builder = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials.to_sdk())
            .interceptor(self.clock.interceptor())
            // A refused MFA code must not be sent again by a retry.
            .retry_config(RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) = &self.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        aws_sdk_sts::Client::from_conf(builder.build())
    }

    /// GetCallerIdentity: `(account, arn)`.
    pub(crate) async fn caller(
        &self,
        credentials: &AwsCredentials,
    ) -> Result<(String, String, String), StsFailure> {
        let out = self
            .client(credentials)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| StsFailure::from_sdk(&e))?;
        Ok((
            out.account().unwrap_or_default().to_owned(),
            out.arn().unwrap_or_default().to_owned(),
            out.user_id().unwrap_or_default().to_owned(),
        ))
    }

    /// GetSessionToken with an MFA code.
    pub(crate) async fn session_token(
        &self,
        credentials: &AwsCredentials,
        serial: &str,
        code: &str,
        duration_seconds: u32,
        arn: Option<String>,
    ) -> Result<SessionCredentials, StsFailure> {
        let out = self
            .client(credentials)
            .get_session_token()
            .serial_number(serial)
            .token_code(code)
            .duration_seconds(duration_seconds as i32)
            .send()
            .await
            .map_err(|e| StsFailure::from_sdk(&e))?;
        let c = out.credentials().ok_or_else(|| StsFailure::Service {
            code: "IncompleteResponse".into(),
            message: "GetSessionToken answered without credentials".into(),
        })?;
        Ok(session(c, arn))
    }

    /// AssumeRole.
    pub(crate) async fn assume_role(
        &self,
        credentials: &AwsCredentials,
        request: &AssumeRole<'_>,
    ) -> Result<SessionCredentials, StsFailure> {
        let mut call = self
            .client(credentials)
            .assume_role()
            .role_arn(request.role_arn)
            .role_session_name(request.session_name)
            .duration_seconds(request.duration_seconds as i32)
            .set_source_identity(request.source_identity.map(str::to_owned))
            .set_external_id(request.external_id.map(str::to_owned));
        if let Some((serial, code)) = request.mfa {
            call = call.serial_number(serial).token_code(code);
        }
        let out = call.send().await.map_err(|e| StsFailure::from_sdk(&e))?;
        let c = out.credentials().ok_or_else(|| StsFailure::Service {
            code: "IncompleteResponse".into(),
            message: "AssumeRole answered without credentials".into(),
        })?;
        let arn = out.assumed_role_user().map(|u| u.arn().to_owned());
        Ok(session(c, arn))
    }
}
