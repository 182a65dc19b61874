//! AWS clients for one identity: region, endpoints and credentials all come from the profile
//! (through [`Resolver`]), so every client Postern makes agrees with `postern whoami`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::credentials::{
    Clock, CredentialError, Resolved, Resolver, ResolverProvider, Selection, SystemClock,
};
use crate::failure::THROTTLING_CODES;
use crate::session::SsmAccess;

/// Why clients could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No credentials.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// No region anywhere.
    #[error("no AWS region: choose one, set AWS_REGION, or add `region = …` to the profile")]
    NoRegion,
}

/// Credentials, region and endpoints for one identity.
#[derive(Clone, Debug)]
pub struct AwsAccess {
    /// The region.
    pub region: String,
    /// What was resolved up front (so failures show before anything starts).
    pub resolved: Resolved,
    credentials: SharedCredentialsProvider,
    resolver: Arc<Resolver>,
    selection: Selection,
    throttling_to_caller: bool,
}

/// A client of SDK crate `$sdk` in `$region`, set up as every client of an [`AwsAccess`] is:
/// AWS's clock learned from answers, credentials AWS refused dropped and the call retried once
/// with fresh ones, four attempts, throttling left to the caller when it asked, and the endpoint
/// override of `$service`. (A macro: each SDK crate has its own, unrelated builder type.)
macro_rules! sdk_client {
    ($access:expr, $sdk:ident, $region:expr, $service:literal) => {{
        use $sdk::config::{BehaviorVersion, Region};
        let access: &AwsAccess = $access;
        let refused = access.refused_credentials();
        let mut builder = $sdk::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new($region))
            .identity_cache(AwsAccess::identity_cache())
            .credentials_provider(access.credentials.clone())
            .interceptor(access.resolver.aws_clock().interceptor())
            .interceptor(SharedRefused(refused.clone()))
            .retry_classifier(SharedRefused(refused))
            .retry_config($sdk::config::retry::RetryConfig::standard().with_max_attempts(4));
        if access.throttling_to_caller {
            builder = builder.retry_classifier(ThrottlingLeftToCaller);
        }
        if let Some(url) = access.endpoint($service) {
            builder = builder.endpoint_url(url);
        }
        $sdk::Client::from_conf(builder.build())
    }};
}

impl AwsAccess {
    /// Resolve `selection` now (asking for an MFA code if one is needed) and set up clients in
    /// `region` (else the profile's or the environment's).
    pub async fn new(
        resolver: Arc<Resolver>,
        selection: Selection,
        region: Option<&str>,
    ) -> Result<Self, AccessError> {
        let resolved = resolver.credentials(&selection).await?;
        let region = region
            .map(str::to_owned)
            .or_else(|| resolved.region.clone())
            .ok_or(AccessError::NoRegion)?;
        Ok(Self {
            region,
            credentials: ResolverProvider::new(resolver.clone(), selection.clone()).shared(),
            resolved,
            resolver,
            selection,
            throttling_to_caller: false,
        })
    }

    /// Clients that do not retry throttled calls themselves: the caller waits them out (and can
    /// show that it does), as the inventory does.
    pub fn leaving_throttling_to_caller(mut self) -> Self {
        self.throttling_to_caller = true;
        self
    }

    /// The SDK keeps no credentials of its own: every request asks Postern's resolver (which
    /// remembers them in memory), so credentials AWS refused are replaced for the request's
    /// retry, and an MFA prompt (a tunnel that outlives its MFA session) may take as long as a
    /// person needs.
    fn identity_cache() -> aws_smithy_runtime_api::client::identity::SharedIdentityCache {
        aws_sdk_ssm::config::IdentityCache::no_cache()
    }

    /// What replaces credentials AWS refuses, for the clients of this access (an interceptor and
    /// a retry classifier sharing it).
    fn refused_credentials(&self) -> Arc<RefusedCredentials> {
        Arc::new(RefusedCredentials {
            resolver: self.resolver.clone(),
            selection: self.selection.clone(),
        })
    }

    /// The identity's name in inventories and journals: the profile, or `environment`.
    pub fn identity(&self) -> &str {
        self.resolved.profile.as_deref().unwrap_or("environment")
    }

