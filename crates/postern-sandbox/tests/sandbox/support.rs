//! Starting sandboxes and pointing SDK clients at them.

use std::time::SystemTime;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_async::time::TimeSource;
use postern_sandbox::{Clock, Sandbox, Scenario};
use time::OffsetDateTime;

/// The default world on a frozen clock (starting at the real time, so signing dates look real).
pub(crate) async fn default_sandbox() -> Sandbox {
    sandbox_for(Scenario::default_world()).await
}

/// A sandbox for a scenario written inline.
pub(crate) async fn sandbox_from(toml: &str) -> Sandbox {
    sandbox_for(Scenario::from_toml(toml).expect("the test scenario is valid")).await
}

async fn sandbox_for(scenario: Scenario) -> Sandbox {
    Sandbox::builder(scenario)
        .clock(Clock::frozen(OffsetDateTime::now_utc()))
        .start()
        .await
        .expect("the sandbox starts on 127.0.0.1")
}

/// Signing time for SDK clients: the sandbox's clock, so moving it never makes requests stale.
#[derive(Debug)]
pub(crate) struct SandboxTime(pub(crate) Clock);

impl TimeSource for SandboxTime {
    fn now(&self) -> SystemTime {
        SystemTime::from(self.0.now())
    }
}

/// The demo user's long-term keys.
pub(crate) fn demo_keys(sandbox: &Sandbox) -> Credentials {
    let demo = sandbox.demo().expect("the scenario has a demo user");
    Credentials::new(
        demo.access_key_id,
        demo.secret_access_key,
        None,
        None,
        "test",
    )
}

/// An STS client signing with `credentials` at the sandbox's time.
pub(crate) fn sts(sandbox: &Sandbox, credentials: Credentials) -> aws_sdk_sts::Client {
    sts_at(sandbox, credentials, SandboxTime(sandbox.clock().clone()))
}

/// An STS client with its own idea of the time.
pub(crate) fn sts_at(
    sandbox: &Sandbox,
    credentials: Credentials,
    time: impl TimeSource + 'static,
) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(sandbox.endpoint())
        .credentials_provider(credentials)
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .time_source(time)
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

/// Credentials from an STS answer.
pub(crate) fn from_sts(credentials: &aws_sdk_sts::types::Credentials) -> Credentials {
    Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        None,
        "sts",
    )
}

/// The error code and HTTP status of a failed SDK call.
pub(crate) fn code_and_status<E>(error: &SdkError<E, HttpResponse>) -> (String, u16)
where
    E: ProvideErrorMetadata,
{
    let status = error.raw_response().map_or(0, |r| r.status().as_u16());
    (error.code().unwrap_or("<none>").to_owned(), status)
}

/// The error message of a failed SDK call.
pub(crate) fn message<E: ProvideErrorMetadata>(error: &E) -> String {
    error.message().unwrap_or("").to_owned()
}

/// An EC2 client for `region`, signing with `credentials` at the sandbox's time.
pub(crate) fn ec2(
    sandbox: &Sandbox,
    credentials: Credentials,
    region: &str,
) -> aws_sdk_ec2::Client {
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
        .endpoint_url(sandbox.endpoint())
        .credentials_provider(credentials)
        .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
        .time_source(SandboxTime(sandbox.clock().clone()))
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

/// An SSM client for `region`, signing with `credentials` at the sandbox's time.
pub(crate) fn ssm(
    sandbox: &Sandbox,
    credentials: Credentials,
    region: &str,
) -> aws_sdk_ssm::Client {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new(region.to_owned()))
        .endpoint_url(sandbox.endpoint())
        .credentials_provider(credentials)
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
        .time_source(SandboxTime(sandbox.clock().clone()))
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

/// Credentials for `role_arn`, assumed as the demo user with a fresh MFA code (the clock moves
/// 30 s first, so every call gets an unused code), under the role session name `session_name`.
pub(crate) async fn assume(sandbox: &Sandbox, role_arn: &str, session_name: &str) -> Credentials {
    let demo = sandbox.demo().expect("demo");
    sandbox.clock().advance(time::Duration::seconds(30));
    let code = sandbox.mfa_code(&demo.mfa_serial).expect("device");
    let out = sts(sandbox, demo_keys(sandbox))
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .serial_number(&demo.mfa_serial)
        .token_code(code)
        .send()
        .await
        .unwrap_or_else(|e| panic!("assume {role_arn}: {e:?}"));
    from_sts(out.credentials().expect("credentials"))
}

/// The demo account's `developer` role, as session `demo`.
pub(crate) async fn developer(sandbox: &Sandbox) -> Credentials {
    assume(sandbox, "arn:aws:iam::210987654321:role/developer", "demo").await
}

/// A CloudTrail client for `region`, signing with `credentials` at the sandbox's time.
pub(crate) fn cloudtrail(
    sandbox: &Sandbox,
    credentials: Credentials,
    region: &str,
) -> aws_sdk_cloudtrail::Client {
    let config = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudtrail::config::Region::new(region.to_owned()))
        .endpoint_url(sandbox.endpoint())
        .credentials_provider(credentials)
        .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        .time_source(SandboxTime(sandbox.clock().clone()))
        .build();
    aws_sdk_cloudtrail::Client::from_conf(config)
}
