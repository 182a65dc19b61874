//! My own sessions: what Postern's journal, SSM's DescribeSessions and CloudTrail's LookupEvents
//! say of the sessions the user opened, merged by session id.
//!
//! Three sources, each good at something:
//! - the [`journal`]: the sessions Postern itself opened on this machine, written the moment
//!   StartSession answers and again when the session ends (with how it ended). It answers at
//!   once, before CloudTrail has delivered anything (minutes on AWS).
//! - DescribeSessions (Active and History, Owner = the caller's ARN): the last 30 days of the
//!   caller's own role session, in well under a second.
//! - CloudTrail ([`trail`]): StartSession, ResumeSession and TerminateSession for up to 90 days,
//!   with the source IP, MFA and SourceIdentity; slow (2 calls per second per account and
//!   region), so it fills in progressively and is cached.
//!
//! "Own" is decided by [`Me::owns`]: the same SourceIdentity where the event carries one, else
//! the same role session name (or IAM user name). This is a view, not a control: AWS cannot
//! scope LookupEvents to one's own events, so whoever may call it may read everyone's; Postern
//! only chooses not to show them.

pub mod gather;
pub mod journal;
pub mod trail;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What kind of session it was, from its document and parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// An interactive shell (`SSM-SessionManagerRunShell`, or no document).
    Shell,
    /// A command (`AWS-StartInteractiveCommand`, `AWS-StartNonInteractiveCommand`).
    Command,
    /// Port forwarding to the instance, or through it to `host`.
    Tunnel {
        /// The port on the instance (or on `host`).
        port: Option<u16>,
        /// The remote host, when forwarding through the instance.
        host: Option<String>,
    },
    /// An SSH byte stream (`AWS-StartSSHSession`).
    Ssh {
        /// The port on the instance.
        port: Option<u16>,
    },
    /// Any other document.
    Other {
        /// The document's name.
        document: String,
    },
}

impl Kind {
    /// The kind a session of `document` with `parameters` is.
    pub fn of(document: Option<&str>, parameters: &BTreeMap<String, Vec<String>>) -> Self {
        let first = |name: &str| parameters.get(name).and_then(|v| v.first()).cloned();
        let port = first("portNumber").and_then(|p| p.trim().parse::<u16>().ok());
        match document {
            None | Some("SSM-SessionManagerRunShell") => Self::Shell,
            Some("AWS-StartInteractiveCommand" | "AWS-StartNonInteractiveCommand") => Self::Command,
            Some("AWS-StartPortForwardingSession") => Self::Tunnel { port, host: None },
            Some("AWS-StartPortForwardingSessionToRemoteHost") => Self::Tunnel {
                port,
                host: first("host"),
            },
            Some("AWS-StartSSHSession") => Self::Ssh { port },
            Some(other) => Self::Other {
                document: other.to_owned(),
            },
        }
    }

    /// A word or two for tables: `shell`, `tunnel :5432 → db.internal`.
    pub fn describe(&self) -> String {
        match self {
            Self::Shell => "shell".into(),
            Self::Command => "command".into(),
            Self::Tunnel { port, host } => {
                let port = port.map_or_else(String::new, |p| format!(" :{p}"));
                match host {
                    Some(host) => format!("tunnel{port} → {host}"),
                    None => format!("tunnel{port}"),
                }
            }
            Self::Ssh { .. } => "ssh".into(),
            Self::Other { document } => document.clone(),
        }
    }

    /// Only the parameters a kind shows (ports and hosts), never a command line: a command may
    /// hold what its author would not want in a file.
    pub fn shown_parameters(
        parameters: &BTreeMap<String, Vec<String>>,
    ) -> BTreeMap<String, Vec<String>> {
        parameters
            .iter()
            .filter(|(name, _)| matches!(name.as_str(), "portNumber" | "host"))
            .map(|(name, values)| (name.clone(), values.clone()))
            .collect()
    }
}

/// Where something about a session was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Postern's journal on this machine.
    Journal,
    /// SSM DescribeSessions.
    DescribeSessions,
    /// CloudTrail LookupEvents.
    Cloudtrail,
}

impl Source {
    /// How much its times are trusted: AWS's own record over AWS's session list over this
    /// machine's clock.
    fn rank(self) -> u8 {
        match self {
            Self::Journal => 1,
            Self::DescribeSessions => 2,
            Self::Cloudtrail => 3,
        }
    }
}

