//! CloudTrail's record: management events for the calls Postern's users make, in the shape AWS
//! writes them, and the scenario's seeded history.
//!
//! Every StartSession, ResumeSession, TerminateSession, AssumeRole and GetSessionToken the sandbox
//! serves is recorded, failures included (with `errorCode` and `errorMessage`, as CloudTrail
//! records denied calls), except requests that never authenticated. The `CloudTrailEvent` JSON
//! follows AWS's samples (`docs/aws-wire-reference.md` §4): `tokenValue` is hidden as
//! "Value hidden due to security reasons.", AssumeRole's and GetSessionToken's
//! `responseElements.credentials` leave out the secret key but show the session token and a
//! console-style `expiration`, as AWS's own samples do. Cross-account AssumeRole is recorded in
//! both accounts, with a `sharedEventID`.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::iam::{Caller, Principal};
use crate::services::Call;
use crate::wire::{AwsError, Service, iso_seconds};
use crate::world::World;

/// One recorded management event.
#[derive(Clone, Debug)]
pub struct TrailEvent {
    /// `eventID`.
    pub id: String,
    /// The account whose trail holds it.
    pub account: String,
    /// The region it was recorded in.
    pub region: String,
    /// When.
    pub time: OffsetDateTime,
    /// `eventName`.
    pub name: String,
    /// `eventSource`.
    pub source: String,
    /// `readOnly`.
    pub read_only: bool,
    /// The access key the call was signed with.
    pub access_key_id: String,
    /// The user name LookupEvents shows: the IAM user or the role session name.
    pub username: String,
    /// (ResourceType, ResourceName) pairs for LookupEvents.
    pub resources: Vec<(String, String)>,
    /// The full record, as the JSON text LookupEvents returns in `CloudTrailEvent`.
    pub record: String,
}

/// `userIdentity` for a caller.
pub fn user_identity(caller: &Caller) -> Value {
    let principal = &caller.principal;
    let mut identity = Map::new();
    let session_context = caller.session.as_ref().map(|session| {
        let mut context = Map::new();
        if let Principal::AssumedRole {
            account,
            role_name,
            role_id,
            ..
        } = principal
        {
            context.insert(
                "sessionIssuer".into(),
                json!({
                    "type": "Role",
                    "principalId": role_id,
                    "arn": format!("arn:aws:iam::{account}:role/{role_name}"),
                    "accountId": account,
                    "userName": role_name,
                }),
            );
            context.insert("webIdFederationData".into(), json!({}));
        }
        context.insert(
            "attributes".into(),
            json!({
                "creationDate": iso_seconds(session.issued),
                "mfaAuthenticated": session.mfa_authenticated_at.is_some().to_string(),
            }),
        );
        if let Some(source) = &session.source_identity {
            context.insert("sourceIdentity".into(), Value::String(source.clone()));
        }
        Value::Object(context)
    });
    match principal {
        Principal::User {
            account,
            name,
            user_id,
        } => {
            identity.insert("type".into(), "IAMUser".into());
            identity.insert("principalId".into(), user_id.clone().into());
            identity.insert("arn".into(), principal.arn().into());
            identity.insert("accountId".into(), account.clone().into());
            identity.insert("accessKeyId".into(), caller.access_key_id.clone().into());
            identity.insert("userName".into(), name.clone().into());
        }
        Principal::AssumedRole { account, .. } => {
            identity.insert("type".into(), "AssumedRole".into());
            identity.insert("principalId".into(), principal.user_id().into());
            identity.insert("arn".into(), principal.arn().into());
            identity.insert("accountId".into(), account.clone().into());
            identity.insert("accessKeyId".into(), caller.access_key_id.clone().into());
        }
    }
    if let Some(context) = session_context {
        identity.insert("sessionContext".into(), context);
    }
    Value::Object(identity)
}

