//! The identities a user can switch between, for the switcher in the app and `postern profiles`:
//! every profile and the role it reaches, grouped by account (named by the aliases in
//! settings), with favourites and recents first and a fuzzy search over them.
//!
//! The active identity belongs to a window or a tab ([`ActiveIdentities`]), so two tabs can work
//! in two accounts at once.

use std::collections::{BTreeMap, HashMap};

use crate::profile::{Base, ProfileKind, Profiles, Severity};
use crate::settings::{Settings, State};

/// What kind of identity a profile gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityKind {
    /// A role, assumed from `source` (the profile at the start of its chain).
    Role {
        /// The role's name.
        role: String,
        /// The base profile whose credentials start the chain.
        source: Option<String>,
        /// The role profiles between it and `source`, from its own `source_profile` down (empty
        /// when it is assumed with `source`'s credentials directly).
        via: Vec<String>,
        /// How many roles are assumed on the way (more than one: a chained role).
        hops: usize,
    },
    /// Long-lived keys (keychain or file) or a credential process.
    Keys,
    /// IAM Identity Center (shown; signing in comes later).
    Sso {
        /// The permission set.
        role: Option<String>,
    },
    /// Something Postern cannot use yet (web identity).
    Other,
}

/// One entry of the switcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The profile.
    pub profile: String,
    /// What it is.
    pub kind: IdentityKind,
    /// Its account, when the profile tells it.
    pub account: Option<String>,
    /// The account's alias.
    pub alias: Option<String>,
    /// Whether an MFA code is involved.
    pub mfa: bool,
    /// The region: its own, or the one it takes from a profile of its chain.
    pub region: Option<String>,
    /// The profile `region` comes from, when it is not this one (inherited).
    pub region_from: Option<String>,
    /// Marked as a favourite.
    pub favourite: bool,
    /// When it was last used (seconds since the epoch).
    pub last_used: Option<u64>,
    /// Why it cannot be used, if it cannot.
    pub problem: Option<String>,
}

impl Identity {
    /// The text the search matches: alias, account, role and profile.
    fn haystack(&self) -> String {
        let role = match &self.kind {
            IdentityKind::Role { role, .. } => role.as_str(),
            IdentityKind::Sso { role: Some(role) } => role.as_str(),
            _ => "",
        };
        format!(
            "{} {} {} {}",
            self.profile,
            role,
            self.alias.as_deref().unwrap_or(""),
            self.account.as_deref().unwrap_or("")
        )
    }
}

/// Identities of one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountGroup {
    /// The account id (`None`: profiles whose account is not known until used).
    pub account: Option<String>,
    /// Its alias.
    pub alias: Option<String>,
    /// Its identities: favourites, then recent ones, then by name.
    pub identities: Vec<Identity>,
}

/// Every identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    identities: Vec<Identity>,
}

impl Catalog {
    /// Build from the profiles, the settings (aliases) and the state (favourites, recents, the
    /// accounts Postern has seen behind keys).
    pub fn new(profiles: &Profiles, settings: &Settings, state: &State) -> Self {
        // The account behind a base profile is known once Postern has used its keys.
        let account_of_keys = |profile: &str| state.accounts.get(profile).cloned();
        let mut identities = Vec::new();
        for profile in profiles.iter() {
            let chain = profiles.chain(&profile.name);
            let (kind, mfa) = match (&profile.kind, &chain) {
                (ProfileKind::Role(role), Ok(chain)) => {
                    let source = match chain.base {
                        Base::Profile(p) => Some(p.name.clone()),
                        _ => None,
                    };
                    let mfa = profile.mfa_serial().is_some()
                        || chain.roles.iter().any(|r| r.mfa_serial().is_some())
                        || matches!(chain.base, Base::Profile(p) if p.mfa_serial().is_some());
                    (
                        IdentityKind::Role {
                            role: role.role_arn.name().to_owned(),
                            source,
                            via: chain.roles.iter().skip(1).map(|p| p.name.clone()).collect(),
                            hops: chain.roles.len(),
                        },
                        mfa,
                    )
                }
                (ProfileKind::Role(role), Err(_)) => (
                    IdentityKind::Role {
                        role: role.role_arn.name().to_owned(),
                        source: None,
                        via: Vec::new(),
                        hops: 1,
                    },
                    profile.mfa_serial().is_some(),
                ),
                (ProfileKind::Sso(sso), _) => (
                    IdentityKind::Sso {
                        role: sso.role_name.clone(),
                    },
                    false,
                ),
                (ProfileKind::Base { .. }, _) => {
                    (IdentityKind::Keys, profile.mfa_serial().is_some())
                }
                (ProfileKind::WebIdentity { .. }, _) => (IdentityKind::Other, false),
            };
            let account = profile
                .account()
                .map(str::to_owned)
                .or_else(|| account_of_keys(&profile.name));
            let problem = match &chain {
                Err(e) => Some(e.to_string()),
                Ok(_) => profile
                    .unusable
                    .as_ref()
                    .filter(|p| p.severity == Severity::Error)
                    .map(ToString::to_string),
            };
            let region = profiles.region(&profile.name);
            identities.push(Identity {
                alias: account
                    .as_deref()
                    .and_then(|a| settings.alias(a))
                    .map(str::to_owned),
                account,
                kind,
                mfa,
                region: region.map(|(r, _)| r.to_owned()),
                region_from: region
                    .filter(|(_, from)| *from != profile.name)
                    .map(|(_, from)| from.to_owned()),
                favourite: state.favourites.contains(&profile.name),
                last_used: state
                    .recents
                    .iter()
                    .find(|r| r.profile == profile.name)
                    .map(|r| r.at),
                problem,
                profile: profile.name.clone(),
            });
        }
        Self { identities }
    }

