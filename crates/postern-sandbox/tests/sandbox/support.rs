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
