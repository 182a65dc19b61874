//! Amazon EC2: DescribeInstances and DescribeRegions, in the `ec2` query protocol.
//!
//! DescribeInstances sees the caller's account in the region the request was signed for. Filters
//! `tag:<key>`, `tag-key`, `tag-value`, `instance-state-name`, `instance-id`,
//! `private-ip-address`, `instance-type`, `availability-zone`, `vpc-id` and `subnet-id` take `*`
//! and `?` wildcards; values of one filter are ORed, filters ANDed. Paging is by instance (each
//! instance is its own reservation, as if launched one by one). Any other filter name is refused
//! as AWS refuses unknown ones, so a test never silently gets an unfiltered list.

use std::collections::BTreeMap;

use crate::policy::wildcard_match;
use crate::scenario::{Platform, is_instance_id};
use crate::services::{Call, page};
use crate::wire::query::{Params, member_list};
use crate::wire::xml::Writer;
use crate::wire::{AwsError, iso_millis};
use crate::world::{Instance, World};

const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const VERSION: &str = "2016-11-15";

/// Run the EC2 action named in `params` and render its answer.
pub fn handle(world: &mut World, call: &Call<'_>, params: &Params) -> Result<String, AwsError> {
    if let Some(version) = params.get("Version")
        && version != VERSION
    {
        return Err(AwsError::bad_request(
            "InvalidParameterValue",
            format!("Value ({version}) for parameter Version is invalid. Use {VERSION}."),
        ));
    }
    match params.get("Action") {
        Some("DescribeInstances") => describe_instances(world, call, params),
        Some("DescribeRegions") => describe_regions(world, call, params),
        Some(other) => Err(AwsError::bad_request(
            "InvalidAction",
            format!("The action {other} is not valid for this web service."),
        )),
        None => Err(AwsError::bad_request(
            "MissingAction",
            "The request must contain the parameter Action",
        )),
    }
}

fn dry_run(params: &Params) -> Result<(), AwsError> {
    if params
        .get("DryRun")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err(AwsError::new(
            "DryRunOperation",
            http::StatusCode::PRECONDITION_FAILED,
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    Ok(())
}

/// One `Filter.N` of a request.
#[derive(Debug)]
struct Filter<'a> {
    name: &'a str,
    values: Vec<&'a str>,
}

fn filters<'a>(params: &'a Params, known: &[&str]) -> Result<Vec<Filter<'a>>, AwsError> {
    let mut out = Vec::new();
    for entry in params.structures("Filter") {
        let Some(name) = entry.get("Name").copied() else {
            return Err(AwsError::bad_request(
                "MissingParameter",
                "The request must contain the parameter Filter.Name",
            ));
        };
        let is_tag = name.strip_prefix("tag:").is_some_and(|k| !k.is_empty());
        if !is_tag && !known.contains(&name) {
            return Err(AwsError::bad_request(
                "InvalidParameterValue",
                format!("The filter '{name}' is invalid"),
            ));
        }
        let values = member_list(&entry, "Value");
        if values.is_empty() {
            return Err(AwsError::bad_request(
                "InvalidParameterValue",
                format!("The filter '{name}' must have at least one value"),
            ));
        }
        if values.iter().any(|v| v.len() > 255) {
            return Err(AwsError::bad_request(
                "FilterLimitExceeded",
                "The maximum length for a filter value is 255 characters",
            ));
        }
        out.push(Filter { name, values });
    }
    Ok(out)
}

const INSTANCE_FILTERS: &[&str] = &[
    "tag-key",
    "tag-value",
    "instance-state-name",
    "instance-id",
    "private-ip-address",
    "instance-type",
    "availability-zone",
    "vpc-id",
    "subnet-id",
];

