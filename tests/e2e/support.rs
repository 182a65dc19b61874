//! Helpers shared by the end-to-end journeys: the workspace's binaries, a sandbox, and the demo
//! user's way in (an MFA code, then a role).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use postern_core::session::SsmAccess;
use postern_sandbox::{Sandbox, Scenario};

/// The path of a binary of this workspace, built by Cargo into the same profile directory as the
/// test executable (`target/debug/` for `cargo test`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/e2e-<hash> → target/debug
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A sandbox on the default world, following the system clock (data channels run in real time).
pub async fn sandbox() -> Sandbox {
    Sandbox::builder(Scenario::default_world())
        .start()
        .await
        .expect("the sandbox starts on 127.0.0.1")
}

/// Credentials for `role_arn`, assumed by the demo user with an MFA code, as session `name`.
pub async fn role_credentials(sandbox: &Sandbox, role_arn: &str, name: &str) -> Credentials {
    let demo = sandbox.demo().expect("the default world has a demo user");
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(sandbox.endpoint())
        .credentials_provider(Credentials::new(
            &demo.access_key_id,
            &demo.secret_access_key,
            None,
            None,
            "demo",
        ))
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    // Each call gets a code of its own step: the sandbox refuses a code twice.
    for _ in 0..3 {
        let code = sandbox.mfa_code(&demo.mfa_serial).expect("device");
        let out = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(name)
            .serial_number(&demo.mfa_serial)
            .token_code(code)
            .send()
            .await;
        match out {
            Ok(out) => {
                let c = out.credentials().expect("credentials");
                return Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_owned()),
                    None,
                    "role",
                );
            }
            Err(_) => sandbox.clock().advance(time::Duration::seconds(30)),
        }
    }
    panic!("could not assume {role_arn}");
}

/// An SSM client and signer for the sandbox with `credentials`.
pub fn ssm_access(sandbox: &Sandbox, credentials: Credentials) -> SsmAccess {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .endpoint_url(sandbox.endpoint())
        .credentials_provider(credentials.clone())
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
        .build();
    SsmAccess {
        client: aws_sdk_ssm::Client::from_conf(config),
        credentials: Some(SharedCredentialsProvider::new(credentials)),
        region: "us-east-1".into(),
    }
}

/// The developer role of the demo account.
pub const DEVELOPER: &str = "arn:aws:iam::210987654321:role/developer";

/// An online instance of the demo account in us-east-1 whose team is `team`.
pub fn instance(team: &str) -> String {
    use postern_sandbox::scenario::{InstanceState, SsmStatus};
    Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .find(|i| {
            i.account == "210987654321"
                && i.region == "us-east-1"
                && i.state == InstanceState::Running
                && i.ssm == SsmStatus::Online
                && i.tags.get("team").is_some_and(|t| t == team)
        })
        .map(|i| i.id)
        .expect("the default world has such an instance")
}
