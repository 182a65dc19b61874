//! `postern ls`: the instances of the fleet view, reachable first, as a table or JSON.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use postern_core::credentials::{Resolver, Selection};
use postern_core::credentials::{format_unix, unix_now};
use postern_core::inventory::cache::{Cache, Listed};
use postern_core::inventory::listing::{Event, Listing, Request, Scope, rejudge};
use postern_core::inventory::row::Row;
use postern_core::inventory::search::Query;
use postern_core::settings::{Regions, State};

/// A cached list younger than this is shown without listing again (unless `--refresh`).
const FRESH: Duration = Duration::from_secs(60);

/// What `postern ls` was asked.
pub(crate) struct Ask<'a> {
    pub query: Option<&'a str>,
    pub all: bool,
    pub json: bool,
    pub refresh: bool,
    pub fleet: bool,
    pub profile: Option<&'a str>,
    pub region: Option<&'a str>,
}

/// The identities and regions to read: the active identity (or `profile`), or with `fleet`
/// every identity of `[inventory] identities`; in `region`, else the settings' regions.
pub(crate) async fn scopes(
    resolver: &Resolver,
    profile: Option<&str>,
    region: Option<&str>,
    fleet: bool,
) -> anyhow::Result<Vec<Scope>> {
    let settings = resolver.settings();
    let regions = match region {
        Some(region) => Regions::Listed(vec![region.to_owned()]),
        None => settings.inventory.regions.clone(),
    };
    if fleet && profile.is_some() {
        anyhow::bail!(
            "--fleet lists every identity of `[inventory] identities` in settings.toml and \
             --profile names one: use one or the other"
        );
    }
    if fleet {
        let identities = &settings.inventory.identities;
        if identities.is_empty() {
            anyhow::bail!(
                "--fleet lists the identities of `[inventory] identities = [\"profile\", …]` in \
                 settings.toml, and it names none; add some, or leave out --fleet to list the \
                 active identity"
            );
        }
        return Ok(identities
            .iter()
            .map(|profile| Scope {
                identity: profile.clone(),
                selection: Selection::Profile(profile.clone()),
                regions: regions.clone(),
            })
            .collect());
    }
    Ok(vec![Scope::active(resolver, profile, region).await?])
}

