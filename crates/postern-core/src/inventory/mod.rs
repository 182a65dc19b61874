//! The instances a user may reach: every instance of every identity and region of the fleet
//! view, with its Systems Manager status and whether it is within reach ([`listing`], [`row`]),
//! searched ([`search`]) and cached ([`cache`]); resolving a Name tag or private IP to an
//! instance id; and finding which region an instance is in when Session Manager refused it.

pub mod cache;
pub mod listing;
pub mod row;
pub mod search;

use aws_sdk_ec2::types::Filter;

use crate::aws::AwsAccess;
use crate::paths::Paths;
use crate::session::SessionError;

/// An instance, as far as naming it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceName {
    /// `i-…`.
    pub id: String,
    /// The `Name` tag, if any.
    pub name: Option<String>,
}

/// Every running instance of the account in the access's region, with its Name tag.
pub async fn running(access: &crate::aws::AwsAccess) -> Result<Vec<InstanceName>, SessionError> {
    let ec2 = access.ec2();
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

/// Remember what StartSession answered `identity` for `instance` (the inventory shows "denied
/// when last tried", until a session starts); a failure to write it is only a warning.
pub fn remember_answer(paths: &Paths, identity: &str, instance: &str, refused: bool) {
    if !is_instance_id(instance) {
        return;
    }
    if !refused {
        // Most sessions start where none was refused: nothing to forget, nothing to write.
        let denied = crate::settings::State::load(paths).is_ok_and(|state| {
            state
                .denied_sessions
                .get(identity)
                .is_some_and(|d| d.contains_key(instance))
        });
        if !denied {
            return;
        }
    }
    let at = crate::credentials::unix_now();
    let noted = crate::settings::State::update(paths, |state| {
        state.session_answer(identity, instance, refused.then_some(at));
    });
    if let Err(e) = noted {
        tracing::warn!("cannot remember StartSession's answer: {e}");
    }
}

/// When Session Manager refused a target (access denied, or not connected), say why if the
/// instance is not in the region at all; otherwise keep AWS's answer. The lookup's own failures
/// (no permission to describe instances, say) keep AWS's answer too. A refusal that stands is
/// remembered for the inventory ([`remember_answer`]).
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
        Ok(Whereabouts::Here) | Err(_) => {
            if matches!(refusal, SessionError::AccessDenied { .. }) {
                let (paths, identity) = (access.paths().clone(), access.identity().to_owned());
                let target = target.to_owned();
                let _ = tokio::task::spawn_blocking(move || {
                    remember_answer(&paths, &identity, &target, true);
                })
                .await;
            }
            refusal
        }
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

/// Why a name or address did not resolve to one instance.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No instance has that Name tag or private IP.
    #[error("no instance is named {target:?} or has it as its private IP in {region}")]
    NotFound {
        /// The name or address.
        target: String,
        /// The region searched.
        region: String,
    },
    /// Only instances that are not running do.
    #[error("{target:?} is {candidates}, not running; start it first")]
    NotRunning {
        /// The name or address.
        target: String,
        /// Each with its state.
        candidates: String,
    },
    /// Several running instances do.
    #[error("{count} running instances match {target:?}: {candidates}; use an instance id")]
    Ambiguous {
        /// The name or address.
        target: String,
        /// How many.
        count: usize,
        /// Each with its name and address.
        candidates: String,
    },
    /// Listing failed.
    #[error(transparent)]
    Listing(#[from] SessionError),
}

/// An instance id as given, or the one running instance whose Name tag or private IPv4
/// address is `target`.
pub async fn resolve(access: &crate::aws::AwsAccess, target: &str) -> Result<String, ResolveError> {
    let ec2 = access.ec2();
    if is_instance_id(target) {
        return Ok(target.to_owned());
    }
    let by_address = target.parse::<std::net::Ipv4Addr>().is_ok();
    let field = if by_address {
        "private-ip-address"
    } else {
        "tag:Name"
    };
    let mut found: Vec<(String, Option<String>, Option<String>, String)> = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .filters(Filter::builder().name(field).values(target).build())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| SessionError::from_sdk("DescribeInstances", target, &e))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = instance.instance_id() else {
                continue;
            };
            let state = instance
                .state()
                .and_then(|s| s.name())
                .map_or("unknown", |s| s.as_str())
                .to_owned();
            if state == "terminated" {
                continue;
            }
            let name = instance
                .tags()
                .iter()
                .find(|t| t.key() == Some("Name"))
                .and_then(|t| t.value())
                .map(str::to_owned);
            let ip = instance.private_ip_address().map(str::to_owned);
            found.push((id.to_owned(), name, ip, state));
        }
    }
    let describe = |list: &[&(String, Option<String>, Option<String>, String)],
                    with_state: bool| {
        list.iter()
            .map(|(id, name, ip, state)| {
                let mut about: Vec<&str> = Vec::new();
                if let Some(name) = name {
                    about.push(name);
                }
                if let Some(ip) = ip {
                    about.push(ip);
                }
                if with_state {
                    about.push(state);
                }
                format!("{id} ({})", about.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let running: Vec<_> = found.iter().filter(|f| f.3 == "running").collect();
    match running.as_slice() {
        [one] => Ok(one.0.clone()),
        [] if found.is_empty() => Err(ResolveError::NotFound {
            target: target.to_owned(),
            region: ec2
                .config()
                .region()
                .map_or_else(|| "this region".to_owned(), |r| r.to_string()),
        }),
        [] => Err(ResolveError::NotRunning {
            target: target.to_owned(),
            candidates: describe(&found.iter().collect::<Vec<_>>(), true),
        }),
        many => Err(ResolveError::Ambiguous {
            target: target.to_owned(),
            count: many.len(),
            candidates: describe(many, false),
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
