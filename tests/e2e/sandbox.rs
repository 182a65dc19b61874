//! `postern-sandbox serve` as a newcomer uses it: evaluate its export lines, log in with a code
//! from the printed seed (computed by `oathtool`, an independent TOTP implementation); start it
//! in the background; stop it with a signal, which ends its sessions and removes their folders.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sts::error::ProvideErrorMetadata as _;
use postern_e2e::workspace_binary;

/// A running `postern-sandbox serve`, killed on drop.
struct Served {
    child: Child,
    exports: BTreeMap<String, String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Served {
    serve_with(&[])
}

/// `serve` with `env` added to its environment.
fn serve_with(env: &[(&str, &str)]) -> Served {
    let mut child = Command::new(workspace_binary("postern-sandbox"))
        .arg("serve")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start postern-sandbox serve (built by `cargo build --workspace --bins`)");
    let stdout = child.stdout.take().expect("stdout");
    let mut exports = BTreeMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if line == "ready" {
            return Served { child, exports };
        }
        let assignment = line
            .strip_prefix("export ")
            .unwrap_or_else(|| panic!("not an export line: {line}"));
        let (name, quoted) = assignment.split_once('=').expect("NAME=value");
        let value = quoted
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .expect("single-quoted");
        exports.insert(name.to_owned(), value.to_owned());
    }
    let _ = child.kill();
    let status = child.wait();
    panic!("postern-sandbox serve ended before printing `ready`: {status:?}");
}

fn oathtool(seed: &str) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", seed])
        .output()
        .expect("oathtool (Debian package oathtool; .ci/deps installs it)");
    assert!(out.status.success(), "oathtool failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn serve_prints_a_usable_demo_identity() {
    let served = serve();
    let env = &served.exports;
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "POSTERN_SANDBOX_MFA_SERIAL",
        "POSTERN_SANDBOX_MFA_SECRET",
        "POSTERN_SANDBOX_ROLE_ARN",
    ] {
        assert!(
            env.get(name).is_some_and(|v| !v.is_empty()),
            "{name} missing from {:?}",
            env.keys()
        );
    }
    assert!(env["AWS_ENDPOINT_URL"].starts_with("http://127.0.0.1:"));
    assert!(env["AWS_ACCESS_KEY_ID"].starts_with("AKIA"));

    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(env["AWS_REGION"].clone()))
        .endpoint_url(&env["AWS_ENDPOINT_URL"])
        .credentials_provider(Credentials::new(
            &env["AWS_ACCESS_KEY_ID"],
            &env["AWS_SECRET_ACCESS_KEY"],
            None,
            None,
            "serve",
        ))
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    let code = oathtool(&env["POSTERN_SANDBOX_MFA_SECRET"]);
    let session = sts
        .get_session_token()
        .serial_number(&env["POSTERN_SANDBOX_MFA_SERIAL"])
        .token_code(&code)
        .send()
        .await
        .expect("a code from the printed seed is accepted");
    assert!(session.credentials().is_some());
    let again = sts
        .get_session_token()
        .serial_number(&env["POSTERN_SANDBOX_MFA_SERIAL"])
        .token_code(&code)
        .send()
        .await
        .expect_err("the same code is refused");
    assert_eq!(again.code(), Some("AccessDenied"));
}

#[test]
fn each_start_generates_new_keys() {
    let first = serve().exports.clone();
    let second = serve().exports.clone();
    assert_ne!(first["AWS_ACCESS_KEY_ID"], second["AWS_ACCESS_KEY_ID"]);
    assert_ne!(
        first["POSTERN_SANDBOX_MFA_SECRET"],
        second["POSTERN_SANDBOX_MFA_SECRET"]
    );
}

