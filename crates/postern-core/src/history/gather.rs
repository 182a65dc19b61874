//! Gathering the history: the journal at once, then for every identity × region of the fleet
//! view, side by side, DescribeSessions (fast) and CloudTrail (slow, progressive, cached).
//!
//! Results stream in as [`Event`]s, each a [`Found`] to add to a [`Book`](super::Book), or a
//! problem with one part, or [`Progress`]. Throttling is waited out (as progress, not as an
//! error) up to [`Limits::give_up`]. Dropping the [`Gathering`] cancels it.
//!
//! CloudTrail is asked with the lookup attribute `Username` = the caller's role session name (or
//! IAM user name), not `EventName`. One lookup then returns all three session events
//! (StartSession, ResumeSession, TerminateSession) of that name, where `EventName` needs three
//! lookups, each paging through every colleague's sessions in the account at 2 calls per second;
//! the cost of `Username` grows with one person's own activity, not with the organisation's.
//! It also keeps other people's events in AWS rather than fetching them only to drop them. What
//! `Username` cannot separate (a colleague using the same session name) [`Me::owns`] separates
//! by SourceIdentity.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use aws_sdk_ssm::types::{SessionFilter, SessionFilterKey, SessionState};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::aws::AwsAccess;
use crate::credentials::{Resolver, format_unix, unix_now};
use crate::history::journal::{self, Journal};
use crate::history::trail::{Covered, Judged, TrailCache, TrailRecord};
use crate::history::{Entry, Found, Kind, Me, Source};
use crate::inventory::listing::{
    CallError, Limits, Scope, Waiting, home_region, patiently, regions_of, role_of,
};
use crate::progress::{Job, Tally};
use crate::settings::Regions;

/// How far back DescribeSessions' history reaches (AWS keeps 30 days).
const SESSION_HISTORY: u64 = 30 * 24 * 3600;
/// How much of CloudTrail before the last lookup's end is read again: events are delivered
/// late (about five minutes on average, more at times), so the newest stretch may have grown.
const REDELIVERY: u64 = 3600;
/// CloudTrail's LookupEvents rate per account and region.
const LOOKUP_INTERVAL: Duration = Duration::from_millis(500);

/// What a gathering needs.
pub struct Request {
    /// Credentials for every identity.
    pub resolver: Arc<Resolver>,
    /// The identities and their regions.
    pub scopes: Vec<Scope>,
    /// The regions of the user's profiles, for [`Regions::OfProfiles`].
    pub profile_regions: Vec<String>,
    /// Sessions started at or after this (seconds since the epoch); at most 90 days back.
    pub since: u64,
    /// How hard to push.
    pub limits: Limits,
}

pub use crate::progress::Progress;

/// What a gathering reports.
#[derive(Clone, Debug)]
pub enum Event {
    /// How far it has got.
    Progress(Progress),
    /// Sessions from one source.
    Found {
        /// Where from.
        source: Source,
        /// The identity asked (empty for the journal).
        identity: String,
        /// The region (empty for the journal).
        region: String,
        /// What it said.
        found: Found,
    },
    /// A part that could not be read; the rest goes on.
    Problem {
        /// The identity.
        identity: String,
        /// The region (empty when the identity could not be used at all).
        region: String,
        /// Why, in a sentence.
        problem: String,
    },
}

/// A gathering under way; dropping it cancels it.
pub struct Gathering(Job<Event>);

impl Gathering {
    /// Start gathering.
    pub fn start(request: Request) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let paths = request.resolver.paths().clone();
        let shared = Arc::new(Shared {
            tx,
            tally: Tally::new(1 + request.scopes.len()),
            // The journal, and one per identity until its regions are known.
            cache: Mutex::new(TrailCache::load(&paths)),
            lookups: Mutex::new(HashMap::new()),
            taken: Mutex::new(HashSet::new()),
            request,
        });
        let task = tokio::spawn(async move {
            shared.progress();
            shared.journal();
            let mut identities = JoinSet::new();
            for scope in shared.request.scopes.clone() {
                identities.spawn(gather_identity(shared.clone(), scope));
            }
            while identities.join_next().await.is_some() {}
        });
        Self(Job::new(events, task))
    }

    /// The next event; `None` once everything is gathered.
    pub async fn next(&mut self) -> Option<Event> {
        self.0.next().await
    }
}