    /// Postern's folder.
    pub fn paths(&self) -> &crate::paths::Paths {
        self.resolver.paths()
    }

    fn endpoint(&self, service: &str) -> Option<String> {
        self.resolver
            .endpoint(self.resolved.profile.as_deref(), service)
    }

    /// Session Manager: the SSM client and the signer of the data channel.
    pub fn ssm(&self) -> SsmAccess {
        SsmAccess {
            client: sdk_client!(self, aws_sdk_ssm, self.region.clone(), "ssm"),
            credentials: Some(self.credentials.clone()),
            region: self.region.clone(),
            clock: self.resolver.aws_clock(),
            journal: Some(crate::history::journal::Journal::new(
                self.resolver.paths(),
                self.identity(),
                self.resolved.credentials.arn.as_deref(),
            )),
        }
    }

    /// EC2.
    pub(crate) fn ec2(&self) -> aws_sdk_ec2::Client {
        self.ec2_in(&self.region)
    }

    /// EC2 in another region, with the same credentials.
    pub(crate) fn ec2_in(&self, region: &str) -> aws_sdk_ec2::Client {
        sdk_client!(self, aws_sdk_ec2, region.to_owned(), "ec2")
    }

    /// CloudTrail, in this access's region.
    pub(crate) fn cloudtrail(&self) -> aws_sdk_cloudtrail::Client {
        sdk_client!(self, aws_sdk_cloudtrail, self.region.clone(), "cloudtrail")
    }
}

/// AWS's time, as the Date headers of its answers tell it: Postern judges whether a session has
/// expired by it, so a machine whose clock is off does not keep sending credentials AWS calls
/// expired (nor throw away ones AWS still takes). It is the local clock plus the offset last
/// learned; clones share it.
#[derive(Clone)]
pub struct AwsClock {
    local: Arc<dyn Clock>,
    offset_ms: Arc<AtomicI64>,
}

impl std::fmt::Debug for AwsClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClock")
            .field("offset_ms", &self.offset_ms())
            .finish()
    }
}

/// How far AWS's clock must be from Postern's estimate of it before the estimate moves (a Date
/// header has whole seconds, and an answer takes time to arrive).
const CLOCK_TOLERANCE: Duration = Duration::from_secs(2);

impl AwsClock {
    /// AWS's time as `local` plus `offset_ms` (what an earlier run learned).
    pub fn new(local: Arc<dyn Clock>, offset_ms: i64) -> Self {
        Self {
            local,
            offset_ms: Arc::new(AtomicI64::new(offset_ms)),
        }
    }

    /// The system clock, with nothing learned yet.
    pub fn system() -> Self {
        Self::new(Arc::new(SystemClock), 0)
    }

    /// AWS's time now, as far as Postern knows.
    pub fn now(&self) -> SystemTime {
        shift(self.local.now(), self.offset_ms())
    }

    /// How far AWS's clock is ahead of the local one (negative: behind), in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// AWS answered at `server` (its Date header).
    pub fn learn(&self, server: SystemTime) {
        let local = self.local.now();
        let offset = match server.duration_since(local) {
            Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_millis()).unwrap_or(i64::MAX),
        };
        let tolerance = i64::try_from(CLOCK_TOLERANCE.as_millis()).unwrap_or(i64::MAX);
        if (offset - self.offset_ms()).abs() > tolerance {
            self.offset_ms.store(offset, Ordering::Relaxed);
        }
    }

    /// An SDK interceptor that feeds this clock the Date header of every answer.
    pub fn interceptor(&self) -> LearnAwsTime {
        LearnAwsTime(self.clone())
    }
}

/// `at` moved by `offset_ms`.
fn shift(at: SystemTime, offset_ms: i64) -> SystemTime {
    let by = Duration::from_millis(offset_ms.unsigned_abs());
    if offset_ms >= 0 {
        at.checked_add(by)
    } else {
        at.checked_sub(by)
    }
    .unwrap_or(at)
}

/// Feeds an [`AwsClock`] the Date header of every answer.
#[derive(Debug)]
pub struct LearnAwsTime(AwsClock);