    /// Every identity, in file order.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// One profile's identity.
    pub fn get(&self, profile: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.profile == profile)
    }

    /// By account: accounts in order of their alias (or id), profiles without a known account
    /// last; in each, favourites, then recently used, then by name.
    pub fn by_account(&self) -> Vec<AccountGroup> {
        let mut groups: BTreeMap<(bool, String), AccountGroup> = BTreeMap::new();
        for identity in &self.identities {
            let key = (
                identity.account.is_none(),
                identity
                    .alias
                    .clone()
                    .or_else(|| identity.account.clone())
                    .unwrap_or_default(),
            );
            groups
                .entry(key)
                .or_insert_with(|| AccountGroup {
                    account: identity.account.clone(),
                    alias: identity.alias.clone(),
                    identities: Vec::new(),
                })
                .identities
                .push(identity.clone());
        }
        let mut groups: Vec<AccountGroup> = groups.into_values().collect();
        for group in &mut groups {
            group.identities.sort_by(|a, b| {
                (!a.favourite, std::cmp::Reverse(a.last_used), &a.profile).cmp(&(
                    !b.favourite,
                    std::cmp::Reverse(b.last_used),
                    &b.profile,
                ))
            });
        }
        groups
    }

    /// Identities matching `query`, best first: every character of the query must appear in
    /// order (case-insensitive) in the profile, role, alias or account; consecutive runs, word
    /// starts, favourites and recent use score higher.
    pub fn search(&self, query: &str) -> Vec<&Identity> {
        let query: Vec<char> = query
            .to_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let mut scored: Vec<(i64, &Identity)> = self
            .identities
            .iter()
            .filter_map(|identity| {
                // A match within the profile's own name beats one spread over its role and
                // account.
                let own = fuzzy_score(&query, &identity.profile.to_lowercase()).map(|s| s + 50);
                let any = fuzzy_score(&query, &identity.haystack().to_lowercase());
                let score = own.max(any)?;
                let bonus = if identity.favourite { 30 } else { 0 }
                    + if identity.last_used.is_some() { 10 } else { 0 };
                Some((score + bonus, identity))
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.profile.cmp(&b.1.profile)));
        scored.into_iter().map(|(_, i)| i).collect()
    }
}

/// How well `query` matches `text` as a subsequence (the best alignment: a character counts 1,
/// 3 more at the start of a word, 5 more right after the previous one); `None` when it does
/// not match.
fn fuzzy_score(query: &[char], text: &str) -> Option<i64> {
    if query.is_empty() {
        return Some(0);
    }
    let text: Vec<char> = text.chars().collect();
    let n = text.len();
    let boundary = |j: usize| j == 0 || matches!(text[j - 1], ' ' | '-' | '_' | '.' | '/');
    // `at[j]`: the best score with the current query character matched at `j`;
    // `best[j]`: the best with it matched at or before `j`.
    let mut at = vec![None::<i64>; n];
    let mut best = vec![None::<i64>; n];
    for (i, &q) in query.iter().enumerate() {
        let mut next_at = vec![None; n];
        for j in 0..n {
            if text[j] != q {
                continue;
            }
            let base = 1 + if boundary(j) { 3 } else { 0 };
            let before = if i == 0 {
                Some(0)
            } else if j == 0 {
                None
            } else {
                let spread = best[j - 1];
                let run = at[j - 1].map(|s: i64| s + 5);
                spread.max(run)
            };
            next_at[j] = before.map(|b| b + base);
        }
        let mut running = None;
        let mut next_best = vec![None; n];
        for j in 0..n {
            running = running.max(next_at[j]);
            next_best[j] = running;
        }
        at = next_at;
        best = next_best;
    }
    // Shorter texts (tighter matches) first among equals.
    best.last().copied().flatten().map(|s| s * 100 - n as i64)
}

/// The active identity of each window or tab.
#[derive(Clone, Debug, Default)]
pub struct ActiveIdentities {
    by_context: HashMap<String, String>,
}

impl ActiveIdentities {
    /// Make `profile` the identity of `context` (a window or tab id).
    pub fn select(&mut self, context: &str, profile: &str) {
        self.by_context
            .insert(context.to_owned(), profile.to_owned());
    }