fn matches(instance: &Instance, filter: &Filter<'_>) -> bool {
    let any = |actual: &str| {
        filter
            .values
            .iter()
            .any(|pattern| wildcard_match(pattern, actual))
    };
    let spec = &instance.spec;
    match filter.name {
        "tag-key" => instance.tags().iter().any(|(k, _)| any(k)),
        "tag-value" => instance.tags().iter().any(|(_, v)| any(v)),
        "instance-state-name" => any(spec.state.name()),
        "instance-id" => any(&spec.id),
        "private-ip-address" => any(&spec.private_ip),
        "instance-type" => any(&spec.instance_type),
        "availability-zone" => any(&instance.availability_zone),
        "vpc-id" => any(&instance.vpc_id),
        "subnet-id" => any(&instance.subnet_id),
        name => match name.strip_prefix("tag:") {
            Some(key) => instance.tags().iter().any(|(k, v)| *k == key && any(v)),
            None => false,
        },
    }
}

fn describe_instances(
    world: &mut World,
    call: &Call<'_>,
    params: &Params,
) -> Result<String, AwsError> {
    call.authorize_ec2(world, "ec2:DescribeInstances")?;
    let ids = params.list("InstanceId");
    let max = params.integer("MaxResults", |name, text| {
        AwsError::bad_request(
            "InvalidParameterValue",
            format!("Value ( {text} ) for parameter {name} is invalid. Expecting an integer."),
        )
    })?;
    if max.is_some() && !ids.is_empty() {
        return Err(AwsError::bad_request(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    if let Some(max) = max {
        if max < 5 {
            return Err(AwsError::bad_request(
                "InvalidParameterValue",
                format!(
                    "Value ( {max} ) for parameter maxResults is invalid. Expecting a value greater than 5."
                ),
            ));
        }
        if max > 1000 {
            return Err(AwsError::bad_request(
                "InvalidParameterValue",
                format!(
                    "Value ( {max} ) for parameter maxResults is invalid. Expecting a value less than 1000."
                ),
            ));
        }
    }
    if let Some(bad) = ids.iter().find(|id| !is_instance_id(id)) {
        return Err(AwsError::bad_request(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{bad}\""),
        ));
    }
    let filters = filters(params, INSTANCE_FILTERS)?;
    dry_run(params)?;

    let account = call.caller.principal.account();
    let in_scope = |i: &&Instance| i.spec.account == account && i.spec.region == call.region;
    if !ids.is_empty() {
        let missing: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| world.instance(id).filter(in_scope).is_none())
            .collect();
        match missing.as_slice() {
            [] => {}
            [one] => {
                return Err(AwsError::bad_request(
                    "InvalidInstanceID.NotFound",
                    format!("The instance ID '{one}' does not exist"),
                ));
            }
            many => {
                return Err(AwsError::bad_request(
                    "InvalidInstanceID.NotFound",
                    format!("The instance IDs '{}' do not exist", many.join(", ")),
                ));
            }
        }
    }
    let selected: Vec<&Instance> = world
        .instances
        .iter()
        .filter(in_scope)
        .filter(|i| ids.is_empty() || ids.contains(&i.spec.id.as_str()))
        .filter(|i| filters.iter().all(|f| matches(i, f)))
        .collect();

    let query = format!("{account}|{}|{ids:?}|{filters:?}|{max:?}", call.region);
    let start = match params.get("NextToken") {
        None => 0,
        Some(token) => page::offset(token, &query).ok_or_else(|| {
            AwsError::bad_request(
                "InvalidParameterValue",
                format!(
                    "Value ( {token} ) for parameter NextToken is invalid. The token is invalid."
                ),
            )
        })?,
    };
    let size = max.map_or(selected.len(), |m| m as usize);
    let end = (start + size).min(selected.len());
    let page_items = selected.get(start..end).unwrap_or_default();

    let mut x = Writer::document();
    x.open_ns("DescribeInstancesResponse", NAMESPACE);
    x.leaf("requestId", call.request_id);
    x.open("reservationSet");
    for instance in page_items {
        write_reservation(&mut x, instance);
    }
    x.close("reservationSet");
    if end < selected.len() {
        x.leaf("nextToken", &page::token(&query, end));
    }
    x.close("DescribeInstancesResponse");
    Ok(x.finish())
}

fn write_reservation(x: &mut Writer, instance: &Instance) {
    let spec = &instance.spec;
    x.open("item");
    x.leaf("reservationId", &instance.reservation_id);
    x.leaf("ownerId", &spec.account);
    x.open("groupSet");
    x.close("groupSet");
    x.open("instancesSet");
    x.open("item");
    x.leaf("instanceId", &spec.id);
    x.leaf("imageId", &instance.image_id);
    x.open("instanceState");
    x.leaf("code", &spec.state.code().to_string());
    x.leaf("name", spec.state.name());
    x.close("instanceState");
    x.leaf("privateDnsName", &instance.private_dns_name());
    x.leaf("dnsName", "");
    x.leaf("reason", "");
    x.leaf("amiLaunchIndex", "0");
    x.leaf("instanceType", &spec.instance_type);
    x.leaf("launchTime", &iso_millis(instance.launch_time));
    x.open("placement");
    x.leaf("availabilityZone", &instance.availability_zone);
    x.leaf("groupName", "");
    x.leaf("tenancy", "default");
    x.close("placement");
    if spec.platform == Platform::Windows {
        x.leaf("platform", "windows");
    }
    x.leaf(
        "platformDetails",
        if spec.platform == Platform::Windows {
            "Windows"
        } else {
            "Linux/UNIX"
        },
    );
    x.open("monitoring");
    x.leaf("state", "disabled");
    x.close("monitoring");
    x.leaf("subnetId", &instance.subnet_id);
    x.leaf("vpcId", &instance.vpc_id);
    x.leaf("privateIpAddress", &spec.private_ip);
    x.leaf("sourceDestCheck", "true");
    x.open("groupSet");
    x.close("groupSet");
    x.leaf("architecture", "x86_64");
    x.leaf("rootDeviceType", "ebs");
    x.leaf(
        "rootDeviceName",
        if spec.platform == Platform::Windows {
            "/dev/sda1"
        } else {
            "/dev/xvda"
        },
    );
    x.leaf("virtualizationType", "hvm");
    x.leaf("hypervisor", "xen");
    x.open("tagSet");
    for (key, value) in instance.tags() {
        x.open("item");
        x.leaf("key", key);
        x.leaf("value", value);
        x.close("item");
    }
    x.close("tagSet");
    x.close("item");
    x.close("instancesSet");
    x.close("item");
}

fn describe_regions(
    world: &mut World,
    call: &Call<'_>,
    params: &Params,
) -> Result<String, AwsError> {
    call.authorize_ec2(world, "ec2:DescribeRegions")?;
    let names = params.list("RegionName");
    if let Some(unknown) = names
        .iter()
        .find(|n| !world.settings.regions.iter().any(|r| r == *n))
    {
        return Err(AwsError::bad_request(
            "InvalidParameterValue",
            format!("Invalid region: {unknown}"),
        ));
    }
    let filters = filters(params, &["region-name", "endpoint", "opt-in-status"])?;
    dry_run(params)?;
    let mut x = Writer::document();
    x.open_ns("DescribeRegionsResponse", NAMESPACE);
    x.leaf("requestId", call.request_id);
    x.open("regionInfo");
    for region in &world.settings.regions {
        let endpoint = format!("ec2.{region}.amazonaws.com");
        let fields: BTreeMap<&str, &str> = [
            ("region-name", region.as_str()),
            ("endpoint", endpoint.as_str()),
            ("opt-in-status", "opt-in-not-required"),
        ]
        .into_iter()
        .collect();
        let wanted = (names.is_empty() || names.contains(&region.as_str()))
            && filters.iter().all(|f| {
                let actual = fields.get(f.name).copied().unwrap_or_default();
                f.values
                    .iter()
                    .any(|pattern| wildcard_match(pattern, actual))
            });
        if !wanted {
            continue;
        }
        x.open("item");
        x.leaf("regionName", region);
        x.leaf("regionEndpoint", &endpoint);
        x.leaf("optInStatus", "opt-in-not-required");
        x.close("item");
    }
    x.close("regionInfo");
    x.close("DescribeRegionsResponse");
    Ok(x.finish())
}
