//! The admin API, for tests and demos that drive a sandbox from outside its process.
//!
//! Unsigned JSON over the same loopback port, under `/_sandbox/`:
//!
//! | request | effect |
//! |---|---|
//! | `GET /_sandbox/clock` | `{"now": "2026-11-25T13:00:00Z", "unix": 1795000000}` |
//! | `POST /_sandbox/clock/advance` `{"seconds": 3600}` | move the clock forward (negative: back) |
//! | `POST /_sandbox/clock/set` `{"unix": 1795000000}` | jump to a time |
//! | `POST /_sandbox/throttle` `{"lookup_events": false, "ec2": true, "ssm": true, "limits": {"DescribeInstances": {"burst": 10, "per_second": 5}}, "refuse_next": {"DescribeInstanceInformation": 20}}` | switch the throttles (any subset), set buckets, refuse the next N calls of an action (with the throttle on); answers how many calls each action had refused |
//! | `POST /_sandbox/latency` `{"DescribeInstances": 80}` | add milliseconds to every call of an action (0: none) |
//! | `POST /_sandbox/cloudtrail` `{"delay_seconds": 300}` | LookupEvents shows an event only this long after its call |
//! | `POST /_sandbox/agent` `{"pacing": true}` | make agents pace output like the real agent |
//! | `POST /_sandbox/sessions/<id>/faults` `{…}` | inject faults ([`crate::agent::Faults`]) |
//! | `POST /_sandbox/faults` `{…}` or `null` | faults for every session started from now on |
//! | `GET /_sandbox/mfa/demo/code` | the code the demo user's MFA device shows at the sandbox's time, as text (`123456`) |
//! | `GET /_sandbox/mfa/<serial>/code` | the same for any device, by its ARN (as is, or percent-encoded) |
//!
//! TOTP codes follow the sandbox's clock, so once the clock has moved, an authenticator (or
//! `oathtool`) on the system clock shows other codes; the `code` call shows the one the sandbox
//! accepts now. It is the device's display: a code already used is still shown until the next
//! step, and still refused (each code is accepted once).

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse as _, Response};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::{Value, json};

use crate::shared::Shared;
use crate::wire::iso_seconds;

/// Serve one admin request.
pub async fn handle(shared: &Arc<Shared>, method: &Method, path: &str, body: Body) -> Response {
    let bytes = match Limited::new(body, 64 * 1024).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "admin requests are small JSON objects",
            );
        }
    };
    let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(e) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not JSON: {e}"),
                );
            }
        }
    };
    let clock = shared.world().clock.clone();
    match (method.as_str(), path) {
        ("GET", p) if p.starts_with("/_sandbox/mfa/") && p.ends_with("/code") => {
            let device = &p["/_sandbox/mfa/".len()..p.len() - "/code".len()];
            return mfa_code(shared, device);
        }
        ("GET", "/_sandbox/clock") => {}
        ("POST", "/_sandbox/clock/advance") => {
            let Some(seconds) = body.get("seconds").and_then(Value::as_i64) else {
                return problem(StatusCode::BAD_REQUEST, "send {\"seconds\": N}");
            };
            clock.advance(time::Duration::seconds(seconds));
        }
        ("POST", "/_sandbox/clock/set") => {
            let at = body
                .get("unix")
                .and_then(Value::as_i64)
                .and_then(|unix| time::OffsetDateTime::from_unix_timestamp(unix).ok());
            let Some(at) = at else {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "send {\"unix\": seconds since 1970}",
                );
            };
            clock.set(at);
        }
        ("POST", "/_sandbox/agent") => {
            let Some(on) = body.get("pacing").and_then(Value::as_bool) else {
                return problem(StatusCode::BAD_REQUEST, "send {\"pacing\": true or false}");
            };
            shared.world().agent_pacing = on;
            return admin_json(StatusCode::OK, json!({ "pacing": on }));
        }
        ("POST", p) if p.starts_with("/_sandbox/sessions/") && p.ends_with("/faults") => {
            let id = &p["/_sandbox/sessions/".len()..p.len() - "/faults".len()];
            let faults: crate::agent::Faults = match serde_json::from_value(body) {
                Ok(faults) => faults,
                Err(e) => {
                    return problem(StatusCode::BAD_REQUEST, &format!("not a fault set: {e}"));
                }
            };
            shared.world().faults.insert(id.to_owned(), faults);
            return admin_json(StatusCode::OK, json!({ "session": id }));
        }
        ("POST", "/_sandbox/faults") => {
            let faults: Option<crate::agent::Faults> = match serde_json::from_value(body) {
                Ok(faults) => faults,
                Err(e) => {
                    return problem(StatusCode::BAD_REQUEST, &format!("not a fault set: {e}"));
                }
            };
            shared.world().new_session_faults = faults;
            return admin_json(StatusCode::OK, json!({ "armed": true }));
        }
        ("POST", "/_sandbox/throttle") => {
            return throttle(shared, &body);
        }
        ("POST", "/_sandbox/latency") => {
            let Some(actions) = body.as_object() else {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "send {\"DescribeInstances\": 80, …} (milliseconds; 0 for none)",
                );
            };
            let mut world = shared.world();
            for (action, ms) in actions {
                let Some(ms) = ms.as_u64() else {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        &format!("{action}: milliseconds, a whole number"),
                    );
                };
                if ms == 0 {
                    world.throttles.latency.remove(action);
                } else {
                    world
                        .throttles
                        .latency
                        .insert(action.clone(), std::time::Duration::from_millis(ms));
                }
            }
            let latency: serde_json::Map<String, Value> = world
                .throttles
                .latency
                .iter()
                .map(|(a, d)| (a.clone(), json!(d.as_millis() as u64)))
                .collect();
            return admin_json(StatusCode::OK, Value::Object(latency));
        }
        ("POST", "/_sandbox/cloudtrail") => {
            let Some(seconds) = body.get("delay_seconds").and_then(Value::as_i64) else {
                return problem(StatusCode::BAD_REQUEST, "send {\"delay_seconds\": 300}");
            };
            shared.world().cloudtrail_delay = time::Duration::seconds(seconds.max(0));
            return admin_json(StatusCode::OK, json!({ "delay_seconds": seconds.max(0) }));
        }
        _ => {
            return problem(
                StatusCode::NOT_FOUND,
                "unknown admin call: GET /_sandbox/clock, POST /_sandbox/clock/advance, POST /_sandbox/clock/set, GET /_sandbox/mfa/demo/code, POST /_sandbox/throttle, POST /_sandbox/latency, POST /_sandbox/cloudtrail",
            );
        }
    }
    let now = clock.now();
    admin_json(
        StatusCode::OK,
        json!({ "now": iso_seconds(now), "unix": now.unix_timestamp() }),
    )
}