/// `expiration` as CloudTrail writes it in STS responseElements: `Oct 2, 2019, 11:12:29 PM`.
pub fn console_time(at: OffsetDateTime) -> String {
    let hour = at.hour();
    let (twelve, half) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    let month = match at.month() {
        time::Month::January => "Jan",
        time::Month::February => "Feb",
        time::Month::March => "Mar",
        time::Month::April => "Apr",
        time::Month::May => "May",
        time::Month::June => "Jun",
        time::Month::July => "Jul",
        time::Month::August => "Aug",
        time::Month::September => "Sep",
        time::Month::October => "Oct",
        time::Month::November => "Nov",
        time::Month::December => "Dec",
    };
    format!(
        "{month} {}, {}, {twelve}:{:02}:{:02} {half}",
        at.day(),
        at.year(),
        at.minute(),
        at.second()
    )
}

/// What one audited call did.
pub struct Outcome {
    /// `eventName`.
    pub name: &'static str,
    /// Which service.
    pub service: Service,
    /// `requestParameters`.
    pub request: Value,
    /// `responseElements` (None on failure).
    pub response: Option<Value>,
    /// The error, on failure.
    pub error: Option<AwsError>,
    /// Resources for LookupEvents, and for the record's `resources` list (type, name/ARN).
    pub resources: Vec<(String, String)>,
    /// Other accounts whose trails also get the event (cross-account AssumeRole).
    pub also_in: Option<String>,
}

/// Where and when an event happened, and who sent it.
pub struct EventContext<'a> {
    /// When.
    pub time: OffsetDateTime,
    /// The region.
    pub region: &'a str,
    /// The client's address.
    pub source_ip: &'a str,
    /// The client's User-Agent.
    pub user_agent: &'a str,
    /// The request id.
    pub request_id: &'a str,
}

impl<'a> EventContext<'a> {
    /// The context of a live call, now.
    pub fn of(call: &'a Call<'a>, time: OffsetDateTime) -> Self {
        Self {
            time,
            region: call.region,
            source_ip: call.source_ip,
            user_agent: call.user_agent,
            request_id: call.request_id,
        }
    }
}

/// Record an audited live call.
pub fn record(world: &mut World, call: &Call<'_>, outcome: Outcome) {
    let context = EventContext::of(call, world.now());
    record_at(world, &context, call.caller, outcome);
}

/// Record an event at `context.time` for `caller`.
pub fn record_at(world: &mut World, context: &EventContext<'_>, caller: &Caller, outcome: Outcome) {
    let mut record = Map::new();
    record.insert("eventVersion".into(), "1.09".into());
    record.insert("userIdentity".into(), user_identity(caller));
    record.insert("eventTime".into(), iso_seconds(context.time).into());
    record.insert("eventSource".into(), outcome.service.event_source().into());
    record.insert("eventName".into(), outcome.name.into());
    record.insert("awsRegion".into(), context.region.into());
    record.insert("sourceIPAddress".into(), context.source_ip.into());
    record.insert("userAgent".into(), context.user_agent.into());
    if let Some(error) = &outcome.error {
        let code = error
            .code
            .rsplit('#')
            .next()
            .unwrap_or(&error.code)
            .to_owned();
        record.insert("errorCode".into(), code.into());
        record.insert("errorMessage".into(), error.message.clone().into());
    }
    record.insert("requestParameters".into(), outcome.request);
    record.insert(
        "responseElements".into(),
        outcome.response.unwrap_or(Value::Null),
    );
    record.insert("requestID".into(), context.request_id.into());
    let read_only = outcome.service == Service::Sts;
    record.insert("readOnly".into(), read_only.into());
    let arn_resources: Vec<Value> = outcome
        .resources
        .iter()
        .filter(|(_, name)| name.starts_with("arn:"))
        .map(|(kind, arn)| {
            let account = arn.split(':').nth(4).unwrap_or_default();
            json!({ "accountId": account, "type": kind, "ARN": arn })
        })
        .collect();
    if !arn_resources.is_empty() {
        record.insert("resources".into(), Value::Array(arn_resources));
    }
    record.insert("eventType".into(), "AwsApiCall".into());
    record.insert("managementEvent".into(), true.into());
    if outcome.also_in.is_some() {
        record.insert(
            "sharedEventID".into(),
            uuid::Uuid::new_v4().to_string().into(),
        );
    }
    record.insert("eventCategory".into(), "Management".into());
    let home = caller.principal.account().to_owned();
    for account in std::iter::once(home).chain(outcome.also_in) {
        let id = uuid::Uuid::new_v4().to_string();
        record.insert("eventID".into(), id.clone().into());
        record.insert("recipientAccountId".into(), account.clone().into());
        world.events.push(TrailEvent {
            id,
            account,
            region: context.region.to_owned(),
            time: context.time,
            name: outcome.name.to_owned(),
            source: outcome.service.event_source().to_owned(),
            read_only,
            access_key_id: caller.access_key_id.clone(),
            username: caller.principal.short_name().to_owned(),
            resources: outcome.resources.clone(),
            record: Value::Object(record.clone()).to_string(),
        });
    }
}

