//! AWS Systems Manager, the Session Manager part: DescribeInstanceInformation, StartSession,
//! ResumeSession, TerminateSession, DescribeSessions and GetConnectionStatus, in awsJson1_1.
//!
//! StartSession is authorised twice, as AWS does: `ssm:StartSession` on the instance (with its
//! tags as `ssm:resourceTag/<key>`) and on the session document. Resume and Terminate are
//! authorised on the session's ARN with the tags AWS puts on sessions
//! (`aws:ssmmessages:session-id` = the owner's `aws:userid`, `aws:ssmmessages:target-id`), which is
//! how policies restrict users to their own sessions. StartSession answers a `ws://` stream URL on
//! the sandbox's own port and a single-use token the data channel checks.
//!
//! Unverified against AWS (see `docs/aws-wire-reference.md`), chosen to be plausible and clear:
//! the wording of `InvalidDocument`, `DoesNotExistException` and `InvalidParameters` (used for
//! document parameters StartSession cannot accept), TerminateSession of an unknown id answering
//! 200 when the caller may terminate it, and DescribeSessions' default page size of 20.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::iam::ids;
use crate::policy::wildcard_match;
use crate::scenario::{InstanceState, Platform, SsmStatus, is_instance_id};
use crate::services::{Call, page};
use crate::trail::{self, Outcome};
use crate::wire::json::{Body, epoch};
use crate::wire::{AwsError, Service, validation};
use crate::world::{Instance, SessionStatus, SsmSession, World};

/// The newest agent version; instances running it report `IsLatestVersion`.
pub const LATEST_AGENT: &str = "3.3.1611.0";

/// Run the SSM operation `operation` with `body` and render its answer.
pub fn handle(
    world: &mut World,
    call: &Call<'_>,
    operation: &str,
    body: &Body,
) -> Result<Value, AwsError> {
    match operation {
        "DescribeInstanceInformation" => describe_instance_information(world, call, body),
        "StartSession" => start_session(world, call, body),
        "ResumeSession" => resume_session(world, call, body),
        "TerminateSession" => terminate_session(world, call, body),
        "DescribeSessions" => describe_sessions(world, call, body),
        "GetConnectionStatus" => get_connection_status(world, call, body),
        _ => Err(AwsError::bad_request("UnknownOperationException", "")),
    }
}

fn account_wide(call: &Call<'_>) -> String {
    format!(
        "arn:aws:ssm:{}:{}:*",
        call.region,
        call.caller.principal.account()
    )
}

/// `ssm:resourceTag/<key>` and `aws:ResourceTag/<key>` for each of an instance's tags.
fn instance_tag_keys(instance: Option<&Instance>) -> Vec<(String, String)> {
    let Some(instance) = instance else {
        return Vec::new();
    };
    instance
        .tags()
        .into_iter()
        .flat_map(|(k, v)| {
            let k = k.to_ascii_lowercase();
            [
                (format!("ssm:resourcetag/{k}"), v.to_owned()),
                (format!("aws:resourcetag/{k}"), v.to_owned()),
            ]
        })
        .collect()
}

/// The instance `id` if it is in the caller's account and the request's region.
fn scoped_instance<'w>(world: &'w World, call: &Call<'_>, id: &str) -> Option<&'w Instance> {
    world.instance(id).filter(|i| {
        i.spec.account == call.caller.principal.account() && i.spec.region == call.region
    })
}

fn is_connected(instance: &Instance) -> bool {
    instance.spec.state == InstanceState::Running && instance.spec.ssm == SsmStatus::Online
}