/// One session, as much as is known of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The session id.
    pub session_id: String,
    /// The instance (empty when only its end is known so far).
    pub instance_id: String,
    /// The instance's Name tag, when the inventory knows it.
    pub instance_name: Option<String>,
    /// What kind of session.
    pub kind: Kind,
    /// The session document, when known.
    pub document: Option<String>,
    /// When it started (seconds since the epoch).
    pub start: Option<u64>,
    /// When it ended; `None` while it is open or when its end is not known.
    pub end: Option<u64>,
    /// The account.
    pub account: Option<String>,
    /// The region.
    pub region: String,
    /// The role it was opened with (none for an IAM user's own credentials).
    pub role: Option<String>,
    /// The Postern identity (profile, or `environment`) that opened it, when Postern did.
    pub identity: Option<String>,
    /// The address StartSession came from (CloudTrail).
    pub source_ip: Option<String>,
    /// Whether the caller's session was MFA-authenticated (CloudTrail).
    pub mfa: Option<bool>,
    /// The SourceIdentity of the caller's session (CloudTrail).
    pub source_identity: Option<String>,
    /// The session's status in DescribeSessions (`Connected`, `Terminated`, …).
    pub status: Option<String>,
    /// How it ended: `closed by you`, `failed: …`, `terminated`, ….
    pub ended: Option<String>,
    /// The CloudTrail events that mention it.
    pub event_ids: BTreeSet<String>,
    /// Where all this was learned.
    pub sources: BTreeSet<Source>,
    #[serde(skip)]
    start_rank: u8,
    #[serde(skip)]
    end_rank: u8,
}

impl Entry {
    /// A session known only by its id and region, so far.
    pub fn new(session_id: &str, region: &str, source: Source) -> Self {
        Self {
            session_id: session_id.to_owned(),
            instance_id: String::new(),
            instance_name: None,
            kind: Kind::Shell,
            document: None,
            start: None,
            end: None,
            account: None,
            region: region.to_owned(),
            role: None,
            identity: None,
            source_ip: None,
            mfa: None,
            source_identity: None,
            status: None,
            ended: None,
            event_ids: BTreeSet::new(),
            sources: BTreeSet::from([source]),
            start_rank: 0,
            end_rank: 0,
        }
    }

    /// Set the start as `source` saw it (a more trusted source's time wins).
    pub fn started_at(&mut self, at: u64, source: Source) {
        if source.rank() >= self.start_rank {
            self.start = Some(at);
            self.start_rank = source.rank();
        }
    }

    /// Set the end as `source` saw it (a more trusted source's time wins).
    pub fn ended_at(&mut self, at: u64, source: Source) {
        if source.rank() >= self.end_rank {
            self.end = Some(at);
            self.end_rank = source.rank();
        }
    }

    /// How long it lasted (so far, for an open session, as of `now`).
    pub fn length(&self, now: u64) -> Option<u64> {
        let start = self.start?;
        let end = self.end.unwrap_or(now);
        Some(end.saturating_sub(start))
    }

    /// Whether it is still open, as far as anything says.
    pub fn is_open(&self) -> bool {
        self.end.is_none()
            && self.ended.is_none()
            && self
                .status
                .as_deref()
                .is_none_or(|s| matches!(s, "Connected" | "Connecting" | "Disconnected"))
    }

    /// Fold what another source said of the same session into this one.
    fn join(&mut self, other: Entry) {
        if self.instance_id.is_empty() {
            self.instance_id = other.instance_id;
        }
        if let Some(at) = other.start {
            self.started_at(at, ranked_source(other.start_rank));
        }
        if let Some(at) = other.end {
            self.ended_at(at, ranked_source(other.end_rank));
        }
        if other.document.is_some() && (self.document.is_none() || self.kind_is_vague()) {
            self.document = other.document;
            self.kind = other.kind;
        } else if matches!(
            (&self.kind, &other.kind),
            (
                Kind::Tunnel { port: None, .. },
                Kind::Tunnel { port: Some(_), .. }
            )
        ) {
            self.kind = other.kind;
        }
        let fill = |mine: &mut Option<String>, theirs: Option<String>| {
            if mine.is_none() {
                *mine = theirs;
            }
        };
        fill(&mut self.instance_name, other.instance_name);
        fill(&mut self.account, other.account);
        fill(&mut self.role, other.role);
        fill(&mut self.identity, other.identity);
        fill(&mut self.source_ip, other.source_ip);
        fill(&mut self.source_identity, other.source_identity);
        if other.status.is_some() {
            self.status = other.status;
        }
        // The journal knows best how a session it drove ended.
        let journal_knows = other.sources.contains(&Source::Journal) && other.ended.is_some();
        if journal_knows || self.ended.is_none() {
            self.ended = other.ended;
        }
        if self.mfa.is_none() {
            self.mfa = other.mfa;
        }
        if self.region.is_empty() {
            self.region = other.region;
        }
        self.event_ids.extend(other.event_ids);
        self.sources.extend(other.sources);
    }

    fn kind_is_vague(&self) -> bool {
        matches!(
            self.kind,
            Kind::Tunnel { port: None, .. } | Kind::Ssh { port: None }
        )
    }
}

