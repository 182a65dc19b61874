//! The wire formats of the four services: how requests are read and answers written.
//!
//! STS speaks `awsQuery` (form-encoded request, XML answer wrapped in `<OpResult>`), EC2 its own
//! `ec2` query dialect (XML answer without a result wrapper, errors in `<Response><Errors>`), SSM
//! and CloudTrail `awsJson1_1` (JSON both ways, operation in `X-Amz-Target`). Shapes follow the
//! botocore service models.

pub mod json;
pub mod query;
pub mod xml;

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

/// The services the sandbox serves, each in its own protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// AWS Security Token Service (awsQuery).
    Sts,
    /// Amazon EC2 (ec2 query).
    Ec2,
    /// AWS Systems Manager (awsJson1_1, target prefix `AmazonSSM`).
    Ssm,
    /// AWS CloudTrail (awsJson1_1, target prefix `CloudTrail_20131101`).
    CloudTrail,
}

impl Service {
    /// The SigV4 signing name, as it appears in the credential scope.
    pub fn signing_name(self) -> &'static str {
        match self {
            Self::Sts => "sts",
            Self::Ec2 => "ec2",
            Self::Ssm => "ssm",
            Self::CloudTrail => "cloudtrail",
        }
    }

    /// The service with signing name `name`.
    pub fn from_signing_name(name: &str) -> Option<Self> {
        match name {
            "sts" => Some(Self::Sts),
            "ec2" => Some(Self::Ec2),
            "ssm" => Some(Self::Ssm),
            "cloudtrail" => Some(Self::CloudTrail),
            _ => None,
        }
    }

    /// The `X-Amz-Target` prefixes of a JSON service, including the dot. CloudTrail has two:
    /// botocore sends the model's long `targetPrefix`, the Rust SDK the Smithy service name, and
    /// AWS accepts both.
    pub fn target_prefixes(self) -> &'static [&'static str] {
        match self {
            Self::Ssm => &["AmazonSSM."],
            Self::CloudTrail => &[
                "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.",
                "CloudTrail_20131101.",
            ],
            Self::Sts | Self::Ec2 => &[],
        }
    }

    /// The host name the service has in `region` (for CloudTrail's eventSource and ARNs).
    pub fn event_source(self) -> &'static str {
        match self {
            Self::Sts => "sts.amazonaws.com",
            Self::Ec2 => "ec2.amazonaws.com",
            Self::Ssm => "ssm.amazonaws.com",
            Self::CloudTrail => "cloudtrail.amazonaws.com",
        }
    }
}

/// An error answered in the shape of the service it concerns.
#[derive(Clone, Debug)]
pub struct AwsError {
    /// The error code (`AccessDenied`, `InvalidParameterValue`, `AccessDeniedException`…).
    pub code: Cow<'static, str>,
    /// The human-readable message.
    pub message: String,
    /// The HTTP status.
    pub status: StatusCode,
    /// Whether the caller is at fault (`Sender`) or the service (`Receiver`).
    pub sender_fault: bool,
}

impl AwsError {
    /// A caller-side error.
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        status: StatusCode,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status,
            sender_fault: true,
        }
    }

    /// HTTP 400, the caller's fault.
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, StatusCode::BAD_REQUEST, message)
    }

    /// HTTP 403, the caller's fault.
    pub fn forbidden(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, StatusCode::FORBIDDEN, message)
    }

    /// HTTP 500: the sandbox itself failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: "InternalFailure".into(),
            message: message.into(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
            sender_fault: false,
        }
    }

    /// Render the error as `service` would, tagged with `request_id`.
    pub fn into_response(self, service: Service, request_id: &str) -> Response {
        let (content_type, body) = match service {
            Service::Sts => {
                let mut x = xml::Writer::document();
                x.open_ns("ErrorResponse", "https://sts.amazonaws.com/doc/2011-06-15/");
                x.open("Error");
                x.leaf(
                    "Type",
                    if self.sender_fault {
                        "Sender"
                    } else {
                        "Receiver"
                    },
                );
                x.leaf("Code", &self.code);
                x.leaf("Message", &self.message);
                x.close("Error");
                x.leaf("RequestId", request_id);
                x.close("ErrorResponse");
                ("text/xml", x.finish())
            }
            Service::Ec2 => {
                let mut x = xml::Writer::document();
                x.open("Response");
                x.open("Errors");
                x.open("Error");
                x.leaf("Code", &self.code);
                x.leaf("Message", &self.message);
                x.close("Error");
                x.close("Errors");
                x.leaf("RequestID", request_id);
                x.close("Response");
                ("text/xml;charset=UTF-8", x.finish())
            }
            Service::Ssm | Service::CloudTrail => {
                let body = serde_json::json!({ "__type": self.code, "message": self.message });
                ("application/x-amz-json-1.1", body.to_string())
            }
        };
        respond(self.status, content_type, body, request_id)
    }
}

/// A response with the request id header AWS sends.
pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: String,
    request_id: &str,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// A validation failure worded as AWS's request validator words it:
/// `1 validation error detected: Value 'x' at 'member' failed to satisfy constraint: …`.
/// `code` is `ValidationError` for STS and `ValidationException` for the JSON services.
pub fn validation(
    code: &'static str,
    member: &str,
    value: Option<&str>,
    constraint: &str,
) -> AwsError {
    let value = match value {
        Some(v) => format!("'{v}'"),
        None => "null".to_owned(),
    };
    AwsError::bad_request(
        code,
        format!(
            "1 validation error detected: Value {value} at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

/// Whether `text` matches IAM's `[\w+=,.@-]*` name pattern (role session names, source identities).
pub fn is_iam_name(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// ISO 8601 with seconds, as STS writes `Expiration` and CloudTrail `eventTime`.
pub fn iso_seconds(at: time::OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.format(format).unwrap_or_default()
}

/// ISO 8601 with milliseconds, as EC2 writes `launchTime`.
pub fn iso_millis(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(format).unwrap_or_default()
}
