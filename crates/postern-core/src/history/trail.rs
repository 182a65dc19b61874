//! CloudTrail's record of sessions: LookupEvents' events read into [`TrailRecord`]s, and the
//! cache of what was already read (`history.json` in Postern's folder).
//!
//! The cache holds what the records say of sessions (ids, instances, documents, ports, times,
//! addresses, role and session names), never an access key id, a token or a command line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::{Entry, Kind, Me, Source};
use crate::paths::{Paths, write_atomically};

/// Who made a call, as its record says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    /// LookupEvents' `Username`: the role session name, or the IAM user name.
    pub username: String,
    /// The SourceIdentity of the caller's session.
    pub source_identity: Option<String>,
    /// The caller's ARN.
    pub arn: Option<String>,
    /// The role, for an assumed-role caller.
    pub role: Option<String>,
}

/// A session event CloudTrail recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailRecord {
    /// `eventID`.
    pub event_id: String,
    /// `StartSession`, `ResumeSession` or `TerminateSession`.
    pub name: String,
    /// When (seconds since the epoch).
    pub time: u64,
    /// The account whose trail holds it.
    pub account: String,
    /// The region.
    pub region: String,
    /// Who.
    pub who: Who,
    /// The session.
    pub session_id: Option<String>,
    /// The instance (StartSession).
    pub target: Option<String>,
    /// The document (StartSession).
    pub document: Option<String>,
    /// Ports and hosts of the parameters (never a command line).
    pub parameters: BTreeMap<String, Vec<String>>,
    /// `sourceIPAddress`.
    pub source_ip: Option<String>,
    /// `mfaAuthenticated`.
    pub mfa: Option<bool>,
    /// `errorCode`, for a refused call.
    pub error: Option<String>,
}

/// The session event names history reads.
pub const SESSION_EVENTS: &[&str] = &["StartSession", "ResumeSession", "TerminateSession"];

fn text(value: &Value, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str().map(str::to_owned)
}

impl TrailRecord {
    /// Read one LookupEvents event: its id, name, time and user name, and the JSON record it
    /// carries. `None` for events that are not session events or cannot be read (a record
    /// that is not JSON is skipped, not an error: one odd event must not hide the rest).
    pub fn read(
        event_id: &str,
        name: &str,
        time: u64,
        username: Option<&str>,
        record: &str,
    ) -> Option<Self> {
        if !SESSION_EVENTS.contains(&name) {
            return None;
        }
        let record: Value = serde_json::from_str(record).ok()?;
        let identity = record.get("userIdentity")?;
        let context = identity.get("sessionContext");
        let who = Who {
            username: username
                .map(str::to_owned)
                .or_else(|| text(identity, &["userName"]))
                .or_else(|| {
                    text(identity, &["arn"]).and_then(|arn| arn.rsplit('/').next().map(Into::into))
                })
                .unwrap_or_default(),
            source_identity: context.and_then(|c| text(c, &["sourceIdentity"])),
            arn: text(identity, &["arn"]),
            role: context.and_then(|c| {
                (text(c, &["sessionIssuer", "type"]).as_deref() == Some("Role"))
                    .then(|| text(c, &["sessionIssuer", "userName"]))
                    .flatten()
            }),
        };
        let request = record.get("requestParameters");
        let response = record.get("responseElements");
        let session_id = match name {
            "StartSession" => response.and_then(|r| text(r, &["sessionId"])),
            _ => request
                .and_then(|r| text(r, &["sessionId"]))
                .or_else(|| response.and_then(|r| text(r, &["sessionId"]))),
        };
        let parameters: BTreeMap<String, Vec<String>> = request
            .and_then(|r| r.get("parameters"))
            .and_then(Value::as_object)
            .map(|object| {
                object
                    .iter()
                    .map(|(k, v)| {
                        let values = match v {
                            Value::Array(list) => list
                                .iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect(),
                            Value::String(s) => vec![s.clone()],
                            _ => Vec::new(),
                        };
                        (k.clone(), values)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            event_id: event_id.to_owned(),
            name: name.to_owned(),
            time,
            account: text(&record, &["recipientAccountId"])
                .or_else(|| text(identity, &["accountId"]))
                .unwrap_or_default(),
            region: text(&record, &["awsRegion"]).unwrap_or_default(),
            who,
            session_id,
            target: request.and_then(|r| text(r, &["target"])),
            document: request.and_then(|r| text(r, &["documentName"])),
            parameters: Kind::shown_parameters(&parameters),
            source_ip: text(&record, &["sourceIPAddress"]),
            mfa: context
                .and_then(|c| text(c, &["attributes", "mfaAuthenticated"]))
                .map(|m| m == "true"),
            error: text(&record, &["errorCode"]),
        })
    }

    /// What this event says of its session, if it is `me`'s: an entry, or for another
    /// person's StartSession, the session id to keep out.
    pub fn judge(&self, me: &Me) -> Judged {
        let Some(id) = &self.session_id else {
            return Judged::Nothing;
        };
        if self.error.is_some() {
            return Judged::Nothing;
        }
        if !me.owns(&self.who) {
            return if self.name == "StartSession" {
                Judged::NotMine(id.clone())
            } else {
                Judged::Nothing
            };
        }
        let mut entry = Entry::new(id, &self.region, Source::Cloudtrail);
        entry.event_ids.insert(self.event_id.clone());
        entry.account = Some(self.account.clone()).filter(|a| !a.is_empty());
        entry.role = self.who.role.clone();
        match self.name.as_str() {
            "StartSession" => {
                entry.instance_id = self.target.clone().unwrap_or_default();
                entry.document = Some(
                    self.document
                        .clone()
                        .unwrap_or_else(|| "SSM-SessionManagerRunShell".into()),
                );
                entry.kind = Kind::of(self.document.as_deref(), &self.parameters);
                entry.started_at(self.time, Source::Cloudtrail);
                entry.source_ip = self.source_ip.clone();
                entry.mfa = self.mfa;
                entry.source_identity = self.who.source_identity.clone();
            }
            "TerminateSession" => {
                entry.ended_at(self.time, Source::Cloudtrail);
                entry.ended = Some("terminated".into());
            }
            _ => {}
        }
        Judged::Entry(Box::new(entry))
    }
}

/// What one event says for the caller's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judged {
    /// Part of one of the caller's sessions.
    Entry(Box<Entry>),
    /// Another person started this session.
    NotMine(String),
    /// Nothing (a refused call, or another person's end of a session).
    Nothing,
}

/// What was read from one account, region and user name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Covered {
    /// The earliest time read through (seconds since the epoch).
    pub from: u64,
    /// The latest.
    pub until: u64,
    /// The records, by event id.
    pub records: BTreeMap<String, TrailRecord>,
}

