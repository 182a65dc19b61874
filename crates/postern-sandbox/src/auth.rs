//! Authenticating requests: from the `Authorization` header to a [`Caller`], or to the error each
//! service answers with.
//!
//! The checks run in the order AWS's front end runs them (header shape, signing date and clock
//! skew, credential scope, access key and session token, expiry, signature). The codes, statuses
//! and messages per service are those observed from AWS; `docs/aws-wire-reference.md` gives the
//! sources. JSON services answer framework errors with a `com.amazon.coral.service#` prefix on
//! `__type`, as AWS does (SDKs strip it).

use http::StatusCode;
use time::{Duration, OffsetDateTime};

use crate::iam::Caller;
use crate::sigv4::{self, Authorization, AuthorizationProblem, ReceivedRequest, SigningSecret};
use crate::wire::{AwsError, Service};
use crate::world::World;

/// How far a request's signing time may be from the sandbox clock, either way.
pub const MAX_SKEW: Duration = Duration::minutes(15);

/// Why a request could not be authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// A malformed `Authorization` header; the text says what is wrong.
    Incomplete(String),
    /// No such access key, or a session token that does not belong to it.
    UnknownKey,
    /// The signature does not match (or the scope is wrong; the text says how).
    BadSignature(Option<String>),
    /// The temporary credentials have expired.
    ExpiredToken,
    /// The request was signed too far from now.
    Skewed {
        /// When the request says it was signed.
        signed: OffsetDateTime,
        /// The sandbox's now.
        now: OffsetDateTime,
    },
}

const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
const EXPIRED_TOKEN: &str = "The security token included in the request is expired";
const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. \
     Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const EC2_AUTH_FAILURE: &str = "AWS was not able to validate the provided access credentials";

fn compact(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    at.format(format).unwrap_or_default()
}

impl AuthFailure {
    /// The error `service` answers with.
    pub fn into_error(self, service: Service) -> AwsError {
        use AuthFailure::*;
        let coral = |code: &str| format!("com.amazon.coral.service#{code}");
        let json = matches!(service, Service::Ssm | Service::CloudTrail);
        let ec2 = service == Service::Ec2;
        match self {
            Missing if json => AwsError::bad_request(
                coral("MissingAuthenticationTokenException"),
                "Request is missing Authentication Token",
            ),
            Missing if ec2 => AwsError::new(
                "MissingAuthenticationToken",
                StatusCode::UNAUTHORIZED,
                "The request must contain either a valid (registered) AWS access key ID or X.509 certificate.",
            ),
            Missing => AwsError::forbidden(
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ),
            Incomplete(text) if json => {
                AwsError::bad_request(coral("IncompleteSignatureException"), text)
            }
            Incomplete(text) => AwsError::bad_request("IncompleteSignature", text),
            UnknownKey if json => {
                AwsError::bad_request(coral("UnrecognizedClientException"), INVALID_TOKEN)
            }
            UnknownKey if ec2 => {
                AwsError::new("AuthFailure", StatusCode::UNAUTHORIZED, EC2_AUTH_FAILURE)
            }
            UnknownKey => AwsError::forbidden("InvalidClientTokenId", INVALID_TOKEN),
            BadSignature(text) => {
                let text = text.unwrap_or_else(|| BAD_SIGNATURE.to_owned());
                if json {
                    AwsError::bad_request(coral("InvalidSignatureException"), text)
                } else if ec2 {
                    AwsError::new("AuthFailure", StatusCode::UNAUTHORIZED, EC2_AUTH_FAILURE)
                } else {
                    AwsError::forbidden("SignatureDoesNotMatch", text)
                }
            }
            ExpiredToken if json => {
                AwsError::bad_request(coral("ExpiredTokenException"), EXPIRED_TOKEN)
            }
            ExpiredToken if ec2 => AwsError::bad_request("RequestExpired", "Request has expired."),
            ExpiredToken => AwsError::forbidden("ExpiredToken", EXPIRED_TOKEN),
            Skewed { .. } if ec2 => AwsError::bad_request("RequestExpired", "Request has expired."),
            Skewed { signed, now } => {
                let text = if signed < now {
                    format!(
                        "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                        compact(signed),
                        compact(now - MAX_SKEW),
                        compact(now)
                    )
                } else {
                    format!(
                        "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                        compact(signed),
                        compact(now + MAX_SKEW),
                        compact(now)
                    )
                };
                if json {
                    AwsError::bad_request(coral("InvalidSignatureException"), text)
                } else {
                    AwsError::forbidden("SignatureDoesNotMatch", text)
                }
            }
        }
    }
}

/// Authenticate a request already routed to `service`, whose header parsed (or failed to) as
/// `authorization`.
pub fn authenticate(
    world: &World,
    authorization: Result<&Authorization, &AuthorizationProblem>,
    request: &ReceivedRequest<'_>,
) -> Result<Caller, AuthFailure> {
    let auth = match authorization {
        Ok(auth) => auth,
        Err(AuthorizationProblem::Missing) => return Err(AuthFailure::Missing),
        Err(AuthorizationProblem::Incomplete(text)) => {
            return Err(AuthFailure::Incomplete(text.clone()));
        }
    };
    let Some(signed) = sigv4::request_time(request.headers) else {
        return Err(AuthFailure::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        ));
    };
    let now = world.now();
    if (signed - now).abs() > MAX_SKEW {
        return Err(AuthFailure::Skewed { signed, now });
    }
    let signed_date = &compact(signed)[..8];
    if auth.scope_date != signed_date {
        return Err(AuthFailure::BadSignature(Some(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{signed_date}', from 'X-Amz-Date'.",
            auth.scope_date
        ))));
    }
    if !world.settings.regions.contains(&auth.region) {
        return Err(AuthFailure::BadSignature(Some(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.region
        ))));
    }
    let session_token = request
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok());
    let (caller, secret) = world.caller_for_key(&auth.access_key_id, session_token, now)?;
    let secret = SigningSecret {
        access_key_id: &auth.access_key_id,
        secret_access_key: secret,
        session_token,
    };
    if !sigv4::signature_matches(auth, request, signed, &secret) {
        return Err(AuthFailure::BadSignature(None));
    }
    Ok(caller)
}
