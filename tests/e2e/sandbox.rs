//! `postern-sandbox serve` as a newcomer uses it: evaluate its export lines, log in with a code
//! from the printed seed (computed by `oathtool`, an independent TOTP implementation).

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
    let mut child = Command::new(workspace_binary("postern-sandbox"))
        .arg("serve")
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
