//! Postern's journal of the sessions it opened: `history.jsonl` in Postern's folder, a line when
//! StartSession answers and a line when the session ends (and how). It lets a session show in
//! history at once, before CloudTrail delivers its event, and says how sessions ended better than
//! AWS can. It holds ids, names, ports and times; never a token, a key or a command line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::credentials::unix_now;
use crate::history::{Entry, Kind, Source};
use crate::inventory::listing::role_of;
use crate::paths::{Paths, write_atomically};
use crate::session::{SessionEnd, SessionRequest};

/// How long lines are kept: CloudTrail's 90 days.
pub const KEEP: u64 = 90 * 24 * 3600;
/// The journal is pruned once it is this big.
const PRUNE_AT: u64 = 512 * 1024;

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Line {
    Started {
        session_id: String,
        identity: String,
        account: Option<String>,
        role: Option<String>,
        region: String,
        target: String,
        document: Option<String>,
        #[serde(default)]
        parameters: BTreeMap<String, Vec<String>>,
        at: u64,
    },
    Ended {
        session_id: String,
        at: u64,
        how: String,
    },
}

/// Where the sessions of one identity are journaled.
#[derive(Clone, Debug)]
pub struct Journal {
    paths: Paths,
    identity: String,
    account: Option<String>,
    role: Option<String>,
}

fn file(paths: &Paths) -> PathBuf {
    paths.home().join("history.jsonl")
}

/// How an end reads in history.
pub fn how_it_ended(end: &SessionEnd) -> String {
    match end {
        SessionEnd::ClosedByUser => "closed by you".into(),
        SessionEnd::Closed { reason: None } => "ended on the instance".into(),
        SessionEnd::Closed {
            reason: Some(reason),
        } => format!("closed by AWS: {reason}"),
        SessionEnd::Failed(why) => format!("failed: {why}"),
    }
}

impl Journal {
    /// The journal for sessions `identity` (a profile, or `environment`) opens; `arn` is the
    /// credentials' ARN when known (the account and role come from it).
    pub fn new(paths: &Paths, identity: &str, arn: Option<&str>) -> Self {
        Self {
            paths: paths.clone(),
            identity: identity.to_owned(),
            account: arn.and_then(|a| a.split(':').nth(4)).map(str::to_owned),
            role: arn.and_then(role_of),
        }
    }

    fn append(&self, line: &Line) {
        let written = (|| -> std::io::Result<()> {
            let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
            text.push('\n');
            self.paths.ensure_home().map_err(std::io::Error::other)?;
            self.paths.with_lock("history", || {
                let mut options = std::fs::OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut out = options.open(file(&self.paths))?;
                out.write_all(text.as_bytes())
            })?
        })();
        if let Err(e) = written {
            tracing::warn!("cannot write the session journal: {e}");
        }
    }

    /// StartSession answered `session_id` for `request` in `region` (so it no longer refuses
    /// this identity the instance: the inventory forgets an earlier refusal).
    pub async fn started(&self, region: &str, request: &SessionRequest, session_id: &str) {
        let line = Line::Started {
            session_id: session_id.to_owned(),
            identity: self.identity.clone(),
            account: self.account.clone(),
            role: self.role.clone(),
            region: region.to_owned(),
            target: request.target.clone(),
            document: request.document.clone(),
            parameters: Kind::shown_parameters(&request.parameters),
            at: unix_now(),
        };
        self.write(line).await;
    }

    /// Session `session_id` ended so.
    pub async fn ended(&self, session_id: &str, end: &SessionEnd) {
        let line = Line::Ended {
            session_id: session_id.to_owned(),
            at: unix_now(),
            how: how_it_ended(end),
        };
        self.write(line).await;
    }

    async fn write(&self, line: Line) {
        let journal = self.clone();
        // File locks and writes block; the runtime's threads must not.
        let _ = tokio::task::spawn_blocking(move || {
            journal.append(&line);
            if let Line::Started { target, .. } = &line {
                crate::inventory::remember_answer(&journal.paths, &journal.identity, target, false);
            }
        })
        .await;
    }