/// The earliest `since` CloudTrail can answer for.
pub fn earliest_since(now: u64) -> u64 {
    now.saturating_sub(journal::KEEP)
}

/// When an account × region may next be asked LookupEvents (held while asking).
type Pace = Arc<tokio::sync::Mutex<Instant>>;

struct Shared {
    tx: mpsc::UnboundedSender<Event>,
    tally: Tally,
    cache: Mutex<TrailCache>,
    /// When each account × region may next be asked LookupEvents.
    lookups: Mutex<HashMap<(String, String), Pace>>,
    /// The lookups (account|region|username) some identity has taken on.
    taken: Mutex<HashSet<String>>,
    request: Request,
}

impl Waiting for Shared {
    fn limits(&self) -> &Limits {
        &self.request.limits
    }

    fn waiting(&self, more: bool) {
        self.tally.waiting(more);
        self.progress();
    }
}

impl Shared {
    fn progress(&self) {
        let _ = self.tx.send(Event::Progress(self.tally.now()));
    }

    fn found(&self, source: Source, identity: &str, region: &str, found: Found) {
        let _ = self.tx.send(Event::Found {
            source,
            identity: identity.to_owned(),
            region: region.to_owned(),
            found,
        });
    }

    fn finished(&self, problem: Option<(&str, &str, String)>) {
        if let Some((identity, region, problem)) = problem {
            let _ = self.tx.send(Event::Problem {
                identity: identity.to_owned(),
                region: region.to_owned(),
                problem,
            });
        }
        self.tally.one_done();
        self.progress();
    }

    /// The journal's sessions of the identities asked for (in their listed regions).
    fn journal(&self) {
        let entries = Journal::read(self.request.resolver.paths(), self.request.since)
            .into_iter()
            .filter(|entry| {
                self.request.scopes.iter().any(|scope| {
                    entry.identity.as_deref() == Some(scope.identity.as_str())
                        && match &scope.regions {
                            Regions::Listed(list) => list.contains(&entry.region),
                            _ => true,
                        }
                })
            })
            .collect();
        self.found(
            Source::Journal,
            "",
            "",
            Found {
                entries,
                not_mine: Vec::new(),
            },
        );
        self.finished(None);
    }

    fn store_cache(&self) {
        let keep_after = earliest_since(unix_now());
        let stored = match self.cache.lock() {
            Ok(mut cache) => cache.store(self.request.resolver.paths(), keep_after),
            Err(_) => return,
        };
        if let Err(e) = stored {
            tracing::warn!("cannot cache CloudTrail's history: {e}");
        }
    }
}

async fn gather_identity(shared: Arc<Shared>, scope: Scope) {
    let request = &shared.request;
    let failed = |problem: String| shared.finished(Some((&scope.identity, "", problem)));
    let (resolved, account, arn) = match request.resolver.whoami(&scope.selection).await {
        Ok((resolved, account, arn, _)) => (resolved, account, arn),
        Err(e) => return failed(e.to_string()),
    };
    let me = Me::new(&account, &arn, resolved.credentials.identity.clone());
    let Some(home) = home_region(&scope, &resolved, &request.profile_regions) else {
        return failed(crate::aws::AccessError::NoRegion.to_string());
    };
    let access = match AwsAccess::new(
        request.resolver.clone(),
        scope.selection.clone(),
        Some(&home),
    )
    .await
    {
        Ok(access) => access.leaving_throttling_to_caller(),
        Err(e) => return failed(e.to_string()),
    };
    let regions = match regions_of(&*shared, &access, &scope, &request.profile_regions).await {
        Ok(regions) if regions.is_empty() => return failed("no regions to read".into()),
        Ok(regions) => regions,
        Err(e) => return failed(e.message),
    };
    // This identity counted one until its regions were known; each region is two parts.
    shared.tally.more(regions.len() * 2 - 1);
    shared.progress();
    let mut parts = JoinSet::new();
    for region in regions {
        let mut access = access.clone();
        access.region = region.clone();
        let (s, i, m, a) = (
            shared.clone(),
            scope.identity.clone(),
            me.clone(),
            access.clone(),
        );
        parts.spawn(async move {
            let problem = described_sessions(&s, &a, &i, &m).await.err();
            s.finished(problem.map(|p| (i.as_str(), a.region.as_str(), p)));
        });
        let (s, i, m) = (shared.clone(), scope.identity.clone(), me.clone());
        parts.spawn(async move {
            let problem = looked_up(&s, &access, &i, &m).await.err();
            s.finished(problem.map(|p| (i.as_str(), access.region.as_str(), p)));
        });
    }
    while parts.join_next().await.is_some() {}
}

