//! The operations of each service, over the sandbox's [`World`](crate::world::World).

pub mod cloudtrail;
pub mod ec2;
pub mod ssm;
pub mod sts;

use std::collections::BTreeMap;

use crate::iam::Caller;
use crate::policy::{self, Decision, RequestContext};
use crate::wire::AwsError;
use crate::world::World;

/// One authenticated call, as the operations see it.
#[derive(Debug)]
pub struct Call<'a> {
    /// Who is calling.
    pub caller: &'a Caller,
    /// The region the request was signed for.
    pub region: &'a str,
    /// The request id the answer carries.
    pub request_id: &'a str,
    /// The client's address.
    pub source_ip: &'a str,
    /// The client's User-Agent.
    pub user_agent: &'a str,
}

impl Call<'_> {
    /// Evaluate the caller's identity policies for `action` on `resource`, with the caller's
    /// global keys, `aws:RequestedRegion`, and `extra` keys (lowercased names) such as resource tags.
    pub fn decide(
        &self,
        world: &World,
        action: &str,
        resource: &str,
        extra: impl IntoIterator<Item = (String, String)>,
    ) -> Decision {
        let mut keys: BTreeMap<String, String> = self.caller.context_keys(world.now());
        keys.insert("aws:requestedregion".into(), self.region.to_owned());
        keys.extend(extra);
        let context = RequestContext {
            action,
            resource,
            keys: &keys,
        };
        policy::evaluate(world.identity_policies(&self.caller.principal), &context)
    }

    /// `Ok` when allowed, otherwise the JSON services' `AccessDeniedException`, worded as AWS
    /// words it.
    pub fn authorize_json(
        &self,
        world: &World,
        action: &str,
        resource: &str,
        extra: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), AwsError> {
        let why = match self.decide(world, action, resource, extra) {
            Decision::Allowed => return Ok(()),
            Decision::ExplicitlyDenied => {
                "with an explicit deny in an identity-based policy".to_owned()
            }
            Decision::ImplicitlyDenied => {
                format!("because no identity-based policy allows the {action} action")
            }
        };
        Err(AwsError::bad_request(
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} {why}",
                self.caller.principal.arn()
            ),
        ))
    }

    /// `Ok` when allowed, otherwise EC2's `UnauthorizedOperation` (Describe actions have no
    /// resource-level permissions, so the message names none).
    pub fn authorize_ec2(&self, world: &World, action: &str) -> Result<(), AwsError> {
        let why = match self.decide(world, action, "*", []) {
            Decision::Allowed => return Ok(()),
            Decision::ExplicitlyDenied => {
                "with an explicit deny in an identity-based policy".to_owned()
            }
            Decision::ImplicitlyDenied => {
                format!("because no identity-based policy allows the {action} action")
            }
        };
        Err(AwsError::forbidden(
            "UnauthorizedOperation",
            format!(
                "You are not authorized to perform this operation. User: {} is not authorized to perform: {action} {why}",
                self.caller.principal.arn()
            ),
        ))
    }
}

/// Opaque page tokens: the offset of the next item, bound to the query that produced it, so a
/// token is refused with any other query (as AWS refuses it).
pub mod page {
    use data_encoding::BASE64URL_NOPAD;

    use crate::world::fnv;

    /// The token for resuming `query` at `offset`.
    pub fn token(query: &str, offset: usize) -> String {
        BASE64URL_NOPAD.encode(format!("{offset}:{:016x}", fnv(query.as_bytes())).as_bytes())
    }

    /// The offset a token resumes at, if it is a token for `query`.
    pub fn offset(token: &str, query: &str) -> Option<usize> {
        let raw = BASE64URL_NOPAD.decode(token.as_bytes()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (offset, fingerprint) = text.split_once(':')?;
        (fingerprint == format!("{:016x}", fnv(query.as_bytes()))).then_some(())?;
        offset.parse().ok()
    }
}