fn string_list(value: &Value, what: &str) -> Result<Vec<String>, AwsError> {
    let items = value
        .as_array()
        .ok_or_else(|| crate::wire::json::serialization(&format!("{what} must be a list")))?;
    items
        .iter()
        .map(|v| {
            v.as_str().map(str::to_owned).ok_or_else(|| {
                crate::wire::json::serialization(&format!("{what} must hold strings"))
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// DescribeInstanceInformation

fn ping_status(status: SsmStatus) -> &'static str {
    match status {
        SsmStatus::Online => "Online",
        SsmStatus::ConnectionLost => "ConnectionLost",
        SsmStatus::Inactive | SsmStatus::Unmanaged => "Inactive",
    }
}

fn describe_instance_information(
    world: &mut World,
    call: &Call<'_>,
    body: &Body,
) -> Result<Value, AwsError> {
    call.authorize_json(
        world,
        "ssm:DescribeInstanceInformation",
        &account_wide(call),
        [],
    )?;
    let legacy = body.list("InstanceInformationFilterList")?;
    let modern = body.list("Filters")?;
    if !legacy.is_empty() && !modern.is_empty() {
        return Err(AwsError::bad_request(
            "ValidationException",
            "InstanceInformationFilterList and Filters cannot be used in the same request; use Filters.",
        ));
    }
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    for (i, entry) in legacy.iter().chain(modern).enumerate() {
        let (key_name, values_name) = if legacy.is_empty() {
            ("Key", "Values")
        } else {
            ("key", "valueSet")
        };
        let key = entry.get(key_name).and_then(Value::as_str).ok_or_else(|| {
            validation(
                "ValidationException",
                &format!("filters.{}.member.key", i + 1),
                None,
                "Member must not be null",
            )
        })?;
        let values = string_list(entry.get(values_name).unwrap_or(&Value::Null), values_name)?;
        if values.is_empty() || values.len() > 100 {
            return Err(AwsError::bad_request(
                "InvalidInstanceInformationFilterValue",
                format!("{key} filter must have 1 to 100 values."),
            ));
        }
        filters.push((key.to_owned(), values));
    }
    let is_tag = |key: &str| key == "tag-key" || key.starts_with("tag:");
    if filters.iter().any(|(k, _)| is_tag(k)) && filters.iter().any(|(k, _)| !is_tag(k)) {
        return Err(AwsError::bad_request(
            "ValidationException",
            "Cannot mix tag or inventory filter with any other filter.",
        ));
    }
    for (key, values) in &filters {
        let allowed: Option<&[&str]> = match key.as_str() {
            "PingStatus" => Some(&["Online", "ConnectionLost", "Inactive"]),
            "PlatformTypes" => Some(&["Windows", "Linux", "MacOS"]),
            "ResourceType" => Some(&["EC2Instance", "ManagedInstance"]),
            "InstanceIds" | "AgentVersion" | "AssociationStatus" | "IamRole" | "ActivationIds"
            | "SourceIds" | "SourceTypes" | "tag-key" => None,
            k if k.starts_with("tag:") => None,
            other => {
                return Err(AwsError::bad_request(
                    "InvalidFilterKey",
                    format!("The filter key {other} is not valid."),
                ));
            }
        };
        if let Some(allowed) = allowed
            && let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str()))
        {
            return Err(AwsError::bad_request(
                "InvalidInstanceInformationFilterValue",
                format!(
                    "{key} filter value {bad} is invalid, valid values are {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let max = body.integer("MaxResults")?.unwrap_or(10);
    if !(5..=50).contains(&max) {
        return Err(validation(
            "ValidationException",
            "maxResults",
            Some(&max.to_string()),
            if max < 5 {
                "Member must have value greater than or equal to 5"
            } else {
                "Member must have value less than or equal to 50"
            },
        ));
    }

    let account = call.caller.principal.account();
    let managed = |i: &&Instance| {
        i.spec.account == account
            && i.spec.region == call.region
            && i.spec.ssm != SsmStatus::Unmanaged
            && !matches!(
                i.spec.state,
                InstanceState::Stopped | InstanceState::Terminated
            )
    };
    if let Some((_, ids)) = filters.iter().find(|(k, _)| k == "InstanceIds") {
        let unknown: Vec<&String> = ids
            .iter()
            .filter(|id| !is_instance_id(id) || world.instance(id).filter(managed).is_none())
            .collect();
        if !unknown.is_empty() {
            let list = unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(AwsError::bad_request(
                "InvalidInstanceId",
                format!("Instances [[{list}]] not in a valid state for account {account}"),
            ));
        }
    }
    let keep = |instance: &Instance| {
        filters.iter().all(|(key, values)| {
            let any = |actual: &str| values.iter().any(|v| v == actual);
            let spec = &instance.spec;
            match key.as_str() {
                "InstanceIds" | "SourceIds" => any(&spec.id),
                "PingStatus" => any(ping_status(spec.ssm)),
                "PlatformTypes" => any(if spec.platform == Platform::Windows {
                    "Windows"
                } else {
                    "Linux"
                }),
                "ResourceType" => any("EC2Instance"),
                "SourceTypes" => any("AWS::EC2::Instance"),
                "AgentVersion" => any(&spec.agent_version),
                "AssociationStatus" => any("Success"),
                "IamRole" | "ActivationIds" => false,
                "tag-key" => instance
                    .tags()
                    .iter()
                    .any(|(k, _)| values.iter().any(|v| wildcard_match(v, k))),
                k => match k.strip_prefix("tag:") {
                    Some(tag) => instance.tags().iter().any(|(k, v)| *k == tag && any(v)),
                    None => false,
                },
            }
        })
    };
    let selected: Vec<&Instance> = world
        .instances
        .iter()
        .filter(managed)
        .filter(|i| keep(i))
        .collect();
    let query = format!("dii|{account}|{}|{filters:?}|{max}", call.region);
    let (start, end, next) = paginate(body, &query, selected.len(), max as usize)?;
    let now = world.now();
    let list: Vec<Value> = selected[start..end]
        .iter()
        .map(|instance| {
            let spec = &instance.spec;
            let windows = spec.platform == Platform::Windows;
            let last_ping = match spec.ssm {
                SsmStatus::Online => now - time::Duration::seconds(40),
                _ => instance.launch_time + time::Duration::days(2),
            };
            json!({
                "InstanceId": spec.id,
                "PingStatus": ping_status(spec.ssm),
                "LastPingDateTime": epoch(last_ping),
                "AgentVersion": spec.agent_version,
                "IsLatestVersion": spec.agent_version == LATEST_AGENT,
                "PlatformType": if windows { "Windows" } else { "Linux" },
                "PlatformName": if windows { "Microsoft Windows Server 2022 Datacenter" } else { "Amazon Linux" },
                "PlatformVersion": if windows { "10.0.20348" } else { "2023" },
                "ResourceType": "EC2Instance",
                "IPAddress": spec.private_ip,
                "ComputerName": instance.private_dns_name(),
                "AssociationStatus": "Success",
                "SourceId": spec.id,
                "SourceType": "AWS::EC2::Instance",
            })
        })
        .collect();
    let mut out = json!({ "InstanceInformationList": list });
    if let Some(token) = next {
        out["NextToken"] = Value::String(token);
    }
    Ok(out)
}

/// The page `[start, end)` of `total` items and the token for the next one.
fn paginate(
    body: &Body,
    query: &str,
    total: usize,
    size: usize,
) -> Result<(usize, usize, Option<String>), AwsError> {
    let start = match body.string("NextToken")? {
        None => 0,
        Some(token) => page::offset(token, query)
            .filter(|&o| o <= total)
            .ok_or_else(|| {
                AwsError::bad_request("InvalidNextToken", "The specified token isn't valid.")
            })?,
    };
    let end = (start + size).min(total);
    let next = (end < total).then(|| page::token(query, end));
    Ok((start, end, next))
}

// ---------------------------------------------------------------------------------------------
// StartSession, ResumeSession, TerminateSession

/// A session document and the parameters it takes.
struct Document {
    name: &'static str,
    /// AWS-owned documents have no account in their ARN.
    aws_owned: bool,
    required: &'static [&'static str],
    optional: &'static [&'static str],
    /// Parameters that must be port numbers.
    ports: &'static [&'static str],
}

const DOCUMENTS: &[Document] = &[
    Document {
        name: "SSM-SessionManagerRunShell",
        aws_owned: false,
        required: &[],
        optional: &[],
        ports: &[],
    },
    Document {
        name: "AWS-StartInteractiveCommand",
        aws_owned: true,
        required: &["command"],
        optional: &[],
        ports: &[],
    },
    Document {
        name: "AWS-StartNonInteractiveCommand",
        aws_owned: true,
        required: &["command"],
        optional: &[
            "separateOutputStream",
            "stdoutSeparatorPrefix",
            "stderrSeparatorPrefix",
        ],
        ports: &[],
    },
    Document {
        name: "AWS-StartPortForwardingSession",
        aws_owned: true,
        required: &[],
        optional: &["portNumber", "localPortNumber"],
        ports: &["portNumber", "localPortNumber"],
    },
    Document {
        name: "AWS-StartPortForwardingSessionToRemoteHost",
        aws_owned: true,
        required: &["host"],
        optional: &["portNumber", "localPortNumber"],
        ports: &["portNumber", "localPortNumber"],
    },
    Document {
        name: "AWS-StartSSHSession",
        aws_owned: true,
        required: &[],
        optional: &["portNumber"],
        ports: &["portNumber"],
    },
];

fn document_arn(document: &Document, call: &Call<'_>) -> String {
    let account = if document.aws_owned {
        ""
    } else {
        call.caller.principal.account()
    };
    format!(
        "arn:aws:ssm:{}:{account}:document/{}",
        call.region, document.name
    )
}

fn check_parameters(
    document: &Document,
    body: &Body,
) -> Result<BTreeMap<String, Vec<String>>, AwsError> {
    let mut parameters = BTreeMap::new();
    if let Some(given) = body.get("Parameters") {
        let map = given.as_object().ok_or_else(|| {
            crate::wire::json::serialization("Parameters must map names to lists of strings")
        })?;
        for (name, values) in map {
            if !document.required.contains(&name.as_str())
                && !document.optional.contains(&name.as_str())
            {
                return Err(AwsError::bad_request(
                    "InvalidParameters",
                    format!(
                        "Parameter {name} is not defined in the document {}.",
                        document.name
                    ),
                ));
            }
            parameters.insert(name.clone(), string_list(values, name)?);
        }
    }
    for name in document.required {
        if parameters
            .get(*name)
            .is_none_or(|v| v.iter().all(|s| s.trim().is_empty()))
        {
            return Err(AwsError::bad_request(
                "InvalidParameters",
                format!(
                    "Parameter {name} is required by the document {}.",
                    document.name
                ),
            ));
        }
    }
    for name in document.ports {
        if let Some(values) = parameters.get(*name) {
            let port_ok = values.len() == 1 && values[0].parse::<u16>().is_ok();
            let local_zero = *name == "localPortNumber" && values.first().is_some_and(|v| v == "0");
            if !port_ok || (values[0] == "0" && !local_zero) {
                return Err(AwsError::bad_request(
                    "InvalidParameters",
                    format!(
                        "Parameter {name} must be one port number from 1 to 65535, got {values:?}."
                    ),
                ));
            }
        }
    }
    Ok(parameters)
}

fn stream_url(world: &World, session_id: &str) -> String {
    format!(
        "ws://{}/v1/data-channel/{session_id}?role=publish_subscribe&cell-number=AAEAAAAAAAA=",
        world.address
    )
}

fn new_token(world: &mut World) -> String {
    format!(
        "AAEAA{}",
        ids::session_token(&mut world.rng).replace(['+', '/'], "x")
    )
}

fn session_arn(call: &Call<'_>, id: &str) -> String {
    format!(
        "arn:aws:ssm:{}:{}:session/{id}",
        call.region,
        call.caller.principal.account()
    )
}

fn session_tag_keys(session: Option<&SsmSession>) -> Vec<(String, String)> {
    let Some(session) = session else {
        return Vec::new();
    };
    vec![
        (
            "ssm:resourcetag/aws:ssmmessages:session-id".into(),
            session.owner_user_id.clone(),
        ),
        (
            "ssm:resourcetag/aws:ssmmessages:target-id".into(),
            session.target.clone(),
        ),
    ]
}

fn start_session(world: &mut World, call: &Call<'_>, body: &Body) -> Result<Value, AwsError> {
    let target = body.required_string("Target")?;
    if target.is_empty() || target.len() > 400 {
        return Err(validation(
            "ValidationException",
            "target",
            Some(target),
            "Member must have length less than or equal to 400",
        ));
    }
    let document_name = body
        .string("DocumentName")?
        .unwrap_or("SSM-SessionManagerRunShell");
    let Some(document) = DOCUMENTS.iter().find(|d| d.name == document_name) else {
        return Err(AwsError::bad_request(
            "InvalidDocument",
            format!("Document with name {document_name} does not exist."),
        ));
    };
    let reason = body.string("Reason")?;
    if reason.is_some_and(|r| r.len() > 256) {
        return Err(validation(
            "ValidationException",
            "reason",
            reason,
            "Member must have length less than or equal to 256",
        ));
    }
    let instance = scoped_instance(world, call, target);
    let instance_arn = format!(
        "arn:aws:ec2:{}:{}:instance/{target}",
        call.region,
        call.caller.principal.account()
    );
    call.authorize_json(
        world,
        "ssm:StartSession",
        &instance_arn,
        instance_tag_keys(instance),
    )?;
    call.authorize_json(world, "ssm:StartSession", &document_arn(document, call), [])?;
    let parameters = check_parameters(document, body)?;
    if !instance.is_some_and(is_connected) {
        return Err(AwsError::bad_request(
            "TargetNotConnected",
            format!("{target} is not connected."),
        ));
    }

    let id = format!(
        "{}-{}",
        call.caller.principal.short_name(),
        ids::hex(&mut world.rng, 17)
    );
    let token = new_token(world);
    let session = SsmSession {
        id: id.clone(),
        account: call.caller.principal.account().to_owned(),
        region: call.region.to_owned(),
        target: target.to_owned(),
        document: document.name.to_owned(),
        parameters,
        owner_arn: call.caller.principal.arn(),
        owner_user_id: call.caller.principal.user_id(),
        reason: reason.map(str::to_owned),
        status: SessionStatus::Connected,
        started: world.now(),
        ended: None,
        token: Some(token.clone()),
    };
    world.session_index.insert(id.clone(), world.sessions.len());
    world.sessions.push(session);
    if let Some(faults) = world.new_session_faults.clone() {
        world.faults.insert(id.clone(), faults);
    }
    let url = stream_url(world, &id);
    trail::record(
        world,
        call,
        Outcome {
            name: "StartSession",
            service: Service::Ssm,
            request: trail::ssm_request("StartSession", body),
            response: Some(
                json!({ "sessionId": id, "tokenValue": trail::HIDDEN, "streamUrl": url }),
            ),
            error: None,
            resources: vec![("AWS::EC2::Instance".into(), target.to_owned())],
            also_in: None,
        },
    );
    Ok(json!({ "SessionId": id, "TokenValue": token, "StreamUrl": url }))
}

/// The session `id` in the caller's account and region, after authorising `action` on it.
fn authorized_session<'w>(
    world: &'w World,
    call: &Call<'_>,
    action: &str,
    id: &str,
) -> Result<Option<&'w SsmSession>, AwsError> {
    let session = world
        .session_index
        .get(id)
        .map(|&i| &world.sessions[i])
        .filter(|s| s.account == call.caller.principal.account() && s.region == call.region);
    call.authorize_json(
        world,
        action,
        &session_arn(call, id),
        session_tag_keys(session),
    )?;
    Ok(session)
}

fn session_id(body: &Body) -> Result<&str, AwsError> {
    let id = body.required_string("SessionId")?;
    if id.is_empty() || id.len() > 96 {
        return Err(validation(
            "ValidationException",
            "sessionId",
            Some(id),
            "Member must have length less than or equal to 96",
        ));
    }
    Ok(id)
}

fn resume_session(world: &mut World, call: &Call<'_>, body: &Body) -> Result<Value, AwsError> {
    let id = session_id(body)?;
    let found = authorized_session(world, call, "ssm:ResumeSession", id)?;
    match found.map(|s| s.status) {
        None => {
            return Err(AwsError::bad_request(
                "DoesNotExistException",
                format!("Session with id {id} does not exist."),
            ));
        }
        Some(status) if !status.is_active() => {
            return Err(AwsError::bad_request(
                "DoesNotExistException",
                format!(
                    "Session with id {id} has ended ({}) and cannot be resumed.",
                    status.name()
                ),
            ));
        }
        Some(_) => {}
    }
    let token = new_token(world);
    if let Some(session) = world.session_mut(id) {
        session.token = Some(token.clone());
    }
    let url = stream_url(world, id);
    trail::record(
        world,
        call,
        Outcome {
            name: "ResumeSession",
            service: Service::Ssm,
            request: trail::ssm_request("ResumeSession", body),
            response: Some(
                json!({ "sessionId": id, "tokenValue": trail::HIDDEN, "streamUrl": url }),
            ),
            error: None,
            resources: Vec::new(),
            also_in: None,
        },
    );
    Ok(json!({ "SessionId": id, "TokenValue": token, "StreamUrl": url }))
}

fn terminate_session(world: &mut World, call: &Call<'_>, body: &Body) -> Result<Value, AwsError> {
    let id = session_id(body)?.to_owned();
    authorized_session(world, call, "ssm:TerminateSession", &id)?;
    let now = world.now();
    if let Some(session) = world.session_mut(&id)
        && session.status.is_active()
    {
        session.status = SessionStatus::Terminated;
        session.ended = Some(now);
        session.token = None;
    }
    trail::record(
        world,
        call,
        Outcome {
            name: "TerminateSession",
            service: Service::Ssm,
            request: trail::ssm_request("TerminateSession", body),
            response: Some(json!({ "sessionId": id })),
            error: None,
            resources: Vec::new(),
            also_in: None,
        },
    );
    Ok(json!({ "SessionId": id }))
}

// ---------------------------------------------------------------------------------------------
// DescribeSessions, GetConnectionStatus

const SESSION_FILTER_KEYS: &[&str] = &[
    "InvokedAfter",
    "InvokedBefore",
    "Target",
    "Owner",
    "Status",
    "SessionId",
    "AccessType",
];
const SESSION_STATUSES: &[&str] = &[
    "Connected",
    "Connecting",
    "Disconnected",
    "Terminated",
    "Terminating",
    "Failed",
];

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

fn describe_sessions(world: &mut World, call: &Call<'_>, body: &Body) -> Result<Value, AwsError> {
    call.authorize_json(world, "ssm:DescribeSessions", &account_wide(call), [])?;
    let state = body.required_string("State")?;
    let active = match state {
        "Active" => true,
        "History" => false,
        other => {
            return Err(validation(
                "ValidationException",
                "state",
                Some(other),
                "Member must satisfy enum value set: [Active, History]",
            ));
        }
    };
    let max = body.integer("MaxResults")?.unwrap_or(20);
    if !(1..=200).contains(&max) {
        return Err(validation(
            "ValidationException",
            "maxResults",
            Some(&max.to_string()),
            "Member must have value less than or equal to 200",
        ));
    }
    let raw_filters = body.list("Filters")?;
    if raw_filters.len() > 6 {
        return Err(validation(
            "ValidationException",
            "filters",
            None,
            "Member must have length less than or equal to 6",
        ));
    }
    let mut filters: Vec<(&str, &str)> = Vec::new();
    for (i, filter) in raw_filters.iter().enumerate() {
        let member = |m: &str| format!("filters.{}.member.{m}", i + 1);
        let key = filter.get("key").and_then(Value::as_str).ok_or_else(|| {
            validation(
                "ValidationException",
                &member("key"),
                None,
                "Member must not be null",
            )
        })?;
        let value = filter.get("value").and_then(Value::as_str).ok_or_else(|| {
            validation(
                "ValidationException",
                &member("value"),
                None,
                "Member must not be null",
            )
        })?;
        if !SESSION_FILTER_KEYS.contains(&key) {
            return Err(validation(
                "ValidationException",
                &member("key"),
                Some(key),
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    SESSION_FILTER_KEYS.join(", ")
                ),
            ));
        }
        let valid = match key {
            "InvokedAfter" | "InvokedBefore" => parse_time(value).is_some(),
            "Status" => SESSION_STATUSES.contains(&value),
            "AccessType" => ["Standard", "JustInTime"].contains(&value),
            _ => !value.is_empty(),
        };
        if !valid {
            return Err(AwsError::bad_request(
                "InvalidFilterValue",
                format!("The filter value {value} is not valid for the key {key}."),
            ));
        }
        filters.push((key, value));
    }
    let account = call.caller.principal.account();
    // AWS keeps session history for 30 days.
    let kept_since = world.now() - time::Duration::days(30);
    let keep = |s: &SsmSession| {
        s.account == account
            && s.region == call.region
            && s.status.is_active() == active
            && (active || s.started >= kept_since)
            && filters.iter().all(|(key, value)| match *key {
                "InvokedAfter" => parse_time(value).is_some_and(|t| s.started >= t),
                "InvokedBefore" => parse_time(value).is_some_and(|t| s.started <= t),
                "Target" => s.target == *value,
                // An ARN, as AWS documents the Owner filter.
                "Owner" => s.owner_arn == *value,
                "Status" => s.status.name() == *value,
                "SessionId" => s.id == *value,
                "AccessType" => *value == "Standard",
                _ => false,
            })
    };
    let selected: Vec<&SsmSession> = world.sessions.iter().rev().filter(|s| keep(s)).collect();
    let query = format!("ds|{account}|{}|{state}|{filters:?}|{max}", call.region);
    let (start, end, next) = paginate(body, &query, selected.len(), max as usize)?;
    let list: Vec<Value> = selected[start..end]
        .iter()
        .map(|s| {
            let mut item = json!({
                "SessionId": s.id,
                "Target": s.target,
                "Status": s.status.name(),
                "StartDate": epoch(s.started),
                "DocumentName": s.document,
                "Owner": s.owner_arn,
                "OutputUrl": {},
                "AccessType": "Standard",
            });
            if let Some(ended) = s.ended {
                item["EndDate"] = epoch(ended);
            }
            if let Some(reason) = &s.reason {
                item["Reason"] = Value::String(reason.clone());
            }
            item
        })
        .collect();
    let mut out = json!({ "Sessions": list });
    if let Some(token) = next {
        out["NextToken"] = Value::String(token);
    }
    Ok(out)
}

fn get_connection_status(
    world: &mut World,
    call: &Call<'_>,
    body: &Body,
) -> Result<Value, AwsError> {
    let target = body.required_string("Target")?;
    let instance = scoped_instance(world, call, target);
    let arn = format!(
        "arn:aws:ec2:{}:{}:instance/{target}",
        call.region,
        call.caller.principal.account()
    );
    call.authorize_json(
        world,
        "ssm:GetConnectionStatus",
        &arn,
        instance_tag_keys(instance),
    )?;
    let status = if instance.is_some_and(is_connected) {
        "connected"
    } else {
        "notconnected"
    };
    Ok(json!({ "Target": target, "Status": status }))
}
