//! AWS CloudTrail: LookupEvents over the sandbox's recorded and seeded management events.
//!
//! One lookup attribute per call (EventId, EventName, ReadOnly, Username, ResourceType,
//! ResourceName, EventSource, AccessKeyId), a time range (the last 90 days by default),
//! MaxResults 1 to 50, NextToken; newest first; the caller's account and the signed region only.
//! Throttled at 2 requests per second per account and region with `ThrottlingException`, as AWS
//! throttles it; the throttle can be switched off for tests that do not test it. The messages of
//! the `Invalid…Exception` errors are not documented by AWS and are the sandbox's own wording.

use serde_json::{Value, json};
use time::Duration;

use crate::services::{Call, page};
use crate::trail::TrailEvent;
use crate::wire::AwsError;
use crate::wire::json::{Body, epoch};
use crate::world::World;

const KEYS: &[&str] = &[
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

/// Run the CloudTrail operation `operation` with `body`.
pub fn handle(
    world: &mut World,
    call: &Call<'_>,
    operation: &str,
    body: &Body,
) -> Result<Value, AwsError> {
    match operation {
        "LookupEvents" => lookup_events(world, call, body),
        _ => Err(AwsError::bad_request("UnknownOperationException", "")),
    }
}

fn throttle(world: &mut World, account: &str, region: &str) -> Result<(), AwsError> {
    if !world.lookup_throttle {
        return Ok(());
    }
    if let Some(left) = world.throttles.refuse_next.get_mut("LookupEvents")
        && *left > 0
    {
        *left -= 1;
        *world
            .throttles
            .refused
            .entry("LookupEvents".into())
            .or_default() += 1;
        return Err(AwsError::bad_request(
            "ThrottlingException",
            "Rate exceeded",
        ));
    }
    let now = world.now();
    let recent = world
        .lookups
        .entry((account.to_owned(), region.to_owned()))
        .or_default();
    // Calls older than a second are not recent, nor are calls "later" than now (the clock was
    // moved back): they would hold the throttle shut until the clock caught up.
    recent.retain(|t| *t <= now && now - *t < Duration::SECOND);
    if recent.len() >= 2 {
        *world
            .throttles
            .refused
            .entry("LookupEvents".into())
            .or_default() += 1;
        return Err(AwsError::bad_request(
            "ThrottlingException",
            "Rate exceeded",
        ));
    }
    recent.push_back(now);
    Ok(())
}

fn lookup_events(world: &mut World, call: &Call<'_>, body: &Body) -> Result<Value, AwsError> {
    let account = call.caller.principal.account().to_owned();
    call.authorize_json(
        world,
        "cloudtrail:LookupEvents",
        &format!("arn:aws:cloudtrail:{}:{account}:*", call.region),
        [],
    )?;
    throttle(world, &account, call.region)?;

    let attributes = body.list("LookupAttributes")?;
    if attributes.len() > 1 {
        return Err(AwsError::bad_request(
            "InvalidLookupAttributesException",
            "You can specify at most one lookup attribute per request.",
        ));
    }
    let attribute = match attributes.first() {
        None => None,
        Some(item) => {
            let key = item
                .get("AttributeKey")
                .and_then(Value::as_str)
                .unwrap_or("");
            let value = item
                .get("AttributeValue")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !KEYS.contains(&key) {
                return Err(AwsError::bad_request(
                    "InvalidLookupAttributesException",
                    format!(
                        "'{key}' is not a valid lookup attribute key; use one of {}.",
                        KEYS.join(", ")
                    ),
                ));
            }
            if value.is_empty() || value.len() > 2000 {
                return Err(AwsError::bad_request(
                    "InvalidLookupAttributesException",
                    "The lookup attribute value must be 1 to 2000 characters.",
                ));
            }
            Some((key, value))
        }
    };
    let now = world.now();
    let start = body
        .timestamp("StartTime")?
        .unwrap_or(now - Duration::days(90));
    let end = body.timestamp("EndTime")?.unwrap_or(now);
    if start > end {
        return Err(AwsError::bad_request(
            "InvalidTimeRangeException",
            "The start time must be before the end time.",
        ));
    }
    if let Some(category) = body.string("EventCategory")?
        && category != "insight"
    {
        return Err(AwsError::bad_request(
            "InvalidEventCategoryException",
            format!("'{category}' is not a valid event category; the only one is 'insight'."),
        ));
    }
    let insights_only = body.string("EventCategory")?.is_some();
    let max = body.integer("MaxResults")?.unwrap_or(50);
    if !(1..=50).contains(&max) {
        return Err(AwsError::bad_request(
            "InvalidMaxResultsException",
            "MaxResults must be from 1 to 50.",
        ));
    }
    let matches = |event: &TrailEvent| match attribute {
        None => true,
        Some(("EventId", v)) => event.id == v,
        Some(("EventName", v)) => event.name == v,
        Some(("ReadOnly", v)) => event.read_only.to_string() == v,
        Some(("Username", v)) => event.username == v,
        Some(("ResourceType", v)) => event.resources.iter().any(|(t, _)| t == v),
        Some(("ResourceName", v)) => event.resources.iter().any(|(_, n)| n == v),
        Some(("EventSource", v)) => event.source == v,
        Some(("AccessKeyId", v)) => event.access_key_id == v,
        Some(_) => false,
    };
    // Events are delivered `cloudtrail_delay` after their call, as CloudTrail delivers late.
    let delivered = world.now() - world.cloudtrail_delay;
    let selected: Vec<&TrailEvent> = world
        .events
        .iter()
        .rev()
        .filter(|e| !insights_only && e.account == account && e.region == call.region)
        .filter(|e| e.time <= delivered)
        .filter(|e| e.time >= start && e.time <= end && matches(e))
        .collect();
    // The token names the query as asked: a range left open stays the same query while `now`
    // moves on between pages.
    let query = format!(
        "le|{account}|{}|{attribute:?}|{:?}|{:?}|{max}",
        call.region,
        body.timestamp("StartTime")?,
        body.timestamp("EndTime")?,
    );
    let from = match body.string("NextToken")? {
        None => 0,
        Some(token) => page::offset(token, &query)
            .filter(|&o| o <= selected.len())
            .ok_or_else(|| {
                AwsError::bad_request(
                    "InvalidNextTokenException",
                    "The NextToken is not valid for this query.",
                )
            })?,
    };
    let to = (from + max as usize).min(selected.len());
    let events: Vec<Value> = selected[from..to]
        .iter()
        .map(|e| {
            json!({
                "EventId": e.id,
                "EventName": e.name,
                "ReadOnly": e.read_only.to_string(),
                "AccessKeyId": e.access_key_id,
                "EventTime": epoch(e.time),
                "EventSource": e.source,
                "Username": e.username,
                "Resources": e.resources.iter()
                    .map(|(t, n)| json!({ "ResourceType": t, "ResourceName": n }))
                    .collect::<Vec<_>>(),
                "CloudTrailEvent": e.record,
            })
        })
        .collect();
    let mut out = json!({ "Events": events });
    if to < selected.len() {
        out["NextToken"] = Value::String(page::token(&query, to));
    }
    Ok(out)
}