/// `POST /_sandbox/throttle`: switch the throttles (`lookup_events`, `ec2`, `ssm`: booleans) and
/// set buckets (`limits`: `{"DescribeInstances": {"burst": 10, "per_second": 5}}`); answers the
/// throttles in force and how many calls each action had refused.
fn throttle(shared: &Shared, body: &Value) -> Response {
    let Some(fields) = body.as_object() else {
        return problem(StatusCode::BAD_REQUEST, "send a JSON object");
    };
    let mut world = shared.world();
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("lookup_events", Value::Bool(on)) => world.lookup_throttle = *on,
            ("ec2", Value::Bool(on)) => world.throttles.ec2 = *on,
            ("ssm", Value::Bool(on)) => world.throttles.ssm = *on,
            ("refuse_next", Value::Object(actions)) => {
                for (action, count) in actions {
                    let Some(count) = count.as_u64() else {
                        return problem(
                            StatusCode::BAD_REQUEST,
                            &format!("refuse_next.{action}: a number of calls"),
                        );
                    };
                    world.throttles.refuse_next.insert(action.clone(), count);
                }
            }
            ("limits", Value::Object(limits)) => {
                for (action, limit) in limits {
                    match serde_json::from_value::<crate::throttle::RateLimit>(limit.clone()) {
                        Ok(limit) => {
                            world.throttles.limits.insert(action.clone(), limit);
                        }
                        Err(e) => {
                            return problem(
                                StatusCode::BAD_REQUEST,
                                &format!(
                                    "limits.{action}: {{\"burst\": N, \"per_second\": N}}: {e}"
                                ),
                            );
                        }
                    }
                }
                world.throttles.reset();
            }
            _ => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "unknown or bad field {key}: send any of {{\"lookup_events\": bool, \"ec2\": bool, \"ssm\": bool, \"limits\": {{\"Action\": {{\"burst\": N, \"per_second\": N}}}}}}"
                    ),
                );
            }
        }
    }
    admin_json(
        StatusCode::OK,
        json!({
            "lookup_events": world.lookup_throttle,
            "ec2": world.throttles.ec2,
            "ssm": world.throttles.ssm,
            "refused": world.throttles.refused,
        }),
    )
}

/// The code MFA device `device` (`demo`, or a serial) shows now, as a line of text.
fn mfa_code(shared: &Shared, device: &str) -> Response {
    let world = shared.world();
    let serial = match device {
        "demo" => match &world.demo {
            Some(demo) => demo.mfa_serial.clone(),
            None => {
                return problem(
                    StatusCode::NOT_FOUND,
                    "this scenario has no [demo] user: name the device by its serial",
                );
            }
        },
        other => match percent_decode(other) {
            Some(serial) => serial,
            None => return problem(StatusCode::BAD_REQUEST, "the serial is not valid UTF-8"),
        },
    };
    let now = world.now();
    let Some((_, _, device)) = world.mfa_devices.get(&serial) else {
        return problem(
            StatusCode::NOT_FOUND,
            &format!("no MFA device {serial} (GET /_sandbox/mfa/demo/code for the demo user's)"),
        );
    };
    let code = device.secret.code_at(now);
    let mut response = (StatusCode::OK, format!("{code}\n")).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Decode `%XX` escapes (and nothing else: a `+` stays a `+`, as IAM allows it in device names).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn problem(status: StatusCode, message: &str) -> Response {
    admin_json(status, json!({ "error": message }))
}

/// A plain JSON answer for the admin API.
pub fn admin_json(status: StatusCode, value: serde_json::Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn serials_decode_from_paths() {
        assert_eq!(
            percent_decode("arn%3Aaws%3Aiam%3A%3A210987654321%3Amfa%2Fdemo").as_deref(),
            Some("arn:aws:iam::210987654321:mfa/demo")
        );
        assert_eq!(
            percent_decode("arn:aws:iam::1:mfa/a+b%zz%4").as_deref(),
            Some("arn:aws:iam::1:mfa/a+b%zz%4")
        );
        assert_eq!(percent_decode("%ff"), None);
    }
}