    /// The identity of `context`.
    pub fn get(&self, context: &str) -> Option<&str> {
        self.by_context.get(context).map(String::as_str)
    }

    /// Forget `context` (closed).
    pub fn close(&mut self, context: &str) {
        self.by_context.remove(context);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ini;
    use crate::settings::Recent;
    use std::path::Path;

    fn catalog() -> Catalog {
        let profiles = Profiles::from_files(
            Some(ini::parse(
                Path::new("config"),
                b"[profile base]\nmfa_serial = arn:aws:iam::111111111111:mfa/me\n\
                  [profile payments-dev]\nrole_arn = arn:aws:iam::111111111111:role/developer\nsource_profile = base\n\
                  [profile payments-prod]\nrole_arn = arn:aws:iam::222222222222:role/operator\nsource_profile = payments-dev\n\
                  [profile search-prod]\nrole_arn = arn:aws:iam::222222222222:role/readonly\nsource_profile = base\n",
            )),
            None,
        );
        let mut settings = Settings::default();
        settings
            .account_aliases
            .insert("222222222222".into(), "prod".into());
        let state = State {
            favourites: vec!["search-prod".into()],
            recents: vec![Recent {
                profile: "payments-prod".into(),
                at: 5,
            }],
            ..State::default()
        };
        Catalog::new(&profiles, &settings, &state)
    }

    #[test]
    fn grouped_by_account_with_favourites_and_recents_first() {
        let groups = catalog().by_account();
        let names: Vec<(Option<&str>, Vec<&str>)> = groups
            .iter()
            .map(|g| {
                (
                    g.alias.as_deref().or(g.account.as_deref()),
                    g.identities.iter().map(|i| i.profile.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (Some("111111111111"), vec!["payments-dev"]),
                (Some("prod"), vec!["search-prod", "payments-prod"]),
                (None, vec!["base"]),
            ]
        );
        let catalog = catalog();
        let prod = catalog.get("payments-prod").expect("entry");
        assert!(prod.mfa);
        assert_eq!(
            prod.kind,
            IdentityKind::Role {
                role: "operator".into(),
                source: Some("base".into()),
                via: vec!["payments-dev".into()],
                hops: 2
            }
        );
    }

    #[test]
    fn regions_taken_from_the_chain_say_where_from() {
        let profiles = Profiles::from_files(
            Some(ini::parse(
                Path::new("config"),
                b"[profile me]\nregion = eu-west-1\n\
                  [profile dev]\nrole_arn = arn:aws:iam::111111111111:role/developer\nsource_profile = me\n\
                  [profile prod]\nrole_arn = arn:aws:iam::222222222222:role/operator\nsource_profile = dev\n\
                  [profile ops]\nrole_arn = arn:aws:iam::222222222222:role/ops\nsource_profile = dev\nregion = us-east-2\n\
                  [profile nowhere]\nrole_arn = arn:aws:iam::222222222222:role/x\nsource_profile = gone\n",
            )),
            None,
        );
        let catalog = Catalog::new(&profiles, &Settings::default(), &State::default());
        let region = |name: &str| {
            let identity = catalog.get(name).expect(name);
            (identity.region.clone(), identity.region_from.clone())
        };
        assert_eq!(region("me"), (Some("eu-west-1".into()), None));
        assert_eq!(region("dev"), (Some("eu-west-1".into()), Some("me".into())));
        assert_eq!(
            region("prod"),
            (Some("eu-west-1".into()), Some("me".into()))
        );
        assert_eq!(region("ops"), (Some("us-east-2".into()), None));
        assert_eq!(region("nowhere"), (None, None));
        let Some(IdentityKind::Role { source, via, .. }) = catalog.get("prod").map(|i| &i.kind)
        else {
            panic!("prod is a role");
        };
        assert_eq!(
            (source.as_deref(), via.as_slice()),
            (Some("me"), &["dev".to_owned()][..])
        );
    }

    #[test]
    fn fuzzy_search() {
        let catalog = catalog();
        let names = |q: &str| -> Vec<String> {
            catalog
                .search(q)
                .iter()
                .map(|i| i.profile.clone())
                .collect()
        };
        assert_eq!(names("pprod")[0], "payments-prod");
        assert_eq!(names("prod read")[0], "search-prod");
        assert!(names("zzz").is_empty());
        assert_eq!(names("operator"), ["payments-prod"]);
        // The best alignment, not the first: `pdev` is p…-dev.
        assert_eq!(
            fuzzy_score(&['p', 'd', 'e', 'v'], "prod-via-dev"),
            Some(2000 - 12)
        );
    }

    #[test]
    fn active_identity_per_window() {
        let mut active = ActiveIdentities::default();
        active.select("tab-1", "payments-dev");
        active.select("tab-2", "search-prod");
        assert_eq!(active.get("tab-1"), Some("payments-dev"));
        active.close("tab-1");
        assert_eq!(active.get("tab-1"), None);
        assert_eq!(active.get("tab-2"), Some("search-prod"));
    }
}
