//! AWS clients for one identity: region, endpoints and credentials all come from the profile
//! (through [`Resolver`]), so every client Postern makes agrees with `postern whoami`.

use std::sync::Arc;

use aws_credential_types::provider::SharedCredentialsProvider;

use crate::credentials::{CredentialError, Resolved, Resolver, ResolverProvider, Selection};
use crate::session::SsmAccess;

/// Why clients could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No credentials.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// No region anywhere.
    #[error("no AWS region: pass --region, set AWS_REGION, or add `region = …` to the profile")]
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
            credentials: ResolverProvider::new(resolver.clone(), selection).shared(),
            resolved,
            resolver,
        })
    }

    /// The SDK's credentials cache: Postern's resolver may have to ask for an MFA code (a tunnel
    /// that outlives the MFA session), so the SDK must wait for a person, not five seconds.
    fn identity_cache() -> aws_smithy_runtime_api::client::identity::SharedIdentityCache {
        aws_sdk_ssm::config::IdentityCache::lazy()
            .load_timeout(std::time::Duration::from_secs(600))
            .build()
    }

    fn endpoint(&self, service: &str) -> Option<String> {
        self.resolver
            .endpoint(self.resolved.profile.as_deref(), service)
    }

    /// Session Manager: the SSM client and the signer of the data channel.
    pub fn ssm(&self) -> SsmAccess {
        use aws_sdk_ssm::config::{BehaviorVersion, Region};
        let mut builder = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .identity_cache(Self::identity_cache())
            .credentials_provider(self.credentials.clone());
        if let Some(url) = self.endpoint("ssm") {
            builder = builder.endpoint_url(url);
        }
        SsmAccess {
            client: aws_sdk_ssm::Client::from_conf(builder.build()),
            credentials: Some(self.credentials.clone()),
            region: self.region.clone(),
        }
    }

    /// EC2.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        self.ec2_in(&self.region)
    }

    /// EC2 in another region, with the same credentials.
    pub fn ec2_in(&self, region: &str) -> aws_sdk_ec2::Client {
        use aws_sdk_ec2::config::{BehaviorVersion, Region};
        let mut builder = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .identity_cache(Self::identity_cache())
            .credentials_provider(self.credentials.clone());
        if let Some(url) = self.endpoint("ec2") {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_ec2::Client::from_conf(builder.build())
    }
}

/// What went wrong with a call that got no service error, in words that never echo the request
/// or the response (either may hold credentials or a stream token).
pub(crate) fn transport_failure<E, R>(
    error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match error {
        SdkError::DispatchFailure(failure) => match failure.as_connector_error() {
            Some(connector) if connector.is_timeout() => "the connection timed out".into(),
            Some(connector) => match root_cause(connector) {
                Some(cause) => format!("cannot connect: {cause}"),
                None => "cannot connect".into(),
            },
            None => "cannot connect".into(),
        },
        SdkError::TimeoutError(_) => "the call timed out".into(),
        SdkError::ResponseError(_) => "the answer could not be read".into(),
        SdkError::ConstructionFailure(_) => "the request could not be built".into(),
        SdkError::ServiceError(_) => "the service refused the call".into(),
        _ => "the call failed".into(),
    }
}

/// The innermost cause of an error, in its own words (never a Debug dump): for a connection,
/// what the operating system or TLS said ("Connection refused (os error 111)").
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    (!text.is_empty()).then_some(text)
}