impl Intercept for LearnAwsTime {
    fn name(&self) -> &'static str {
        "LearnAwsTime"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let server = context
            .response()
            .headers()
            .get("date")
            .and_then(|date| {
                aws_smithy_types::DateTime::from_str(
                    date,
                    aws_smithy_types::date_time::Format::HttpDate,
                )
                .ok()
            })
            .and_then(|date| SystemTime::try_from(date).ok());
        if let Some(server) = server {
            self.0.learn(server);
        }
        Ok(())
    }
}

/// Error codes with which AWS refuses the credentials themselves (expired, revoked, unknown), as
/// opposed to refusing what they may do.
const REFUSED_CREDENTIALS: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
];

/// A retry classifier that forbids the SDK's own retry of a throttled call (any classifier's
/// "forbidden" wins), so the caller sees the throttling and waits it out itself.
#[derive(Debug)]
struct ThrottlingLeftToCaller;

impl ClassifyRetry for ThrottlingLeftToCaller {
    fn name(&self) -> &'static str {
        "ThrottlingLeftToCaller"
    }

    fn classify_retry(&self, context: &InterceptorContext) -> RetryAction {
        if !matches!(context.output_or_error(), Some(Err(_))) {
            return RetryAction::NoActionIndicated;
        }
        let Some(response) = context.response() else {
            return RetryAction::NoActionIndicated;
        };
        let body = response.body().bytes().unwrap_or(&[]);
        match error_code(response.headers(), body) {
            Some(code) if THROTTLING_CODES.contains(&code.as_str()) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }
}

/// The error code of an AWS error answer: the `x-amzn-ErrorType` header or `__type` member of a
/// JSON answer (`…#ExpiredTokenException`, `ExpiredTokenException:http://…`), or the `<Code>` of
/// an XML one.
pub(crate) fn error_code(
    headers: &aws_smithy_runtime_api::http::Headers,
    body: &[u8],
) -> Option<String> {
    let bare = |code: &str| {
        let code = code.split(':').next().unwrap_or(code);
        code.rsplit('#').next().unwrap_or(code).trim().to_owned()
    };
    if let Some(kind) = headers.get("x-amzn-errortype") {
        return Some(bare(kind));
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        return ["__type", "code", "Code"]
            .iter()
            .find_map(|k| json.get(k).and_then(|v| v.as_str()))
            .map(bare);
    }
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].trim().to_owned())
}

/// Credentials AWS refused (expired by AWS's clock, revoked, unknown) are dropped and the request
/// tried again with new ones, once per request: the resolver replaces them from the next hop
/// down (asking for an MFA code only if the MFA session is gone too). EC2 says `RequestExpired`
/// both for an expired token and a skewed signature: it counts only when the credentials have
/// expired by AWS's clock.
///
/// As an interceptor it notes the key id each attempt was signed with, and when the answer
/// refuses those credentials it has the resolver drop them and marks the answer; as a retry
/// classifier it retries marked answers. Only the refused key is dropped, so two requests
/// refused at once do not throw away the replacement one of them got.
#[derive(Debug)]
struct RefusedCredentials {
    resolver: Arc<Resolver>,
    selection: Selection,
}

/// One [`RefusedCredentials`] as both the interceptor and the classifier of a client.
#[derive(Clone, Debug)]
struct SharedRefused(Arc<RefusedCredentials>);

impl Intercept for SharedRefused {
    fn name(&self) -> &'static str {
        "RefusedCredentials"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        components: &RuntimeComponents,
        config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.read_before_transmit(context, components, config)
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut<'_>,
        components: &RuntimeComponents,
        config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0
            .modify_before_attempt_completion(context, components, config)
    }
}

impl ClassifyRetry for SharedRefused {
    fn name(&self) -> &'static str {
        "RefusedCredentials"
    }

    fn classify_retry(&self, context: &InterceptorContext) -> RetryAction {
        self.0.classify_retry(context)
    }
}

/// The access key id an attempt was signed with.
#[derive(Clone, Debug)]
struct SignedWith(String);

