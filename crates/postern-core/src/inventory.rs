//! The instances a user may reach. Today: listing running instances with their Name tags,
//! resolving a Name to an instance id (for `ssh-proxy` and `ssh-config`), and finding which
//! region an instance is in when Session Manager refused it.

use aws_sdk_ec2::types::Filter;

use crate::aws::AwsAccess;
use crate::session::SessionError;

/// An instance, as far as naming it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceName {
    /// `i-…`.
    pub id: String,
    /// The `Name` tag, if any.
    pub name: Option<String>,
}

/// Every running instance of the account in the client's region, with its Name tag.
pub async fn running(ec2: &aws_sdk_ec2::Client) -> Result<Vec<InstanceName>, SessionError> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| SessionError::from_sdk("DescribeInstances", "", &e))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = instance.instance_id() else {
                continue;
            };
            let name = instance
                .tags()
                .iter()
                .find(|t| t.key() == Some("Name"))
                .and_then(|t| t.value());
            out.push(InstanceName {
                id: id.to_owned(),
                name: name.map(str::to_owned),
            });
        }
    }
    Ok(out)
}

/// Whether `text` is an instance id (`i-` or hybrid `mi-`).
pub fn is_instance_id(text: &str) -> bool {
    let hex = text.strip_prefix("i-").or_else(|| text.strip_prefix("mi-"));
    hex.is_some_and(|h| (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Refuse a target that is not an instance id before any call is made.
pub fn check_instance_id(target: &str) -> Result<(), SessionError> {
    if is_instance_id(target) {
        Ok(())
    } else {
        Err(SessionError::MalformedTarget {
            target: target.to_owned(),
        })
    }
}

/// Where an instance was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Whereabouts {
    /// In the region asked about.
    Here,
    /// Not there, but in these other regions.
    Elsewhere(Vec<String>),
    /// In none of the regions looked at (besides the one asked about): `None` when that was
    /// every region of the account.
    Nowhere(Option<Vec<String>>),
}

/// Whether instance `id` exists in `region`.
async fn exists_in(access: &AwsAccess, region: &str, id: &str) -> Result<bool, SessionError> {
    let found = access
        .ec2_in(region)
        .describe_instances()
        .filters(Filter::builder().name("instance-id").values(id).build())
        .send()
        .await
        .map_err(|e| SessionError::from_sdk("DescribeInstances", id, &e))?;
    Ok(found
        .reservations()
        .iter()
        .any(|r| r.instances().iter().any(|i| i.instance_id() == Some(id))))
}

/// Look instance `id` up: in the access's region first, then in the other regions of
/// `regions` (the user's profiles' regions) or, when there are none, in every region
/// DescribeRegions returns, side by side.
pub async fn locate(
    access: &AwsAccess,
    id: &str,
    regions: &[String],
) -> Result<Whereabouts, SessionError> {
    if exists_in(access, &access.region, id).await? {
        return Ok(Whereabouts::Here);
    }
    let named: Vec<String> = regions
        .iter()
        .filter(|r| **r != access.region)
        .cloned()
        .collect();
    let every_region = named.is_empty();
    let others: Vec<String> = if every_region {
        access
            .ec2()
            .describe_regions()
            .send()
            .await
            .map_err(|e| SessionError::from_sdk("DescribeRegions", id, &e))?
            .regions()
            .iter()
            .filter_map(|r| r.region_name().map(str::to_owned))
            .filter(|r| *r != access.region)
            .collect()
    } else {
        named
    };
    let lookups = others.iter().map(|region| exists_in(access, region, id));
    let found: Vec<String> = futures_util::future::join_all(lookups)
        .await
        .into_iter()
        .zip(&others)
        // A region that cannot be asked (disabled, denied) is one where it was not found.
        .filter_map(|(found, region)| matches!(found, Ok(true)).then(|| region.clone()))
        .collect();
    Ok(if !found.is_empty() {
        Whereabouts::Elsewhere(found)
    } else if every_region {
        Whereabouts::Nowhere(None)
    } else {
        Whereabouts::Nowhere(Some(others))
    })
}

/// How long looking an instance up across regions may take.
const LOOKUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// When Session Manager refused a target (access denied, or not connected), say why if the
/// instance is not in the region at all; otherwise keep AWS's answer. The lookup's own failures
/// (no permission to describe instances, say) keep AWS's answer too.
pub async fn explain_refusal(
    access: &AwsAccess,
    target: &str,
    refusal: SessionError,
    regions: &[String],
) -> SessionError {
    if !matches!(
        refusal,
        SessionError::AccessDenied { .. } | SessionError::TargetNotConnected { .. }
    ) || !is_instance_id(target)
    {
        return refusal;
    }
    // The lookup must not hold the user up: past LOOKUP_LIMIT, AWS's answer stands.
    let found = tokio::time::timeout(LOOKUP_LIMIT, locate(access, target, regions)).await;
    match found.unwrap_or(Ok(Whereabouts::Here)) {
        Ok(Whereabouts::Here) | Err(_) => refusal,
        Ok(Whereabouts::Elsewhere(found)) => SessionError::InOtherRegion {
            target: target.to_owned(),
            region: access.region.clone(),
            found,
        },
        Ok(Whereabouts::Nowhere(searched)) => SessionError::NoSuchInstance {
            target: target.to_owned(),
            region: access.region.clone(),
            searched,
        },
    }
}

/// Why a name did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No running instance has that Name tag.
    #[error("no running instance is named {0:?} in this account and region")]
    NotFound(String),
    /// Several do.
    #[error("{count} running instances are named {name:?}; use an instance id ({ids})")]
    Ambiguous {
        /// The name.
        name: String,
        /// How many.
        count: usize,
        /// Their ids.
        ids: String,
    },
    /// Listing failed.
    #[error(transparent)]
    Listing(#[from] SessionError),
}

/// An instance id as given, or the one running instance whose Name tag is `target`.
pub async fn resolve(ec2: &aws_sdk_ec2::Client, target: &str) -> Result<String, ResolveError> {
    if is_instance_id(target) {
        return Ok(target.to_owned());
    }
    let matches: Vec<String> = running(ec2)
        .await?
        .into_iter()
        .filter(|i| i.name.as_deref() == Some(target))
        .map(|i| i.id)
        .collect();
    match matches.as_slice() {
        [] => Err(ResolveError::NotFound(target.to_owned())),
        [one] => Ok(one.clone()),
        many => Err(ResolveError::Ambiguous {
            name: target.to_owned(),
            count: many.len(),
            ids: many.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::is_instance_id;

    #[test]
    fn instance_ids_are_recognised() {
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(is_instance_id("i-01234567"));
        assert!(is_instance_id("mi-0123456789abcdef0"));
        assert!(!is_instance_id("web-1"));
        assert!(!is_instance_id("i-xyz"));
    }
}
