//! Raw HTTP against the router: what no SDK would send, answered in AWS's shapes, never a panic.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use crate::support::default_sandbox;

/// Send one raw HTTP/1.1 request and return (status, body).
fn raw(address: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.write_all(request).expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn post(address: std::net::SocketAddr, headers: &str, body: &[u8]) -> (u16, String) {
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    raw(address, &request)
}

#[tokio::test]
async fn unsigned_requests_get_each_services_missing_token_error() {
    let sandbox = default_sandbox().await;
    let address = sandbox.address();
    let (status, body) = tokio::task::spawn_blocking(move || {
        post(
            address,
            "Content-Type: application/x-www-form-urlencoded\r\n",
            b"Action=GetCallerIdentity&Version=2011-06-15",
        )
    })
    .await
    .expect("join");
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>MissingAuthenticationToken</Code>"),
        "{body}"
    );
    assert!(
        body.contains("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"),
        "{body}"
    );

    let (status, body) = tokio::task::spawn_blocking(move || {
        post(
            address,
            "Content-Type: application/x-www-form-urlencoded\r\n",
            b"Action=DescribeInstances&Version=2016-11-15",
        )
    })
    .await
    .expect("join");
    assert_eq!(status, 401);
    assert!(
        body.contains("<Response><Errors><Error><Code>MissingAuthenticationToken</Code>"),
        "{body}"
    );

    let (status, body) = tokio::task::spawn_blocking(move || {
        post(
            address,
            "Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AmazonSSM.StartSession\r\n",
            b"{\"Target\":\"i-0123456789abcdef0\"}",
        )
    })
    .await
    .expect("join");
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json error body");
    assert_eq!(
        json["__type"],
        "com.amazon.coral.service#MissingAuthenticationTokenException"
    );
}

#[tokio::test]
async fn malformed_authorization_and_oversized_bodies_are_refused_cleanly() {
    let sandbox = default_sandbox().await;
    let address = sandbox.address();
    let (status, body) = tokio::task::spawn_blocking(move || {
        post(
            address,
            "Content-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIA/2026/us-east-1/sts/aws4_request\r\n",
            b"Action=GetCallerIdentity",
        )
    })
    .await
    .expect("join");
    assert_eq!(status, 400);
    assert!(body.contains("<Code>IncompleteSignature</Code>"), "{body}");

    let big = vec![b'a'; postern_sandbox::http::MAX_BODY + 10];
    let (status, body) = tokio::task::spawn_blocking(move || {
        post(
            address,
            "Content-Type: application/x-www-form-urlencoded\r\n",
            &big,
        )
    })
    .await
    .expect("join");
    assert_eq!(status, 413);
    assert!(body.contains("RequestEntityTooLarge"), "{body}");

    let (status, _) = tokio::task::spawn_blocking(move || raw(address, b"NOT HTTP AT ALL\r\n\r\n"))
        .await
        .expect("join");
    assert_eq!(status, 400);
}

#[tokio::test]
async fn admin_api_moves_the_clock() {
    let sandbox = default_sandbox().await;
    let before = sandbox.clock().now();
    let address = sandbox.address();
    let (status, body) = tokio::task::spawn_blocking(move || {
        let body = b"{\"seconds\": 3600}";
        let request = format!(
            "POST /_sandbox/clock/advance HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        raw(address, &[request.as_bytes(), body].concat())
    })
    .await
    .expect("join");
    assert_eq!(status, 200, "{body}");
    assert_eq!(sandbox.clock().now() - before, time::Duration::hours(1));
}
