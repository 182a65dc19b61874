//! awsJson1_1 requests (SSM and CloudTrail): the body as a JSON object, with typed lookups.

use serde_json::{Map, Value};

use super::AwsError;

/// The JSON body of a request; `{}` when the body is empty, as the SDKs send for no input.
#[derive(Clone, Debug)]
pub struct Body {
    object: Map<String, Value>,
}

impl Body {
    /// Parse a request body; anything but a JSON object is a `SerializationException`.
    pub fn parse(bytes: &[u8]) -> Result<Self, AwsError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self { object: Map::new() });
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(object)) => Ok(Self { object }),
            Ok(_) => Err(serialization("the request body must be a JSON object")),
            Err(e) => Err(serialization(&format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }

    /// A member, if present and not null.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.object.get(name).filter(|v| !v.is_null())
    }

    /// A string member; a member of another type is a `SerializationException`.
    pub fn string(&self, name: &str) -> Result<Option<&str>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(serialization(&format!("{name} must be a string"))),
        }
    }

    /// A required string member, or a `ValidationException` naming it.
    pub fn required_string(&self, name: &str) -> Result<&str, AwsError> {
        self.string(name)?.ok_or_else(|| {
            AwsError::bad_request(
                "ValidationException",
                format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(name)),
            )
        })
    }

    /// An integer member.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| serialization(&format!("{name} must be an integer"))),
            Some(_) => Err(serialization(&format!("{name} must be a number"))),
        }
    }

    /// A list member (an empty list when absent).
    pub fn list(&self, name: &str) -> Result<&[Value], AwsError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(serialization(&format!("{name} must be a list"))),
        }
    }

    /// A timestamp member: JSON 1.1 sends epoch seconds as a number.
    pub fn timestamp(&self, name: &str) -> Result<Option<time::OffsetDateTime>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let seconds = n
                    .as_f64()
                    .ok_or_else(|| serialization(&format!("{name} must be a timestamp")))?;
                let nanos = (seconds * 1e9) as i128;
                time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
                    .map(Some)
                    .map_err(|_| serialization(&format!("{name} is out of range")))
            }
            Some(_) => Err(serialization(&format!(
                "{name} must be a timestamp (epoch seconds)"
            ))),
        }
    }
}

/// The error the JSON services answer for a body they cannot read.
pub fn serialization(message: &str) -> AwsError {
    AwsError::bad_request("SerializationException", message)
}

/// `InstanceId` → `instanceId`, as AWS names members in validation messages.
pub fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// Epoch seconds with milliseconds, as JSON 1.1 writes timestamps.
pub fn epoch(at: time::OffsetDateTime) -> Value {
    let millis = at.unix_timestamp_nanos() / 1_000_000;
    serde_json::Number::from_f64(millis as f64 / 1000.0).map_or(Value::Null, Value::Number)
}