/// CloudTrail's records already read, by `account|region|username`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrailCache {
    version: u32,
    /// What was read, by lookup.
    pub lookups: BTreeMap<String, Covered>,
}

const VERSION: u32 = 1;

fn file(paths: &Paths) -> PathBuf {
    paths.home().join("history.json")
}

impl TrailCache {
    /// The key of one lookup.
    pub fn key(account: &str, region: &str, username: &str) -> String {
        format!("{account}|{region}|{username}")
    }

    /// The cache; empty when there is none or it cannot be read (it is only a cache).
    pub fn load(paths: &Paths) -> Self {
        std::fs::read_to_string(file(paths))
            .ok()
            .and_then(|text| serde_json::from_str::<TrailCache>(&text).ok())
            .filter(|cache| cache.version == VERSION)
            .unwrap_or_default()
    }

    /// Write it, dropping records older than `keep_after` (CloudTrail's 90 days).
    pub fn store(&mut self, paths: &Paths, keep_after: u64) -> std::io::Result<()> {
        for covered in self.lookups.values_mut() {
            covered.records.retain(|_, r| r.time >= keep_after);
            covered.from = covered.from.max(keep_after.min(covered.until));
        }
        paths.ensure_home().map_err(std::io::Error::other)?;
        self.version = VERSION;
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        write_atomically(&file(paths), &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole",
        "principalId":"AROA:demo","arn":"arn:aws:sts::210987654321:assumed-role/developer/demo",
        "accountId":"210987654321","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":
        {"type":"Role","userName":"developer"},"attributes":{"mfaAuthenticated":"true"},
        "sourceIdentity":"demo"}},"eventTime":"2026-12-01T10:00:00Z","eventName":"StartSession",
        "awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.7","requestParameters":{"target":
        "i-0123456789abcdef0","documentName":"AWS-StartPortForwardingSessionToRemoteHost",
        "parameters":{"host":["db.internal"],"portNumber":["5432"],"localPortNumber":["0"]}},
        "responseElements":{"sessionId":"demo-0abc","tokenValue":"Value hidden due to security reasons.",
        "streamUrl":"wss://x"},"recipientAccountId":"210987654321"}"#;

    #[test]
    fn a_start_session_record_reads_into_a_whole_entry() {
        let record = TrailRecord::read("e1", "StartSession", 1000, Some("demo"), START)
            .expect("a session event");
        assert_eq!(record.who.role.as_deref(), Some("developer"));
        assert!(!record.parameters.contains_key("localPortNumber"));
        let me = Me::new(
            "210987654321",
            "arn:aws:sts::210987654321:assumed-role/developer/demo",
            Some("demo".into()),
        );
        let Judged::Entry(entry) = record.judge(&me) else {
            panic!("own session");
        };
        assert_eq!(entry.instance_id, "i-0123456789abcdef0");
        assert_eq!(
            entry.kind,
            Kind::Tunnel {
                port: Some(5432),
                host: Some("db.internal".into())
            }
        );
        assert_eq!(entry.mfa, Some(true));
        assert_eq!(entry.source_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(entry.region, "eu-west-1");
        let erin = Me::new(
            "210987654321",
            "arn:aws:sts::210987654321:assumed-role/developer/erin",
            Some("erin".into()),
        );
        assert_eq!(record.judge(&erin), Judged::NotMine("demo-0abc".into()));
    }

    #[test]
    fn odd_records_are_skipped_not_fatal() {
        assert!(TrailRecord::read("e", "StartSession", 1, None, "not json").is_none());
        assert!(TrailRecord::read("e", "StartSession", 1, None, "{}").is_none());
        assert!(TrailRecord::read("e", "AssumeRole", 1, None, START).is_none());
    }
}