/// An entry from what DescribeSessions says of a session.
fn session_entry(session: &aws_sdk_ssm::types::Session, region: &str) -> Option<Entry> {
    let id = session.session_id()?;
    let mut entry = Entry::new(id, region, Source::DescribeSessions);
    entry.instance_id = session.target().unwrap_or_default().to_owned();
    entry.document = session.document_name().map(str::to_owned);
    entry.kind = Kind::of(entry.document.as_deref(), &BTreeMap::new());
    if let Some(at) = session.start_date() {
        entry.started_at(
            u64::try_from(at.secs()).unwrap_or(0),
            Source::DescribeSessions,
        );
    }
    if let Some(at) = session.end_date() {
        entry.ended_at(
            u64::try_from(at.secs()).unwrap_or(0),
            Source::DescribeSessions,
        );
    }
    let status = session.status().map(|s| s.as_str().to_owned());
    entry.ended = match status.as_deref() {
        Some("Terminated") => Some("terminated".into()),
        Some("Failed") => Some("failed".into()),
        _ => None,
    };
    entry.status = status;
    if let Some(owner) = session.owner() {
        entry.account = owner.split(':').nth(4).map(str::to_owned);
        entry.role = role_of(owner);
    }
    Some(entry)
}

/// DescribeSessions, Active and History, of the caller's own ARN.
async fn described_sessions(
    shared: &Shared,
    access: &AwsAccess,
    identity: &str,
    me: &Me,
) -> Result<(), String> {
    let ssm = access.ssm().client;
    let after = shared
        .request
        .since
        .max(unix_now().saturating_sub(SESSION_HISTORY));
    for state in [SessionState::Active, SessionState::History] {
        let mut filters = vec![filter(SessionFilterKey::Owner, &me.arn)?];
        if state == SessionState::History {
            filters.push(filter(SessionFilterKey::InvokedAfter, &format_unix(after))?);
        }
        let mut token: Option<String> = None;
        loop {
            let page = patiently(shared, || {
                let call = ssm
                    .describe_sessions()
                    .state(state.clone())
                    .set_filters(Some(filters.clone()))
                    .max_results(200)
                    .set_next_token(token.clone());
                async move {
                    call.send()
                        .await
                        .map_err(|e| CallError::from_sdk("DescribeSessions", &e))
                }
            })
            .await
            .map_err(|e| e.message)?;
            let entries = page
                .sessions()
                .iter()
                .filter_map(|s| session_entry(s, &access.region))
                .collect();
            shared.found(
                Source::DescribeSessions,
                identity,
                &access.region,
                Found {
                    entries,
                    not_mine: Vec::new(),
                },
            );
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(())
}

fn filter(key: SessionFilterKey, value: &str) -> Result<SessionFilter, String> {
    SessionFilter::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| format!("DescribeSessions filter: {e}"))
}

/// What `records` say for `me`.
fn judged<'a>(records: impl Iterator<Item = &'a TrailRecord>, me: &Me, since: u64) -> Found {
    let mut found = Found::default();
    for record in records {
        match record.judge(me) {
            Judged::Entry(entry) if entry.start.is_none_or(|s| s >= since) => {
                found.entries.push(*entry);
            }
            Judged::NotMine(id) => found.not_mine.push(id),
            _ => {}
        }
    }
    found
}