/// The CloudTrail event name of an audited operation, if `operation` of `service` is one.
pub fn audited(service: Service, operation: &str) -> Option<&'static str> {
    match (service, operation) {
        (Service::Sts, "AssumeRole") => Some("AssumeRole"),
        (Service::Sts, "GetSessionToken") => Some("GetSessionToken"),
        (Service::Ssm, "StartSession") => Some("StartSession"),
        (Service::Ssm, "ResumeSession") => Some("ResumeSession"),
        (Service::Ssm, "TerminateSession") => Some("TerminateSession"),
        _ => None,
    }
}

/// `requestParameters` of an STS call, as CloudTrail writes them (`null` when there are none;
/// the MFA code itself is never written).
pub fn sts_request(action: &str, params: &crate::wire::query::Params) -> Value {
    let mut out = Map::new();
    let mut text = |name: &str, key: &str| {
        if let Some(value) = params.get(name) {
            out.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    };
    if action == "AssumeRole" {
        text("RoleArn", "roleArn");
        text("RoleSessionName", "roleSessionName");
        text("ExternalId", "externalId");
        text("SourceIdentity", "sourceIdentity");
    }
    text("SerialNumber", "serialNumber");
    if let Some(seconds) = params.get("DurationSeconds") {
        let value = seconds
            .parse::<i64>()
            .map_or_else(|_| Value::String(seconds.to_owned()), Value::from);
        out.insert("durationSeconds".into(), value);
    }
    let tags: Vec<Value> = params
        .structures("Tags.member")
        .iter()
        .map(|t| json!({ "key": t.get("Key"), "value": t.get("Value") }))
        .collect();
    if !tags.is_empty() {
        out.insert("tags".into(), Value::Array(tags));
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// `requestParameters` of an SSM session call.
pub fn ssm_request(operation: &str, body: &crate::wire::json::Body) -> Value {
    let mut out = Map::new();
    let names: &[(&str, &str)] = match operation {
        "StartSession" => &[
            ("Target", "target"),
            ("DocumentName", "documentName"),
            ("Reason", "reason"),
        ],
        _ => &[("SessionId", "sessionId")],
    };
    for (name, key) in names {
        if let Some(value) = body.get(name) {
            out.insert((*key).to_owned(), value.clone());
        }
    }
    if operation == "StartSession"
        && let Some(parameters) = body.get("Parameters")
    {
        out.insert("parameters".into(), parameters.clone());
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// The text CloudTrail writes in place of a session's stream token.
pub const HIDDEN: &str = "Value hidden due to security reasons.";

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn console_time_is_twelve_hour() {
        assert_eq!(
            console_time(datetime!(2019-10-02 23:12:29 UTC)),
            "Oct 2, 2019, 11:12:29 PM"
        );
        assert_eq!(
            console_time(datetime!(2026-01-09 00:05:00 UTC)),
            "Jan 9, 2026, 12:05:00 AM"
        );
        assert_eq!(
            console_time(datetime!(2026-07-31 12:00:01 UTC)),
            "Jul 31, 2026, 12:00:01 PM"
        );
    }
}