/// Parse `export NAME='value'` lines.
fn parse_exports(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| {
            let assignment = line
                .strip_prefix("export ")
                .unwrap_or_else(|| panic!("not an export line: {line}"));
            let (name, quoted) = assignment.split_once('=').expect("NAME=value");
            let value = quoted
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .expect("single-quoted");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// One unsigned `GET` of the sandbox's admin API: (status, body).
fn admin_get(endpoint: &str, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let address = endpoint.strip_prefix("http://").expect("an http endpoint");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

#[test]
fn serve_in_the_background_returns_once_ready_and_stops_on_kill() {
    // Both streams captured, as `$(… 2>&1)` would: it still returns, since the sandbox keeps
    // neither.
    let started = std::time::Instant::now();
    let out = Command::new(workspace_binary("postern-sandbox"))
        .args(["serve", "--background"])
        .stdin(Stdio::null())
        .output()
        .expect("run postern-sandbox serve --background");
    assert!(out.status.success(), "{out:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let exports = parse_exports(&String::from_utf8_lossy(&out.stdout));
    let pid: u32 = exports["POSTERN_SANDBOX_PID"].parse().expect("a pid");
    assert!(exports["AWS_ENDPOINT_URL"].starts_with("http://127.0.0.1:"));
    assert!(exports.contains_key("POSTERN_SANDBOX_MFA_SECRET"));
    let (status, body) = admin_get(&exports["AWS_ENDPOINT_URL"], "/_sandbox/clock");
    assert_eq!(
        status, 200,
        "still serving once the command returned: {body}"
    );
    assert!(!exited(pid));
    // A process group of its own: Ctrl-C at the prompt goes to the shell's foreground group,
    // not to the sandbox.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("its /proc entry");
    let group = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        .expect("a process group in /proc/PID/stat");
    assert_eq!(group, pid.to_string(), "it leads its own process group");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !exited(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn serve_in_the_background_that_cannot_start_says_why_and_prints_no_exports() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("address").port().to_string();
    let out = Command::new(workspace_binary("postern-sandbox"))
        .args(["serve", "--background", "--port", &port])
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("run postern-sandbox serve --background");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "nothing for eval: {out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("listening on 127.0.0.1:{port}")),
        "{said}"
    );
    assert!(said.contains("Address already in use"), "{said}");
    assert!(said.contains("the sandbox did not start"), "{said}");
}

/// A shell session on the demo user's developer role, attached by hand; its id.
async fn open_a_shell(exports: &BTreeMap<String, String>) -> (String, impl Sized) {
    let endpoint = &exports["AWS_ENDPOINT_URL"];
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new(
                &exports["AWS_ACCESS_KEY_ID"],
                &exports["AWS_SECRET_ACCESS_KEY"],
                None,
                None,
                "serve",
            ))
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
            .build(),
    );
    let (status, code) = admin_get(endpoint, "/_sandbox/mfa/demo/code");
    assert_eq!(status, 200, "{code}");
    let role = sts
        .assume_role()
        .role_arn(&exports["POSTERN_SANDBOX_ROLE_ARN"])
        .role_session_name("demo")
        .serial_number(&exports["POSTERN_SANDBOX_MFA_SERIAL"])
        .token_code(code.trim())
        .send()
        .await
        .expect("AssumeRole with the code the sandbox shows");
    let c = role.credentials().expect("credentials");
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_owned()),
                None,
                "role",
            ))
            .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
            .build(),
    );
    let started = ssm
        .start_session()
        .target(postern_e2e::instance("payments"))
        .send()
        .await
        .expect("StartSession");
    let socket = crate::session_homes::attach_raw(
        started.stream_url().expect("url"),
        started.token_value().expect("token"),
    )
    .await;
    (started.session_id().expect("id").to_owned(), socket)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_stops_serve_and_removes_its_sessions_folders() {
    use nix::sys::signal::Signal;
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let tmp = postern_e2e::TempDir::new("serve-signal");
        let tmp_path = tmp.0.display().to_string();
        let mut served = serve_with(&[("TMPDIR", &tmp_path)]);
        let (id, _socket) = open_a_shell(&served.exports).await;
        let folder = tmp.join(&format!("postern-sandbox-{id}"));
        assert!(folder.is_dir(), "the shell's folder is under TMPDIR");
        assert!(!crate::session_homes::processes_in(&folder).is_empty());
        let pid = i32::try_from(served.child.id()).expect("a pid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(status) = served.child.try_wait().expect("status") {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve still running after {signal}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert!(status.success(), "{signal}: {status:?}");
        assert!(
            !folder.exists(),
            "{signal}: the folder is gone when serve has exited"
        );
        crate::session_homes::gone(&folder, std::time::Duration::from_secs(5)).await;
    }
}

/// How the desktop app runs its sandbox: one JSON start line, no admin API, and the sandbox
/// ends when the app's end of its standard input closes (the app quit, or crashed).
#[tokio::test]
async fn serve_for_a_program_prints_json_has_no_admin_api_and_ends_with_its_stdin() {
    let (child, line) = postern_e2e::serve_for_a_program();
    let start: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let endpoint = start["endpoint"].as_str().expect("endpoint").to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let demo = &start["demo"];
    for key in [
        "access_key_id",
        "secret_access_key",
        "region",
        "mfa_serial",
        "mfa_secret",
        "role_arn",
    ] {
        assert!(
            demo[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} in {demo}"
        );
    }
    // The admin API (faults, the clock, the current MFA code) is not there.
    let (status, _) = admin_get(&endpoint, "/_sandbox/mfa/demo/code");
    assert_eq!(status, 404);
    // AWS is: the demo keys and a code from the seed work.
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(
            demo["region"].as_str().unwrap_or_default().to_owned(),
        ))
        .endpoint_url(&endpoint)
        .credentials_provider(Credentials::new(
            demo["access_key_id"].as_str().unwrap_or_default(),
            demo["secret_access_key"].as_str().unwrap_or_default(),
            None,
            None,
            "serve",
        ))
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    let session = aws_sdk_sts::Client::from_conf(config)
        .get_session_token()
        .serial_number(demo["mfa_serial"].as_str().unwrap_or_default())
        .token_code(oathtool(demo["mfa_secret"].as_str().unwrap_or_default()))
        .send()
        .await
        .expect("a code from the seed is accepted");
    assert!(session.credentials().is_some());
    // The app lets go of its stdin: the sandbox stops, cleanly.
    let status = postern_e2e::let_go_of(child);
    assert!(status.success(), "{status:?}");
}