fn ranked_source(rank: u8) -> Source {
    match rank {
        3 => Source::Cloudtrail,
        2 => Source::DescribeSessions,
        _ => Source::Journal,
    }
}

/// The caller: who "own" means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Me {
    /// The account of the caller's credentials.
    pub account: String,
    /// The caller's ARN (DescribeSessions' Owner filter).
    pub arn: String,
    /// The role session name, or the IAM user name (LookupEvents' `Username`).
    pub name: String,
    /// The SourceIdentity Postern gives the caller's roles (its chain's name), when known.
    pub identity: Option<String>,
}

impl Me {
    /// The caller, from GetCallerIdentity's answer and the chain name Postern assumed the role
    /// with (none for keys Postern did not assume itself).
    pub fn new(account: &str, arn: &str, identity: Option<String>) -> Self {
        let name = arn.rsplit('/').next().unwrap_or_default().to_owned();
        Self {
            account: account.to_owned(),
            arn: arn.to_owned(),
            name,
            identity,
        }
    }

    /// Whether an event made by `who` is the caller's own: where the event carries a
    /// SourceIdentity, it must be the caller's (the name Postern gives the chain, or for
    /// credentials Postern did not assume, the session name); otherwise the user name
    /// (role session name or IAM user name) must be the caller's.
    pub fn owns(&self, who: &trail::Who) -> bool {
        match &who.source_identity {
            Some(source) => *source == *self.identity.as_ref().unwrap_or(&self.name),
            None => who.username == self.name,
        }
    }
}

/// Part of the history, from one source.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// Sessions, or parts of what is known of them.
    pub entries: Vec<Entry>,
    /// Sessions CloudTrail says another person started: dropped wherever else they show (a
    /// colleague who chose the same role session name).
    pub not_mine: Vec<String>,
}

/// The history so far: every source's entries, merged by session id.
#[derive(Clone, Debug, Default)]
pub struct Book {
    entries: BTreeMap<String, Entry>,
    not_mine: BTreeSet<String>,
}

/// Which sessions to show.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only sessions that started at or after this (seconds since the epoch).
    pub since: u64,
    /// Only sessions on these instances (ids).
    pub instances: Option<BTreeSet<String>>,
}

impl Book {
    /// Add what a source found.
    pub fn add(&mut self, found: Found) {
        for id in found.not_mine {
            self.entries.remove(&id);
            self.not_mine.insert(id);
        }
        for entry in found.entries {
            if self.not_mine.contains(&entry.session_id) {
                continue;
            }
            match self.entries.get_mut(&entry.session_id) {
                Some(known) => known.join(entry),
                None => {
                    self.entries.insert(entry.session_id.clone(), entry);
                }
            }
        }
    }

    /// The sessions `filter` lets through, newest first (sessions whose start is not known yet
    /// last).
    pub fn entries(&self, filter: &Filter) -> Vec<&Entry> {
        let mut out: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| e.start.is_some_and(|s| s >= filter.since))
            .filter(|e| {
                filter
                    .instances
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&e.instance_id))
            })
            .collect();
        out.sort_by(|a, b| b.start.cmp(&a.start).then(a.session_id.cmp(&b.session_id)));
        out
    }

    /// Give entries their instance's name from `names` (instance id → Name tag).
    pub fn name_instances(&mut self, names: &BTreeMap<String, String>) {
        for entry in self.entries.values_mut() {
            if entry.instance_name.is_none()
                && let Some(name) = names.get(&entry.instance_id)
            {
                entry.instance_name = Some(name.clone());
            }
        }
    }
}

/// How far back: a length of time before now, or a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// This many seconds before now.
    Ago(u64),
    /// This time (seconds since the epoch).
    At(u64),
}

impl Since {
    /// The time it names, `now` being now.
    pub fn at(self, now: u64) -> u64 {
        match self {
            Self::Ago(secs) => now.saturating_sub(secs),
            Self::At(at) => at,
        }
    }
}