/// CloudTrail's session events of the caller's user name: the cached ones at once, then what
/// the cache does not cover yet, page by page, at CloudTrail's rate.
async fn looked_up(
    shared: &Shared,
    access: &AwsAccess,
    identity: &str,
    me: &Me,
) -> Result<(), String> {
    let region = access.region.as_str();
    let key = TrailCache::key(&me.account, region, &me.name);
    let first = shared
        .taken
        .lock()
        .map(|mut taken| taken.insert(key.clone()))
        .unwrap_or(false);
    if !first {
        // Another identity (another role, same person and account) reads this already.
        return Ok(());
    }
    let since = shared.request.since;
    let now = unix_now();
    let covered = shared
        .cache
        .lock()
        .ok()
        .and_then(|cache| cache.lookups.get(&key).cloned());
    let ranges = match &covered {
        Some(covered) => {
            shared.found(
                Source::Cloudtrail,
                identity,
                region,
                judged(covered.records.values(), me, since),
            );
            let mut ranges = vec![(covered.until.saturating_sub(REDELIVERY).max(since), None)];
            if since < covered.from {
                ranges.push((since, Some(covered.from)));
            }
            ranges
        }
        None => vec![(since, None)],
    };
    let pace = shared
        .lookups
        .lock()
        .map(|mut lookups| {
            lookups
                .entry((me.account.clone(), region.to_owned()))
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Instant::now())))
                .clone()
        })
        .map_err(|_| "the history's lookups are in disorder".to_owned())?;
    let cloudtrail = access.cloudtrail();
    let attribute = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::Username)
        .attribute_value(&me.name)
        .build()
        .map_err(|e| format!("LookupEvents attribute: {e}"))?;
    // The newest range is asked without an end: AWS's now, not this machine's (whose clock may
    // be behind, and whose seconds are whole), is where it ends.
    for (from, end) in ranges {
        let until = end.unwrap_or(now);
        let mut token: Option<String> = None;
        loop {
            let page = {
                // One call at a time per account and region, at CloudTrail's 2 a second.
                let mut next = pace.lock().await;
                tokio::time::sleep_until((*next).into()).await;
                let page = patiently(shared, || {
                    let call = cloudtrail
                        .lookup_events()
                        .lookup_attributes(attribute.clone())
                        .start_time(aws_smithy_types::DateTime::from_secs(from as i64))
                        .set_end_time(
                            end.map(|end| aws_smithy_types::DateTime::from_secs(end as i64)),
                        )
                        .max_results(50)
                        .set_next_token(token.clone());
                    async move {
                        call.send()
                            .await
                            .map_err(|e| CallError::from_sdk("LookupEvents", &e))
                    }
                })
                .await;
                *next = Instant::now() + LOOKUP_INTERVAL;
                page
            };
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    shared.store_cache();
                    return Err(e.message);
                }
            };
            let records: Vec<TrailRecord> = page
                .events()
                .iter()
                .filter_map(|event| {
                    TrailRecord::read(
                        event.event_id()?,
                        event.event_name()?,
                        u64::try_from(event.event_time()?.secs()).unwrap_or(0),
                        event.username(),
                        event.cloud_trail_event()?,
                    )
                })
                .collect();
            shared.found(
                Source::Cloudtrail,
                identity,
                region,
                judged(records.iter(), me, since),
            );
            if let Ok(mut cache) = shared.cache.lock() {
                let covered = cache.lookups.entry(key.clone()).or_insert(Covered {
                    from: until,
                    until,
                    records: BTreeMap::new(),
                });
                for record in records {
                    covered.records.insert(record.event_id.clone(), record);
                }
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        // The whole range is read: the cache covers it.
        if let Ok(mut cache) = shared.cache.lock()
            && let Some(covered) = cache.lookups.get_mut(&key)
        {
            covered.from = covered.from.min(from);
            covered.until = covered.until.max(until);
        }
        shared.store_cache();
    }
    Ok(())
}
