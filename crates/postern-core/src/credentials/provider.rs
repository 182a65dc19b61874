//! The resolver as an AWS SDK credentials provider.

use std::sync::Arc;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

use super::{Resolver, Selection};

/// An AWS SDK credentials provider over the resolver: every client Postern makes (SSM, EC2,
/// CloudTrail) gets its credentials here and is refreshed through it.
#[derive(Clone, Debug)]
pub struct ResolverProvider {
    resolver: Arc<Resolver>,
    selection: Selection,
}

impl ResolverProvider {
    /// Credentials of `selection` from `resolver`.
    pub fn new(resolver: Arc<Resolver>, selection: Selection) -> Self {
        Self {
            resolver,
            selection,
        }
    }

    /// As the SDK's shared provider.
    pub fn shared(self) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(self)
    }
}

impl ProvideCredentials for ResolverProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.resolver
                .credentials(&self.selection)
                .await
                .map(|r| r.credentials.to_sdk())
                .map_err(aws_credential_types::provider::error::CredentialsError::provider_error)
        })
    }
}
