//! The admin API's MFA code call, and what moving the clock (forward and back) does to codes and
//! credentials, as the README tells it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

use time::Duration;

use crate::support::*;

/// `GET path` over raw HTTP/1.1: (status, content type, body).
async fn get(address: SocketAddr, path: &str) -> (u16, String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).expect("connect");
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read");
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("a response");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let content_type = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default();
        (status, content_type, body.to_owned())
    })
    .await
    .expect("join")
}

/// The demo device's code as the admin API shows it.
async fn shown_code(sandbox: &postern_sandbox::Sandbox) -> String {
    let (status, content_type, body) = get(sandbox.address(), "/_sandbox/mfa/demo/code").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; charset=utf-8");
    let code = body.strip_suffix('\n').expect("one line").to_owned();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{body:?}"
    );
    code
}

#[tokio::test]
async fn the_code_call_shows_what_the_device_shows_at_the_sandbox_s_time() {
    let sandbox = default_sandbox().await;
    let demo = sandbox.demo().expect("demo");
    let client = sts(&sandbox, demo_keys(&sandbox));
    let now = shown_code(&sandbox).await;
    assert_eq!(Some(now.clone()), sandbox.mfa_code(&demo.mfa_serial));

    // An hour on, the system clock's code is not the sandbox's; the call follows the sandbox.
    sandbox.clock().advance(Duration::hours(1));
    let later = shown_code(&sandbox).await;
    assert_eq!(Some(later.clone()), sandbox.mfa_code(&demo.mfa_serial));
    client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(&later)
        .send()
        .await
        .expect("the code shown is accepted");
    // It is a display: it shows the code until the step ends, used or not; once is all it takes.
    assert_eq!(shown_code(&sandbox).await, later);
    let again = client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(&later)
        .send()
        .await
        .expect_err("each code is accepted once");
    assert_eq!(code_and_status(&again), ("AccessDenied".into(), 403));

    // Any device, by serial, as is or percent-encoded.
    for path in [
        format!("/_sandbox/mfa/{}/code", demo.mfa_serial),
        format!(
            "/_sandbox/mfa/{}/code",
            demo.mfa_serial.replace(':', "%3A").replace('/', "%2F")
        ),
    ] {
        let (status, _, body) = get(sandbox.address(), &path).await;
        assert_eq!((status, body), (200, format!("{later}\n")), "{path}");
    }
    let (status, content_type, body) = get(
        sandbox.address(),
        "/_sandbox/mfa/arn:aws:iam::210987654321:mfa/nobody/code",
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(
        body.contains("no MFA device arn:aws:iam::210987654321:mfa/nobody"),
        "{body}"
    );
}

#[tokio::test]
async fn without_a_demo_user_the_demo_code_is_not_found() {
    let sandbox = sandbox_from(
        r#"
[[accounts]]
id = "111111111111"
[[accounts.users]]
name = "solo"
mfa_device = "solo"
"#,
    )
    .await;
    let (status, _, body) = get(sandbox.address(), "/_sandbox/mfa/demo/code").await;
    assert_eq!(status, 404);
    assert!(body.contains("no [demo] user"), "{body}");
    let (status, _, body) = get(
        sandbox.address(),
        "/_sandbox/mfa/arn:aws:iam::111111111111:mfa/solo/code",
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn moving_the_clock_back_undoes_no_code_and_revives_expired_credentials() {
    let sandbox = default_sandbox().await;
    let demo = sandbox.demo().expect("demo");
    let client = sts(&sandbox, demo_keys(&sandbox));
    let code = shown_code(&sandbox).await;
    let session = client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(&code)
        .duration_seconds(900)
        .send()
        .await
        .expect("a fresh code");
    let session = from_sts(session.credentials().expect("credentials"));

    // Back ten minutes: the codes of those steps were never used, but a code counts as used
    // when a later one was (RFC 6238 §5.2), so none is accepted until the clock is back where
    // it was.
    sandbox.clock().advance(Duration::minutes(-10));
    let earlier = shown_code(&sandbox).await;
    let refused = client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(&earlier)
        .send()
        .await
        .expect_err("an earlier step than the last one used");
    assert_eq!(code_and_status(&refused), ("AccessDenied".into(), 403));
    sandbox
        .clock()
        .advance(Duration::minutes(10) + Duration::seconds(60));
    client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(shown_code(&sandbox).await)
        .send()
        .await
        .expect("accepted again once past the last step used");

    // Credentials expire by the sandbox's clock, and come back when it goes back.
    let mfa_client = sts(&sandbox, session);
    sandbox.clock().advance(Duration::minutes(15));
    let expired = mfa_client
        .get_caller_identity()
        .send()
        .await
        .expect_err("past its 15 minutes");
    assert_eq!(code_and_status(&expired).0, "ExpiredToken");
    sandbox.clock().advance(Duration::minutes(-15));
    mfa_client
        .get_caller_identity()
        .send()
        .await
        .expect("valid again before its expiry");
}
