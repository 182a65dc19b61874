//! Checking AWS Signature Version 4 on incoming requests.
//!
//! The `Authorization` header is parsed here; the signature itself is recomputed with the
//! `aws-sigv4` crate (the SDK's own signer) over exactly the headers the client says it signed,
//! and compared with what the client sent. Nothing about the signing algorithm is re-implemented.

use std::borrow::Cow;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::HeaderMap;
use time::OffsetDateTime;
use time::macros::format_description;

/// What the `Authorization` header of a SigV4 request says.
#[derive(Clone, Debug)]
pub struct Authorization {
    /// The access key id from the credential scope.
    pub access_key_id: String,
    /// The date of the credential scope, `YYYYMMDD`.
    pub scope_date: String,
    /// The region of the credential scope: which region the request is for.
    pub region: String,
    /// The service of the credential scope: which service the request is for.
    pub service: String,
    /// The headers the client signed, lowercase, in the order given.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

/// Why a request's authentication is unusable before any key is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizationProblem {
    /// No `Authorization` header at all.
    Missing,
    /// The header is there but is not a well-formed SigV4 header; the text says what is wrong.
    Incomplete(String),
}

impl Authorization {
    /// Parse `AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sts/aws4_request,
    /// SignedHeaders=host;x-amz-date, Signature=hex` from the request headers.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, AuthorizationProblem> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(AuthorizationProblem::Missing);
        };
        let incomplete = |what: &str| AuthorizationProblem::Incomplete(what.to_owned());
        let text = value
            .to_str()
            .map_err(|_| incomplete("Authorization header is not ASCII"))?;
        let rest = text.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
            incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm")
        })?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let credential = credential
            .ok_or_else(|| incomplete("Authorization header requires 'Credential' parameter"))?;
        let signed = signed
            .ok_or_else(|| incomplete("Authorization header requires 'SignedHeaders' parameter"))?;
        let signature = signature
            .ok_or_else(|| incomplete("Authorization header requires 'Signature' parameter"))?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [key, date, region, service, terminator] = scope.as_slice() else {
            return Err(incomplete(
                "Credential should be scoped to a valid region, e.g. 'AKID/20260101/us-east-1/sts/aws4_request'",
            ));
        };
        if *terminator != "aws4_request" {
            return Err(incomplete(
                "Credential should be scoped with a valid terminator: 'aws4_request'",
            ));
        }
        if key.is_empty() || region.is_empty() || service.is_empty() {
            return Err(incomplete(
                "Credential has an empty access key, region or service",
            ));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(incomplete(
                "Credential should be scoped to a date, YYYYMMDD",
            ));
        }
        let signed_headers: Vec<String> = signed
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        if signed_headers.iter().any(String::is_empty)
            || !signed_headers.iter().any(|h| h == "host")
        {
            return Err(incomplete("SignedHeaders must include host"));
        }
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(incomplete("Signature must be 64 hex characters"));
        }
        Ok(Self {
            access_key_id: (*key).to_owned(),
            scope_date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    }
}

/// The time a request says it was signed at (`X-Amz-Date`).
pub fn request_time(headers: &HeaderMap) -> Option<OffsetDateTime> {
    let text = headers.get("x-amz-date")?.to_str().ok()?;
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(text, format)
        .ok()
        .map(|t| t.assume_utc())
}

/// The secret half of the credentials a request claims to be signed with.
pub struct SigningSecret<'a> {
    /// The access key id.
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// The session token of temporary credentials.
    pub session_token: Option<&'a str>,
}

/// A request as it arrived, for re-signing.
pub struct ReceivedRequest<'a> {
    /// The method.
    pub method: &'a str,
    /// The path and query as sent (`/`, `/?Action=…`).
    pub path_and_query: &'a str,
    /// Every header that arrived.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