/// `7d`, `12h`, `30m`, `2w`, or a date (`2026-11-01`) or time (`2026-11-01T08:00:00Z`), at most
/// 90 days back (CloudTrail keeps no more).
pub fn since(text: &str) -> Result<Since, String> {
    let text = text.trim();
    let too_far = || "CloudTrail keeps 90 days of session events: ask for 90d or less".to_owned();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    if !digits.is_empty() && !unit.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        let n: u64 = digits.parse().map_err(|_| too_far())?;
        let scale = match unit {
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            other => {
                return Err(format!(
                    "`{other}` is not a unit: use m, h, d or w (7d, 12h), or a date (2026-11-01)"
                ));
            }
        };
        let secs = n.checked_mul(scale).ok_or_else(too_far)?;
        if secs > 90 * 86_400 {
            return Err(too_far());
        }
        return Ok(Since::Ago(secs));
    }
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .or_else(|| {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &format)
                .ok()
                .map(|d| d.midnight().assume_utc())
        })
        .ok_or_else(|| {
            format!("`{text}` is neither a length (7d, 12h, 30m) nor a date (2026-11-01)")
        })?;
    let at = u64::try_from(parsed.unix_timestamp()).map_err(|_| too_far())?;
    if at < gather::earliest_since(crate::credentials::unix_now()) {
        return Err(too_far());
    }
    Ok(Since::At(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
            .collect()
    }

    #[test]
    fn kinds_come_from_documents_and_ports() {
        assert_eq!(Kind::of(None, &BTreeMap::new()), Kind::Shell);
        assert_eq!(
            Kind::of(
                Some("AWS-StartPortForwardingSessionToRemoteHost"),
                &params(&[("portNumber", "5432"), ("host", "db.internal")])
            ),
            Kind::Tunnel {
                port: Some(5432),
                host: Some("db.internal".into())
            }
        );
        assert_eq!(
            Kind::of(Some("AWS-StartSSHSession"), &params(&[("portNumber", "x")])),
            Kind::Ssh { port: None }
        );
        assert_eq!(
            Kind::shown_parameters(&params(&[("command", "echo secret"), ("portNumber", "1")])),
            params(&[("portNumber", "1")])
        );
    }

    #[test]
    fn own_is_the_source_identity_else_the_session_name() {
        let me = Me::new(
            "1",
            "arn:aws:sts::1:assumed-role/developer/demo",
            Some("demo".into()),
        );
        let who = |username: &str, source: Option<&str>| trail::Who {
            username: username.into(),
            source_identity: source.map(str::to_owned),
            arn: None,
            role: None,
        };
        assert!(me.owns(&who("demo", Some("demo"))));
        // Another role session name, same person.
        assert!(me.owns(&who("ci-job", Some("demo"))));
        // Same session name, another person.
        assert!(!me.owns(&who("demo", Some("erin"))));
        assert!(me.owns(&who("demo", None)));
        assert!(!me.owns(&who("erin", None)));
    }

    #[test]
    fn a_book_merges_by_id_trusts_aws_times_and_drops_what_is_not_mine() {
        let mut book = Book::default();
        let mut journal = Entry::new("demo-1", "us-east-1", Source::Journal);
        journal.instance_id = "i-1".into();
        journal.started_at(100, Source::Journal);
        journal.ended_at(200, Source::Journal);
        journal.ended = Some("closed by you".into());
        let mut trail = Entry::new("demo-1", "us-east-1", Source::Cloudtrail);
        trail.started_at(98, Source::Cloudtrail);
        trail.source_ip = Some("127.0.0.1".into());
        trail.ended = Some("terminated".into());
        let mut listed = Entry::new("demo-1", "us-east-1", Source::DescribeSessions);
        listed.ended_at(199, Source::DescribeSessions);
        listed.status = Some("Terminated".into());
        book.add(Found {
            entries: vec![journal],
            not_mine: vec![],
        });
        book.add(Found {
            entries: vec![trail, listed],
            not_mine: vec![],
        });
        let all = book.entries(&Filter::default());
        assert_eq!(all.len(), 1);
        let e = all[0];
        assert_eq!((e.start, e.end), (Some(98), Some(199)));
        assert_eq!(e.ended.as_deref(), Some("closed by you"));
        assert_eq!(e.source_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.sources.len(), 3);

        book.add(Found {
            entries: vec![],
            not_mine: vec!["demo-1".into()],
        });
        let again = Entry::new("demo-1", "us-east-1", Source::DescribeSessions);
        book.add(Found {
            entries: vec![again],
            not_mine: vec![],
        });
        assert!(book.entries(&Filter::default()).is_empty());
    }

    #[test]
    fn since_takes_lengths_and_dates_up_to_ninety_days() {
        assert_eq!(since("7d"), Ok(Since::Ago(7 * 86_400)));
        assert_eq!(since("12h"), Ok(Since::Ago(12 * 3600)));
        assert_eq!(since("90d"), Ok(Since::Ago(90 * 86_400)));
        assert!(since("91d").unwrap_err().contains("90 days"));
        assert!(since("99999999999999999999d").is_err());
        assert!(since("3y").unwrap_err().contains("not a unit"));
        assert!(since("yesterday").unwrap_err().contains("neither"));
        assert!(since("2001-01-01").unwrap_err().contains("90 days"));
        let today = crate::credentials::format_unix(crate::credentials::unix_now());
        assert!(matches!(since(&today[..10]), Ok(Since::At(_))));
    }
}