    /// Every session in the journal, started at or after `since`; lines that cannot be read are
    /// skipped. A journal grown past its size is pruned of sessions older than [`KEEP`].
    pub fn read(paths: &Paths, since: u64) -> Vec<Entry> {
        let path = file(paths);
        let read = paths.with_lock("history", || -> std::io::Result<Vec<Line>> {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let lines: Vec<Line> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if text.len() as u64 > PRUNE_AT {
                prune(&path, &lines)?;
            }
            Ok(lines)
        });
        let lines = match read {
            Ok(Ok(lines)) => lines,
            Ok(Err(e)) | Err(e) => {
                tracing::warn!("cannot read the session journal: {e}");
                return Vec::new();
            }
        };
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        for line in lines {
            match line {
                Line::Started {
                    session_id,
                    identity,
                    account,
                    role,
                    region,
                    target,
                    document,
                    parameters,
                    at,
                } => {
                    let mut entry = Entry::new(&session_id, &region, Source::Journal);
                    entry.instance_id = target;
                    entry.kind = Kind::of(document.as_deref(), &parameters);
                    entry.document =
                        Some(document.unwrap_or_else(|| "SSM-SessionManagerRunShell".into()));
                    entry.identity = Some(identity);
                    entry.account = account;
                    entry.role = role;
                    entry.started_at(at, Source::Journal);
                    entries.insert(session_id, entry);
                }
                Line::Ended {
                    session_id,
                    at,
                    how,
                } => {
                    if let Some(entry) = entries.get_mut(&session_id) {
                        entry.ended_at(at, Source::Journal);
                        entry.ended = Some(how);
                    }
                }
            }
        }
        entries
            .into_values()
            .filter(|e| e.start.is_some_and(|s| s >= since))
            .collect()
    }
}

/// Keep the lines of sessions started within [`KEEP`] (called under the journal's lock).
fn prune(path: &std::path::Path, lines: &[Line]) -> std::io::Result<()> {
    let keep_after = unix_now().saturating_sub(KEEP);
    let old: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Started { session_id, at, .. } if *at < keep_after => Some(session_id.as_str()),
            _ => None,
        })
        .collect();
    let mut text = String::new();
    for line in lines {
        let id = match line {
            Line::Started { session_id, .. } | Line::Ended { session_id, .. } => session_id,
        };
        if !old.contains(id.as_str()) {
            text.push_str(&serde_json::to_string(line).map_err(std::io::Error::other)?);
            text.push('\n');
        }
    }
    write_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_is_journaled_at_start_and_at_its_end_without_its_command() {
        let dir = std::env::temp_dir().join(format!("postern-journal-{}", uuid::Uuid::new_v4()));
        let paths = Paths::at(&dir);
        let journal = Journal::new(
            &paths,
            "dev",
            Some("arn:aws:sts::210987654321:assumed-role/developer/demo"),
        );
        let request = SessionRequest::command("i-0123456789abcdef0", "echo hunter2");
        journal.started("eu-west-1", &request, "demo-1").await;
        let open = Journal::read(&paths, 0);
        assert_eq!(open.len(), 1);
        assert!(open[0].is_open());
        assert_eq!(open[0].kind, Kind::Command);
        assert_eq!(open[0].role.as_deref(), Some("developer"));
        assert_eq!(open[0].account.as_deref(), Some("210987654321"));
        journal.ended("demo-1", &SessionEnd::ClosedByUser).await;
        std::fs::write(
            file(&paths),
            std::fs::read_to_string(file(&paths)).unwrap_or_default() + "{broken\n",
        )
        .expect("append");
        let done = Journal::read(&paths, 0);
        assert_eq!(done[0].ended.as_deref(), Some("closed by you"));
        assert!(done[0].end.is_some());
        let text = std::fs::read_to_string(file(&paths)).expect("journal");
        assert!(!text.contains("hunter2"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