impl aws_smithy_types::config_bag::Storable for SignedWith {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// Set once a request had its credentials replaced: it is not done twice for one request.
#[derive(Clone, Debug)]
struct CredentialsReplaced;

impl aws_smithy_types::config_bag::Storable for CredentialsReplaced {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// The header that marks an answer whose refused credentials were replaced (it never leaves
/// the process: it is added to the answer as received).
const REPLACED_MARK: &str = "x-postern-credentials-replaced";

/// The access key id in a SigV4 `Authorization` header (`… Credential=AKID/date/…, …`).
fn signing_key_id(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    credential.split('/').next().filter(|id| !id.is_empty())
}

impl Intercept for RefusedCredentials {
    fn name(&self) -> &'static str {
        "RefusedCredentials"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = context
            .request()
            .headers()
            .get("authorization")
            .and_then(signing_key_id)
            .map(str::to_owned);
        if let Some(key) = key {
            config.interceptor_state().store_put(SignedWith(key));
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if config.load::<CredentialsReplaced>().is_some()
            || !matches!(context.output_or_error(), Some(Err(_)))
        {
            return Ok(());
        }
        let Some(key) = config.load::<SignedWith>().map(|k| k.0.clone()) else {
            return Ok(());
        };
        let Some(response) = context.response_mut() else {
            return Ok(());
        };
        if !response.status().is_client_error() {
            return Ok(());
        }
        let body = response.body().bytes().unwrap_or_default();
        let Some(code) = error_code(response.headers(), body) else {
            return Ok(());
        };
        let replaced = if REFUSED_CREDENTIALS.contains(&code.as_str()) {
            self.resolver.refuse_key(&self.selection, &key, false)
        } else if code == "RequestExpired" {
            self.resolver.refuse_key(&self.selection, &key, true)
        } else {
            false
        };
        if replaced {
            tracing::info!(%code, "AWS refused the credentials; trying again with new ones");
            response.headers_mut().insert(REPLACED_MARK, "1");
            config.interceptor_state().store_put(CredentialsReplaced);
        }
        Ok(())
    }
}

impl ClassifyRetry for RefusedCredentials {
    fn name(&self) -> &'static str {
        "RefusedCredentials"
    }

    fn classify_retry(&self, context: &InterceptorContext) -> RetryAction {
        match context.response() {
            Some(response) if response.headers().contains_key(REPLACED_MARK) => {
                RetryAction::transient_error()
            }
            _ => RetryAction::NoActionIndicated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed(SystemTime);

    impl Clock for Fixed {
        fn now(&self) -> SystemTime {
            self.0
        }
    }

    #[test]
    fn aws_time_follows_what_aws_says_beyond_a_tolerance() {
        let local = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clock = AwsClock::new(Arc::new(Fixed(local)), 0);
        clock.learn(local + Duration::from_secs(1));
        assert_eq!(
            clock.now(),
            local,
            "a second is within what a Date header can say"
        );
        clock.learn(local + Duration::from_secs(7200));
        assert_eq!(clock.now(), local + Duration::from_secs(7200));
        let shared = clock.clone();
        clock.learn(local - Duration::from_secs(60));
        assert_eq!(
            shared.now(),
            local - Duration::from_secs(60),
            "clones share it"
        );
        assert_eq!(shared.offset_ms(), -60_000);
    }

    #[test]
    fn the_signing_key_is_read_from_the_authorization_header() {
        assert_eq!(
            signing_key_id(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE0000000001/20261204/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=abc"
            ),
            Some("ASIAEXAMPLE0000000001")
        );
        assert_eq!(signing_key_id("Bearer x"), None);
    }

    #[test]
    fn error_codes_are_read_from_json_and_xml_answers() {
        let mut headers = aws_smithy_runtime_api::http::Headers::new();
        assert_eq!(
            error_code(
                &headers,
                br#"{"__type":"com.amazon.coral.service#ExpiredTokenException","message":"x"}"#
            )
            .as_deref(),
            Some("ExpiredTokenException")
        );
        assert_eq!(
            error_code(
                &headers,
                b"<Response><Errors><Error><Code>RequestExpired</Code></Error></Errors></Response>"
            )
            .as_deref(),
            Some("RequestExpired")
        );
        headers.insert(
            "x-amzn-errortype",
            "UnrecognizedClientException:http://internal.amazon.com/coral/",
        );
        assert_eq!(
            error_code(&headers, b"").as_deref(),
            Some("UnrecognizedClientException")
        );
        assert_eq!(
            error_code(&aws_smithy_runtime_api::http::Headers::new(), b"junk"),
            None
        );
    }
}
