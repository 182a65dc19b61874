//! `postern profiles`, `login`, `whoami`, `logout` and `favourite`.

use std::time::SystemTime;

use postern_core::credentials::{Resolver, Selection, format_time};
use postern_core::identity::{Catalog, Identity, IdentityKind};
use postern_core::profile::Severity;
use postern_core::settings::State;

/// How long until `at`, for people ("11 h 58 min").
pub(crate) fn until(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::now())
        .map_or(0, |d| d.as_secs());
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

fn ago(at: u64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let secs = now.saturating_sub(at);
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

fn describe(identity: &Identity) -> String {
    let what = match &identity.kind {
        IdentityKind::Role {
            role,
            source,
            via,
            hops,
        } => {
            // Where its credentials come from: its source_profile, and on to the base the
            // chain really starts from (`← dev → me`).
            let path: Vec<&str> = via
                .iter()
                .map(String::as_str)
                .chain(source.as_deref())
                .collect();
            let from = if path.is_empty() {
                String::new()
            } else {
                format!(" ← {}", path.join(" → "))
            };
            let chained = if *hops > 1 { " (chained)" } else { "" };
            format!("role {role}{from}{chained}")
        }
        IdentityKind::Keys => "keys".into(),
        IdentityKind::Sso { role } => format!("sso {}", role.as_deref().unwrap_or("")),
        IdentityKind::Other => "web identity".into(),
    };
    let mut line = format!(
        "{} {:<24} {:<36}",
        if identity.favourite { "★" } else { " " },
        identity.profile,
        what
    );
    if identity.mfa {
        line.push_str(" MFA");
    }
    if let Some(region) = &identity.region {
        line.push_str(&format!("  {region}"));
        if let Some(from) = &identity.region_from {
            line.push_str(&format!(" (from {from})"));
        }
    }
    if let Some(at) = identity.last_used {
        line.push_str(&format!("  used {}", ago(at)));
    }
    if identity.problem.is_some() {
        line.push_str("  (unusable, see below)");
    }
    line.trim_end().to_owned()
}

/// `postern profiles [QUERY] [--json] [--dump]`.
pub(crate) fn profiles(
    resolver: &Resolver,
    query: Option<&str>,
    json: bool,
    dump: bool,
) -> anyhow::Result<u8> {
    if dump {
        println!(
            "{}",
            serde_json::to_string_pretty(&resolver.profiles().dump())?
        );
        return Ok(0);
    }
    let state = State::load(resolver.paths())?;
    let catalog = Catalog::new(resolver.profiles(), resolver.settings(), &state);
    if json {
        let list: Vec<&Identity> = match query {
            Some(q) => catalog.search(q),
            None => catalog.identities().iter().collect(),
        };
        let out: Vec<_> = list
            .iter()
            .map(|i| {
                serde_json::json!({
                    "profile": i.profile,
                    "kind": match &i.kind {
                        IdentityKind::Role { .. } => "role",
                        IdentityKind::Keys => "keys",
                        IdentityKind::Sso { .. } => "sso",
                        IdentityKind::Other => "other",
                    },
                    "role": match &i.kind { IdentityKind::Role { role, .. } => Some(role.clone()), _ => None },
                    "source": match &i.kind { IdentityKind::Role { source, .. } => source.clone(), _ => None },
                    "via": match &i.kind { IdentityKind::Role { via, .. } => via.clone(), _ => Vec::new() },
                    "account": i.account,
                    "alias": i.alias,
                    "mfa": i.mfa,
                    "region": i.region,
                    "region_from": i.region_from,
                    "favourite": i.favourite,
                    "last_used": i.last_used,
                    "problem": i.problem,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    if catalog.identities().is_empty() {
        println!(
            "No AWS profiles in {} or {}.",
            resolver_files().0,
            resolver_files().1
        );
        return Ok(0);
    }
    match query {
        Some(query) => {
            let found = catalog.search(query);
            if found.is_empty() {
                println!("No profile matches {query:?}.");
                return Ok(1);
            }
            for identity in found {
                let account = identity
                    .alias
                    .as_deref()
                    .or(identity.account.as_deref())
                    .unwrap_or("");
                println!("{}  {account}", describe(identity));
            }
        }
        None => {
            for group in catalog.by_account() {
                match (&group.alias, &group.account) {
                    (Some(alias), Some(account)) => println!("{alias} ({account})"),
                    (None, Some(account)) => println!("{account}"),
                    _ => println!("account not known until used"),
                }
                for identity in &group.identities {
                    println!("  {}", describe(identity));
                }
            }
        }
    }
    // By file and line, as the core lists them.
    let problems = resolver.profiles().problems();
    if !problems.is_empty() {
        println!();
    }
    for problem in problems {
        let label = match problem.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        println!("{label}: {problem}");
    }
    Ok(0)
}

fn resolver_files() -> (String, String) {
    let files = postern_core::profile::ConfigFiles::from_env();
    (
        files.config.display().to_string(),
        files.credentials.display().to_string(),
    )
}

/// `postern login`.
pub(crate) async fn login(resolver: &Resolver, selection: &Selection) -> anyhow::Result<u8> {
    let name = resolver
        .profile_name(selection)?
        .unwrap_or_else(|| "the environment's keys".into());
    match resolver.login(selection).await? {
        Some((serial, expires)) => println!(
            "Signed in with {serial} for {name}: one code covers every role until {} (in {}).",
            format_time(expires),
            until(expires)
        ),
        None => {
            resolver.credentials(selection).await?;
            println!("Signed in for {name}: its credentials are ready.");
        }
    }
    Ok(0)
}

/// `postern whoami`.
pub(crate) async fn whoami(resolver: &Resolver, selection: &Selection) -> anyhow::Result<u8> {
    let (resolved, account, arn, user_id) = resolver.whoami(selection).await?;
    let alias = resolver
        .settings()
        .alias(&account)
        .map_or(String::new(), |a| format!(" ({a})"));
    println!(
        "profile  {}",
        resolved.profile.as_deref().unwrap_or("(environment)")
    );
    println!("account  {account}{alias}");
    println!("arn      {arn}");
    println!("user id  {user_id}");
    if let Some(expires) = resolved.credentials.expires {
        println!("expires  {} (in {})", format_time(expires), until(expires));
    }
    Ok(0)
}

/// `postern logout`.
pub(crate) fn logout(resolver: &Resolver) -> anyhow::Result<u8> {
    let removed = resolver.logout()?;
    println!(
        "Forgot {removed} cached session{} (MFA sessions and roles). Long-lived keys stay in the keychain; `postern keys remove PROFILE` deletes them.",
        if removed == 1 { "" } else { "s" }
    );
    Ok(0)
}

/// `postern favourite PROFILE`.
pub(crate) fn favourite(resolver: &Resolver, profile: &str) -> anyhow::Result<u8> {
    if resolver.profiles().get(profile).is_none() {
        anyhow::bail!("no profile named {profile} (`postern profiles` lists them)");
    }
    let now = State::update(resolver.paths(), |s| s.toggle_favourite(profile))?;
    if now {
        println!("★ {profile} is a favourite.");
    } else {
        println!("{profile} is no longer a favourite.");
    }
    Ok(0)
}