/// Recompute the signature of `request` with `secret` and compare it with the client's.
///
/// Returns false when the signature differs or the request cannot be re-signed at all.
pub fn signature_matches(
    auth: &Authorization,
    request: &ReceivedRequest<'_>,
    signed_at: OffsetDateTime,
    secret: &SigningSecret<'_>,
) -> bool {
    let signs = |name: &str| auth.signed_headers.iter().any(|h| h == name);
    // The signer adds x-amz-date, the session token and x-amz-content-sha256 itself; pass every
    // other signed header exactly as received.
    let added_by_signer = ["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"];
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for name in &auth.signed_headers {
        if added_by_signer.contains(&name.as_str()) {
            continue;
        }
        let values: Vec<&str> = request
            .headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return false;
        }
        for value in values {
            headers.push((name.as_str(), value));
        }
    }
    let Some(host) = request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let uri = format!("http://{host}{}", request.path_and_query);

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::Headers;
    settings.excluded_headers = Some(Vec::<Cow<'static, str>>::new());
    settings.session_token_mode = if signs("x-amz-security-token") {
        SessionTokenMode::Include
    } else {
        SessionTokenMode::Exclude
    };
    settings.payload_checksum_kind = if signs("x-amz-content-sha256") {
        PayloadChecksumKind::XAmzSha256
    } else {
        PayloadChecksumKind::NoHeader
    };
    let identity = Credentials::new(
        secret.access_key_id,
        secret.secret_access_key,
        secret.session_token.map(str::to_owned),
        None,
        "postern-sandbox",
    )
    .into();
    let Ok(params) = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(SystemTime::from(signed_at))
        .settings(settings)
        .build()
    else {
        return false;
    };
    let params = params.into();
    let Ok(signable) = SignableRequest::new(
        request.method,
        uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body),
    ) else {
        return false;
    };
    match sign(signable, &params) {
        Ok(output) => output.signature() == auth.signature,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(auth).expect("ascii"),
        );
        map
    }

    #[test]
    fn parses_a_well_formed_header() {
        let auth = Authorization::from_headers(&headers(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        ))
        .expect("valid");
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        assert_eq!(
            (auth.region.as_str(), auth.service.as_str()),
            ("us-east-1", "iam")
        );
        assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
    }

    #[test]
    fn says_what_is_wrong_with_a_bad_header() {
        assert_eq!(
            Authorization::from_headers(&HeaderMap::new()).err(),
            Some(AuthorizationProblem::Missing)
        );
        for bad in [
            "Basic dXNlcjpwYXNz",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/iam/aws4_request, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/2015/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/iam/aws4_request, SignedHeaders=host, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/iam/aws4_request, SignedHeaders=x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        ] {
            assert!(
                matches!(
                    Authorization::from_headers(&headers(bad)),
                    Err(AuthorizationProblem::Incomplete(_))
                ),
                "{bad}"
            );
        }
    }

    /// The SigV4 test suite's `post-x-www-form-urlencoded-parameters` case (as shipped in the
    /// aws-sigv4 crate's `aws-signing-test-suite/v4/`): the published signature.
    #[test]
    fn recomputes_the_aws_test_suite_signature() {
        let mut map = headers(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, \
             Signature=328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
        );
        map.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        map.insert("content-length", HeaderValue::from_static("13"));
        map.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        map.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        map.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static(
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            ),
        );
        let auth = Authorization::from_headers(&map).expect("valid");
        let at = request_time(&map).expect("date");
        let request = ReceivedRequest {
            method: "POST",
            path_and_query: "/",
            headers: &map,
            body: b"Param1=value1",
        };
        let secret = SigningSecret {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
        };
        assert!(signature_matches(&auth, &request, at, &secret));
        let wrong = SigningSecret {
            secret_access_key: "not-the-secret",
            ..secret
        };
        assert!(!signature_matches(&auth, &request, at, &wrong));
        let tampered = ReceivedRequest {
            body: b"Param1=value2",
            ..request
        };
        assert!(!signature_matches(&auth, &tampered, at, &secret));
    }
}
