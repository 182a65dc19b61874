//! `postern history`: my own sessions, newest first, as a table or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use postern_core::credentials::{Resolver, format_unix, unix_now};
use postern_core::history::gather::{Event, Gathering, Request, earliest_since};
use postern_core::history::{Book, Entry, Filter, Kind, Since, Source};
use postern_core::inventory::cache::Cache;
use postern_core::inventory::listing::Limits;

/// What `postern history` was asked.
pub(crate) struct Ask<'a> {
    pub since: Since,
    pub instance: Option<&'a str>,
    pub json: bool,
    pub fleet: bool,
    pub profile: Option<&'a str>,
    pub region: Option<&'a str>,
}

pub(crate) async fn history(resolver: &Arc<Resolver>, ask: Ask<'_>) -> anyhow::Result<u8> {
    let scopes = crate::fleet::scopes(resolver, ask.profile, ask.region, ask.fleet).await?;
    let now = unix_now();
    let since = ask.since.at(now).max(earliest_since(now));
    let names = instance_names(resolver);
    let instances = ask.instance.map(|wanted| {
        let mut ids: BTreeSet<String> = names
            .iter()
            .filter(|(_, name)| name.as_str() == wanted)
            .map(|(id, _)| id.clone())
            .collect();
        ids.insert(wanted.to_owned());
        ids
    });
    let request = Request {
        resolver: resolver.clone(),
        scopes,
        profile_regions: resolver.profile_regions(),
        since,
        limits: Limits::default(),
    };
    let progress = std::io::stderr().is_terminal();
    let mut gathering = Gathering::start(request);
    let mut book = Book::default();
    let mut complete = true;
    while let Some(event) = gathering.next().await {
        match event {
            Event::Progress(p) if progress => {
                let throttled = if p.throttled > 0 {
                    " (AWS is throttling; waiting)"
                } else {
                    ""
                };
                eprint!(
                    "\r\x1b[Kreading history {} of {}{throttled}",
                    p.done, p.total
                );
                let _ = std::io::stderr().flush();
            }
            Event::Progress(_) => {}
            Event::Found { found, .. } => book.add(found),
            Event::Problem {
                identity,
                region,
                problem,
            } => {
                complete = false;
                if progress {
                    eprint!("\r\x1b[K");
                }
                let place = if region.is_empty() {
                    identity
                } else {
                    format!("{identity} in {region}")
                };
                eprintln!("postern: cannot read the history of {place}: {problem}");
            }
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    book.name_instances(&names);
    let filter = Filter { since, instances };
    let entries = book.entries(&filter);
    let aliases = &resolver.settings().account_aliases;
    if ask.json {
        let out = serde_json::json!({
            "sessions": entries.iter().map(|e| json_entry(e, aliases, now)).collect::<Vec<_>>(),
            "complete": complete,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&entries, aliases, now);
    }
    Ok(if complete { 0 } else { 1 })
}

/// Instance names the last listing knew, by id (no call is made for them).
fn instance_names(resolver: &Resolver) -> BTreeMap<String, String> {
    Cache::load(resolver.paths())
        .parts
        .iter()
        .flat_map(|part| &part.rows)
        .filter_map(|row| row.name.clone().map(|name| (row.id.clone(), name)))
        .collect()
}

fn kind_word(kind: &Kind) -> &str {
    match kind {
        Kind::Shell => "shell",
        Kind::Command => "command",
        Kind::Tunnel { .. } => "tunnel",
        Kind::Ssh { .. } => "ssh",
        Kind::Other { document } => document,
    }
}

fn json_entry(e: &Entry, aliases: &BTreeMap<String, String>, now: u64) -> serde_json::Value {
    let (port, host) = match &e.kind {
        Kind::Tunnel { port, host } => (*port, host.clone()),
        Kind::Ssh { port } => (*port, None),
        _ => (None, None),
    };
    serde_json::json!({
        "session_id": e.session_id,
        "instance_id": e.instance_id,
        "instance_name": e.instance_name,
        "kind": kind_word(&e.kind),
        "port": port,
        "remote_host": host,
        "document": e.document,
        "start": e.start.map(format_unix),
        "end": e.end.map(format_unix),
        "length_seconds": e.length(now),
        "open": e.is_open(),
        "account": e.account,
        "account_alias": e.account.as_ref().and_then(|a| aliases.get(a)),
        "region": e.region,
        "role": e.role,
        "identity": e.identity,
        "source_ip": e.source_ip,
        "mfa": e.mfa,
        "source_identity": e.source_identity,
        "status": e.status,
        "ended": e.ended,
        "event_ids": e.event_ids,
        "sources": e.sources,
    })
}

fn length(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

fn print_table(entries: &[&Entry], aliases: &BTreeMap<String, String>, now: u64) {
    let mut out = std::io::stdout().lock();
    if entries.is_empty() {
        let _ = writeln!(out, "No sessions of yours in that time.");
        return;
    }
    let header = [
        "STARTED", "LENGTH", "INSTANCE", "KIND", "ACCOUNT", "ROLE", "REGION", "ENDED", "SESSION",
    ];
    let lines: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let started = e
                .start
                .map(|s| {
                    format_unix(s)
                        .replace('T', " ")
                        .trim_end_matches('Z')
                        .to_owned()
                })
                .unwrap_or_else(|| "-".into());
            let lasted = match e.length(now) {
                Some(secs) if e.is_open() => format!("open {}", length(secs)),
                Some(secs) => length(secs),
                None => "-".into(),
            };
            let instance = match &e.instance_name {
                Some(name) => format!("{name} ({})", e.instance_id),
                None if e.instance_id.is_empty() => "-".into(),
                None => e.instance_id.clone(),
            };
            let account = e
                .account
                .as_ref()
                .map(|a| aliases.get(a).cloned().unwrap_or_else(|| a.clone()))
                .unwrap_or_else(|| "-".into());
            let waiting = if e.sources.contains(&Source::Cloudtrail) {
                ""
            } else {
                " *"
            };
            vec![
                started,
                lasted,
                instance,
                e.kind.describe(),
                account,
                e.role.clone().unwrap_or_else(|| "-".into()),
                e.region.clone(),
                e.ended.clone().unwrap_or_else(|| "-".into()),
                format!("{}{waiting}", e.session_id),
            ]
        })
        .collect();
    let (head, table) = crate::table::aligned(&header, &lines);
    let _ = writeln!(out, "{head}");
    for line in &table {
        let _ = writeln!(out, "{line}");
    }
    if lines
        .iter()
        .any(|cells| cells.last().is_some_and(|c| c.ends_with(" *")))
    {
        let _ = writeln!(
            out,
            "* not in CloudTrail yet (AWS delivers events minutes after the call)"
        );
    }
}