pub(crate) async fn ls(resolver: &Arc<Resolver>, ask: Ask<'_>) -> anyhow::Result<u8> {
    let settings = resolver.settings().clone();
    for error in settings.inventory.reach.errors() {
        eprintln!("postern: tag rule: {error}");
    }
    if !settings.inventory.reach.errors().is_empty() {
        eprintln!("postern: until the tag rules are fixed, no instance is within reach");
    }
    let scopes = scopes(resolver, ask.profile, ask.region, ask.fleet).await?;
    // What was asked, as the cache knows it: these identities in these regions.
    let request_key = format!(
        "{:?}",
        scopes
            .iter()
            .map(|s| (s.identity.as_str(), format!("{:?}", s.regions)))
            .collect::<Vec<_>>()
    );
    let paths = resolver.paths();
    let state = State::load(paths)?;
    let mut cache = Cache::load(paths);
    let fresh = cache
        .listings
        .get(&request_key)
        .filter(|listed| unix_now().saturating_sub(listed.at) < FRESH.as_secs())
        .cloned();
    let previous = cache.listings.get(&request_key).cloned();
    let (mut parts, complete) = match fresh {
        Some(listed) if !ask.refresh => {
            let age = unix_now().saturating_sub(listed.at);
            eprintln!("postern: listed {age} s ago (--refresh to list again)");
            (cache.parts(&listed.parts), true)
        }
        _ => {
            let request = Request::for_scopes(resolver.clone(), scopes)?;
            let progress = std::io::stderr().is_terminal();
            let mut listing = Listing::start(request);
            let mut produced: Vec<(String, String)> = Vec::new();
            let mut complete = true;
            while let Some(event) = listing.next().await {
                match event {
                    Event::Progress(p) if progress => {
                        let throttled = if p.throttled > 0 {
                            " (AWS is throttling; waiting)"
                        } else {
                            ""
                        };
                        eprint!("\r\x1b[Klisting {} of {}{throttled}", p.done, p.total);
                        let _ = std::io::stderr().flush();
                    }
                    Event::Progress(_) => {}
                    Event::Part(part) => {
                        if progress {
                            eprint!("\r\x1b[K");
                        }
                        if let Some(problem) = &part.problem {
                            complete = false;
                            let place = if part.region.is_empty() {
                                part.identity.clone()
                            } else {
                                format!("{} in {}", part.identity, part.region)
                            };
                            let had_list = if part.region.is_empty() {
                                previous.as_ref().is_some_and(|p| {
                                    p.parts.iter().any(|(i, _)| *i == part.identity)
                                })
                            } else {
                                !cache
                                    .parts(&[(part.identity.clone(), part.region.clone())])
                                    .is_empty()
                            };
                            let kept = if !had_list {
                                ""
                            } else {
                                " (showing the last list)"
                            };
                            eprintln!("postern: cannot list {place}: {problem}{kept}");
                        }
                        if let Some(note) = &part.note {
                            eprintln!("postern: {} in {}: {note}", part.identity, part.region);
                        }
                        if !part.region.is_empty() {
                            produced.push((part.identity.clone(), part.region.clone()));
                        } else if let Some(previous) = &previous {
                            // The identity could not be used at all: its last list stays.
                            produced.extend(
                                previous
                                    .parts
                                    .iter()
                                    .filter(|(identity, _)| *identity == part.identity)
                                    .cloned(),
                            );
                        }
                        cache.merge(part);
                    }
                }
            }
            if progress {
                eprint!("\r\x1b[K");
            }
            if complete {
                cache.listings.insert(
                    request_key,
                    Listed {
                        at: unix_now(),
                        parts: produced.clone(),
                    },
                );
            }
            if let Err(e) = cache.store(paths) {
                tracing::warn!("cannot keep the list for next time: {e}");
            }
            // What this listing made; where it failed, the rows cached before (if any).
            (cache.parts(&produced), complete)
        }
    };
    for part in &mut parts {
        rejudge(part, &settings.inventory.reach, &state.denied_sessions);
    }
    // For --json: each identity and region, when it was listed and what went wrong.
    let listed: Vec<serde_json::Value> = parts
        .iter()
        .map(|p| {
            serde_json::json!({
                "identity": p.identity,
                "region": p.region,
                "listed_at": format_unix(p.listed_at),
                "problem": p.problem,
                "note": p.note,
            })
        })
        .collect();
    let query = Query::parse(ask.query.unwrap_or(""));
    let mut rows: Vec<Row> = parts
        .into_iter()
        .flat_map(|p| p.rows)
        .filter(|r| query.matches(r))
        .collect();
    rows.sort_by(|a, b| {
        (!a.reachable, &a.name, &a.id, &a.identity).cmp(&(
            !b.reachable,
            &b.name,
            &b.id,
            &b.identity,
        ))
    });
    if ask.json {
        let out = serde_json::json!({
            "instances": rows.iter().map(json_row).collect::<Vec<_>>(),
            "complete": complete,
            "parts": listed,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&rows, ask.all);
    }
    let broken = !settings.inventory.reach.errors().is_empty();
    Ok(if complete && !broken { 0 } else { 1 })
}

fn json_row(row: &Row) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "name": row.name,
        "state": row.state,
        "account": row.account,
        "account_alias": row.account_alias,
        "region": row.region,
        "identity": row.identity,
        "reachable": row.reachable,
        "reason": row.reason(),
        "reason_code": row.unreachable.as_ref().map(reason_code),
        "ssm_status": row.ssm_status,
        "agent_version": row.agent_version,
        "last_ping": row.last_ping,
        "platform": row.platform,
        "private_ip": row.private_ip,
        "remote_host_tunnels": row.remote_host_tunnels,
        "tags": row.tags,
    })
}

fn reason_code(reason: &postern_core::inventory::row::Unreachable) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

fn print_table(rows: &[Row], all: bool) {
    let shown: Vec<&Row> = rows.iter().filter(|r| all || r.reachable).collect();
    let hidden = rows.len() - shown.len();
    let many_identities = rows
        .iter()
        .map(|r| &r.identity)
        .collect::<BTreeSet<_>>()
        .len()
        > 1;
    let colour = std::io::stdout().is_terminal();
    let mut header = vec!["NAME", "INSTANCE", "PRIVATE IP", "ACCOUNT", "REGION"];
    if many_identities {
        header.push("IDENTITY");
    }
    header.push("STATUS");
    let lines: Vec<(bool, Vec<String>)> = shown
        .iter()
        .map(|row| {
            let mut cells = vec![
                row.name.clone().unwrap_or_else(|| "-".into()),
                row.id.clone(),
                row.private_ip.clone().unwrap_or_else(|| "-".into()),
                row.account_alias
                    .clone()
                    .unwrap_or_else(|| row.account.clone()),
                row.region.clone(),
            ];
            if many_identities {
                cells.push(row.identity.clone());
            }
            cells.push(row.reason().unwrap_or_else(|| "reachable".into()));
            (row.reachable, cells)
        })
        .collect();
    let cells: Vec<Vec<String>> = lines.iter().map(|(_, cells)| cells.clone()).collect();
    let (head, table) = crate::table::aligned(&header, &cells);
    let mut out = std::io::stdout().lock();
    if shown.is_empty() {
        let _ = writeln!(out, "No instance within reach.");
    } else {
        let _ = writeln!(out, "{head}");
        for ((reachable, _), line) in lines.iter().zip(&table) {
            if !reachable && colour {
                let _ = writeln!(out, "\x1b[2m{line}\x1b[0m");
            } else {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "{hidden} more out of reach (stopped, offline, outside your tag rules…): --all shows them"
        );
    }
}
