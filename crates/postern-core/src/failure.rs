//! What a failed AWS call means, in words that never echo the request or the response (either
//! may hold credentials or a stream token). A leaf: every module that calls AWS uses it, and it
//! uses none of them.

/// What went wrong with a call that got no service error, in words that never echo the request
/// or the response (either may hold credentials or a stream token).
pub(crate) fn transport_failure<E, R>(
    error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match error {
        SdkError::DispatchFailure(failure) => match failure.as_connector_error() {
            Some(connector) if connector.is_timeout() => "the connection timed out".into(),
            Some(connector) => match root_cause(connector) {
                Some(cause) => format!("cannot connect: {cause}"),
                None => "cannot connect".into(),
            },
            None => "cannot connect".into(),
        },
        SdkError::TimeoutError(_) => "the call timed out".into(),
        SdkError::ResponseError(_) => "the answer could not be read".into(),
        SdkError::ConstructionFailure(_) => "the request could not be built".into(),
        SdkError::ServiceError(_) => "the service refused the call".into(),
        _ => "the call failed".into(),
    }
}

/// The innermost cause of an error, in its own words (never a Debug dump): for a connection,
/// what the operating system or TLS said ("Connection refused (os error 111)").
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    (!text.is_empty()).then_some(text)
}

/// The error codes AWS throttles with.
pub const THROTTLING_CODES: &[&str] = &[
    "RequestLimitExceeded",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
];
