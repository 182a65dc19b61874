//! Opening the data channel's websocket: the SigV4-signed upgrade (service `ssmmessages`, as
//! plugins from 1.2.688.0 sign it) and the OpenDataChannel text frame (spec §2).

use std::time::Duration;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use futures_util::SinkExt;
use postern_ssm::payload::OpenDataChannel;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::SsmAccess;

/// The websocket of one data channel.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the opening handshake may take (the plugin allows 45 s; a resume wants less).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the websocket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The URL is not a websocket URL.
    #[error("the stream URL is not a valid websocket URL: {0}")]
    Url(String),
    /// The connection or the upgrade failed.
    #[error("cannot open the data channel: {0}")]
    Connect(String),
    /// It took too long.
    #[error("opening the data channel timed out")]
    Timeout,
    /// The service answered the upgrade with a client error (4xx): a refusal, not a network
    /// drop, so dialling again will not help.
    #[error("Session Manager refused the data channel (HTTP {status}): {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// What the service said (its answer's body, shortened).
        reason: String,
    },
}

/// The reason a refused upgrade gives: the `message` of a JSON body, or the body's text, on one
/// line and at most 300 characters.
fn refusal_reason(body: Option<&[u8]>) -> String {
    let text = body
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|json| {
            ["message", "Message"]
                .iter()
                .find_map(|k| json.get(k).and_then(|m| m.as_str()).map(str::to_owned))
        })
        .unwrap_or(text);
    let line: String = message
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    if line.is_empty() {
        "no reason given".into()
    } else {
        line
    }
}

fn connect_error(error: tokio_tungstenite::tungstenite::Error) -> DialError {
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::Http(response) if response.status().is_client_error() => DialError::Refused {
            status: response.status().as_u16(),
            reason: refusal_reason(response.body().as_deref()),
        },
        other => DialError::Connect(other.to_string()),
    }
}

/// Headers that sign a GET of `url` (SigV4, service `ssmmessages`, empty payload), or none when
/// there are no credentials or the URL is already presigned. A signing failure is not fatal
/// (plugins dial unsigned then too); it is logged without any secret.
async fn signature_headers(access: &SsmAccess, url: &str) -> Vec<(String, String)> {
    let presigned = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    ]
    .iter()
    .any(|p| url.contains(p));
    let Some(provider) = access.credentials.as_ref().filter(|_| !presigned) else {
        return Vec::new();
    };
    let credentials = match provider.provide_credentials().await {
        Ok(credentials) => credentials,
        Err(error) => {
            tracing::warn!(%error, "no credentials to sign the websocket upgrade; dialling unsigned");
            return Vec::new();
        }
    };
    let identity = credentials.into();
    let Ok(params) = v4::SigningParams::builder()
        .identity(&identity)
        .region(&access.region)
        .name("ssmmessages")
        .time(access.clock.now())
        .settings(SigningSettings::default())
        .build()
    else {
        return Vec::new();
    };
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
        .unwrap_or("")
        .to_owned();
    let headers = [("host", host.as_str())];
    let Ok(signable) =
        SignableRequest::new("GET", url, headers.into_iter(), SignableBody::Bytes(&[]))
    else {
        tracing::warn!("the stream URL could not be signed; dialling unsigned");
        return Vec::new();
    };
    match sign(signable, &params.into()) {
        Ok(output) => {
            let (instructions, _) = output.into_parts();
            instructions
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        }
        Err(_) => Vec::new(),
    }
}

/// Dial `url`, then send OpenDataChannel with `token`.
pub async fn dial(
    access: &SsmAccess,
    url: &str,
    token: &str,
    client_id: &str,
    client_version: &str,
) -> Result<Socket, DialError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| DialError::Url(e.to_string()))?;
    for (name, value) in signature_headers(access, url).await {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::try_from(value),
        ) {
            request.headers_mut().insert(name, value);
        }
    }
    // Nagle off: a keystroke's frame and its acknowledgement go out at once, not after the
    // previous segment's delayed ACK (about 40 ms each way).
    let connect = tokio_tungstenite::connect_async_with_config(request, None, true);
    let (mut socket, _) = tokio::time::timeout(DIAL_TIMEOUT, connect)
        .await
        .map_err(|_| DialError::Timeout)?
        .map_err(connect_error)?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let open = serde_json::to_string(&OpenDataChannel {
        message_schema_version: "1.0",
        request_id: &request_id,
        token_value: token,
        client_id,
        client_version,
    })
    .map_err(|e| DialError::Connect(e.to_string()))?;
    socket
        .send(Message::Text(open.into()))
        .await
        .map_err(|e| DialError::Connect(e.to_string()))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::refusal_reason;

    #[test]
    fn refusals_say_what_the_service_said_on_one_short_line() {
        assert_eq!(
            refusal_reason(Some(br#"{"message":"The security token is invalid."}"#)),
            "The security token is invalid."
        );
        assert_eq!(
            refusal_reason(Some(b"signature does not match\n  (canonical request)")),
            "signature does not match (canonical request)"
        );
        assert_eq!(refusal_reason(None), "no reason given");
        assert_eq!(refusal_reason(Some(&[b'x'; 1000])).len(), 300);
    }
}
