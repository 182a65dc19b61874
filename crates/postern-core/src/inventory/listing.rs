//! Listing the fleet: every identity of the fleet view × every region, side by side (bounded),
//! each DescribeInstances (pages of 1,000) joined with DescribeInstanceInformation (asked in
//! slices of 50 instance ids, AWS's page limit, several at once, rather than page after page).
//!
//! Results stream in as [`Event`]s: a [`Part`] per identity and region, and [`Progress`] (done,
//! total, and how many calls are waiting out throttling). Throttling (EC2's
//! `RequestLimitExceeded`, SSM's `ThrottlingException`) is waited out with exponential backoff
//! and jitter, as progress rather than an error, up to [`Limits::give_up`]; past it the part
//! fails with a note and the rows cached before stay. Dropping the [`Listing`] cancels it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ssm::types::InstanceInformationStringFilter;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rand::Rng;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::aws::AwsAccess;
use crate::credentials::{Resolver, Selection};
use crate::credentials::{format_unix, unix_now};
use crate::inventory::row::{Judge, Row, SsmStatus};
use crate::progress::{Job, Tally};
use crate::reach::{Reach, Who};
use crate::settings::Regions;

/// One identity of the fleet view.
#[derive(Clone, Debug)]
pub struct Scope {
    /// Its name in rows: the profile, or `environment`.
    pub identity: String,
    /// How to get its credentials.
    pub selection: Selection,
    /// Its regions.
    pub regions: Regions,
}

impl Scope {
    /// The active identity (or `profile`), in `region`, else the settings' regions. A profile
    /// is named without its credentials (a cached list needs no MFA code); only the
    /// environment's keys, which cost nothing to read, are resolved, for their region: with no
    /// profile at all, the environment's region is the one listed.
    pub async fn active(
        resolver: &Resolver,
        profile: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self, crate::credentials::CredentialError> {
        let regions = match region {
            Some(region) => Regions::Listed(vec![region.to_owned()]),
            None => resolver.settings().inventory.regions.clone(),
        };
        let selection = Selection::from_option(profile);
        if let Some(profile) = resolver.profile_name(&selection)? {
            return Ok(Self {
                identity: profile,
                selection,
                regions,
            });
        }
        let resolved = resolver.credentials(&selection).await?;
        let regions = match (&regions, &resolved.region) {
            (Regions::OfProfiles, Some(own)) if region.is_none() => {
                Regions::Listed(vec![own.clone()])
            }
            _ => regions,
        };
        Ok(Self {
            identity: "environment".to_owned(),
            selection,
            regions,
        })
    }
}

/// How hard to push.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Identity × region listings at once.
    pub regions_at_once: usize,
    /// DescribeInstanceInformation calls at once in one identity × region.
    pub calls_at_once: usize,
    /// How long one call may keep being throttled before its part gives up.
    pub give_up: Duration,
    /// The first backoff after a throttled call (doubling, with jitter, up to `max_backoff`).
    pub first_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            regions_at_once: 8,
            calls_at_once: 4,
            give_up: Duration::from_secs(60),
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What a listing needs besides the identities.
pub struct Request {
    /// Credentials for every identity.
    pub resolver: Arc<Resolver>,
    /// The identities and their regions.
    pub scopes: Vec<Scope>,
    /// The regions of the user's profiles, for [`Regions::OfProfiles`].
    pub profile_regions: Vec<String>,
    /// The tag rules.
    pub reach: Reach,
    /// Account aliases.
    pub aliases: BTreeMap<String, String>,
    /// When StartSession last refused an identity, by identity and then instance id.
    pub denied: BTreeMap<String, BTreeMap<String, u64>>,
    /// How hard to push.
    pub limits: Limits,
}

impl Request {
    /// A request for `scopes` with everything else from the resolver: the profiles' regions,
    /// the tag rules and account aliases of the settings, the refusals remembered in Postern's
    /// state, the default limits.
    pub fn for_scopes(
        resolver: Arc<Resolver>,
        scopes: Vec<Scope>,
    ) -> Result<Self, crate::settings::SettingsError> {
        let state = crate::settings::State::load(resolver.paths())?;
        let settings = resolver.settings();
        Ok(Self {
            profile_regions: resolver.profile_regions(),
            reach: settings.inventory.reach.clone(),
            aliases: settings.account_aliases.clone(),
            denied: state.denied_sessions,
            limits: Limits::default(),
            scopes,
            resolver,
        })
    }
}

pub use crate::progress::Progress;

/// The instances of one identity in one region.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Part {
    /// The identity.
    pub identity: String,
    /// The region (empty when the identity could not be used at all).
    pub region: String,
    /// The account, when known.
    pub account: Option<String>,
    /// The role name, when the identity is a role.
    pub role: Option<String>,
    /// The rows (none when the listing failed).
    pub rows: Vec<Row>,
    /// Why the listing failed, if it did.
    pub problem: Option<String>,
    /// Something the rows do not show (SSM status unknown, and why).
    pub note: Option<String>,
    /// When it was listed (seconds since the epoch).
    pub listed_at: u64,
}

/// What a listing reports.
#[derive(Clone, Debug)]
pub enum Event {
    /// How far it has got.
    Progress(Progress),
    /// One identity × region, listed (or failed).
    Part(Part),
}

/// A listing under way; dropping it cancels it.
pub struct Listing(Job<Event>);

impl Listing {
    /// Start listing.
    pub fn start(request: Request) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            tx,
            tally: Tally::new(request.scopes.len()),
            regions: Arc::new(Semaphore::new(request.limits.regions_at_once.max(1))),
            request,
        });
        let task = tokio::spawn(async move {
            shared.progress();
            let mut identities = JoinSet::new();
            for scope in shared.request.scopes.clone() {
                identities.spawn(list_identity(shared.clone(), scope));
            }
            while identities.join_next().await.is_some() {}
        });
        Self(Job::new(events, task))
    }

    /// The next event; `None` once everything is listed.
    pub async fn next(&mut self) -> Option<Event> {
        self.0.next().await
    }
}

struct Shared {
    tx: mpsc::UnboundedSender<Event>,
    tally: Tally,
    regions: Arc<Semaphore>,
    request: Request,
}

impl Shared {
    fn progress(&self) {
        let _ = self.tx.send(Event::Progress(self.tally.now()));
    }

    fn finished(&self, part: Part) {
        let _ = self.tx.send(Event::Part(part));
        self.tally.one_done();
        self.progress();
    }
}

/// A failed call, in words that never echo the request (it may hold credentials).
#[derive(Debug)]
pub(crate) struct CallError {
    pub(crate) code: Option<String>,
    pub(crate) message: String,
}

impl CallError {
    pub(crate) fn from_sdk<E, R>(
        operation: &str,
        error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        match error {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("Unknown").to_owned();
                let message = match e.message() {
                    Some(m) if !m.is_empty() => format!("{operation}: {code}: {m}"),
                    _ => format!("{operation}: {code}"),
                };
                Self {
                    code: Some(code),
                    message,
                }
            }
            other => Self {
                code: None,
                message: format!("{operation}: {}", crate::failure::transport_failure(other)),
            },
        }
    }

    fn throttled(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|code| crate::failure::THROTTLING_CODES.contains(&code))
    }
}

/// Someone making calls that may be throttled: how long to keep at it, and who to tell while
/// it waits.
pub(crate) trait Waiting {
    /// How hard to push.
    fn limits(&self) -> &Limits;
    /// One more call is waiting out throttling (`true`), or one fewer (`false`).
    fn waiting(&self, more: bool);
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

/// Make a call, waiting out throttling with backoff and jitter (reported as progress) up to the
/// give-up limit.
pub(crate) async fn patiently<T, Fut>(
    waiting: &impl Waiting,
    mut call: impl FnMut() -> Fut,
) -> Result<T, CallError>
where
    Fut: Future<Output = Result<T, CallError>>,
{
    let limits = waiting.limits();
    let started = Instant::now();
    let mut backoff = limits.first_backoff;
    loop {
        match call().await {
            Err(e) if e.throttled() && started.elapsed() < limits.give_up => {
                // Equal jitter: half the backoff for sure, the other half at random.
                let half = backoff / 2;
                let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
                let wait = half + Duration::from_millis(jitter);
                waiting.waiting(true);
                tokio::time::sleep(wait).await;
                waiting.waiting(false);
                backoff = (backoff * 2).min(limits.max_backoff);
            }
            Err(e) if e.throttled() => {
                return Err(CallError {
                    code: e.code,
                    message: format!(
                        "{} (still throttled after {} s)",
                        e.message,
                        limits.give_up.as_secs()
                    ),
                });
            }
            other => return other,
        }
    }
}

/// The region an identity's clients start in: its own, else the first listed or of the profiles.
pub(crate) fn home_region(
    scope: &Scope,
    resolved: &crate::credentials::Resolved,
    profile_regions: &[String],
) -> Option<String> {
    let listed = match &scope.regions {
        Regions::Listed(list) => list.first().cloned(),
        _ => None,
    };
    resolved
        .region
        .clone()
        .or(listed)
        .or_else(|| profile_regions.first().cloned())
}

/// The regions of an identity: as listed, those of the user's profiles (and its own), or every
/// region DescribeRegions names.
pub(crate) async fn regions_of(
    waiting: &impl Waiting,
    access: &AwsAccess,
    scope: &Scope,
    profile_regions: &[String],
) -> Result<Vec<String>, CallError> {
    Ok(match &scope.regions {
        Regions::Listed(list) => list.clone(),
        Regions::OfProfiles => {
            let mut list = profile_regions.to_vec();
            if let Some(own) = &access.resolved.region
                && !list.contains(own)
            {
                list.push(own.clone());
            }
            if list.is_empty() {
                list.push(access.region.clone());
            }
            list
        }
        Regions::All => {
            let ec2 = access.ec2();
            let answer = patiently(waiting, || {
                let ec2 = ec2.clone();
                async move {
                    ec2.describe_regions()
                        .send()
                        .await
                        .map_err(|e| CallError::from_sdk("DescribeRegions", &e))
                }
            })
            .await?;
            answer
                .regions()
                .iter()
                .filter_map(|r| r.region_name().map(str::to_owned))
                .collect()
        }
    })
}

/// The role name in an assumed-role ARN (`arn:aws:sts::1:assumed-role/Role/session`).
pub fn role_of(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.split('/');
    match parts.next()? {
        "assumed-role" => parts.next().map(str::to_owned),
        _ => None,
    }
}

async fn list_identity(shared: Arc<Shared>, scope: Scope) {
    let request = &shared.request;
    let failed = |problem: String, account: Option<String>| Part {
        identity: scope.identity.clone(),
        region: String::new(),
        account,
        role: None,
        rows: Vec::new(),
        problem: Some(problem),
        note: None,
        listed_at: unix_now(),
    };
    let (resolved, account, arn) = match request.resolver.whoami(&scope.selection).await {
        Ok((resolved, account, arn, _)) => (resolved, account, arn),
        Err(e) => {
            shared.finished(failed(e.to_string(), None));
            return;
        }
    };
    let role = role_of(&arn);
    let Some(home) = home_region(&scope, &resolved, &request.profile_regions) else {
        shared.finished(failed(
            crate::aws::AccessError::NoRegion.to_string(),
            Some(account),
        ));
        return;
    };
    let access = match AwsAccess::new(
        request.resolver.clone(),
        scope.selection.clone(),
        Some(&home),
    )
    .await
    {
        Ok(access) => access.leaving_throttling_to_caller(),
        Err(e) => {
            shared.finished(failed(e.to_string(), Some(account)));
            return;
        }
    };
    let regions = match regions_of(&*shared, &access, &scope, &request.profile_regions).await {
        Ok(regions) => regions,
        Err(e) => {
            shared.finished(failed(e.message, Some(account)));
            return;
        }
    };
    if regions.is_empty() {
        shared.finished(failed("no regions to list".into(), Some(account)));
        return;
    }
    // This identity counted one until its regions were known.
    shared.tally.more(regions.len() - 1);
    shared.progress();
    let mut lists = JoinSet::new();
    for region in regions {
        let shared = shared.clone();
        let mut access = access.clone();
        access.region = region.clone();
        let identity = scope.identity.clone();
        let account = account.clone();
        let role = role.clone();
        lists.spawn(async move {
            let Ok(_permit) = shared.regions.clone().acquire_owned().await else {
                return;
            };
            let part = list_region(&shared, &access, identity, account, role).await;
            shared.finished(part);
        });
    }
    while lists.join_next().await.is_some() {}
}

/// What DescribeInstanceInformation says of one instance.
struct Info {
    status: SsmStatus,
    agent_version: Option<String>,
    last_ping: Option<String>,
    name: Option<String>,
    ip: Option<String>,
    platform: Option<String>,
}

fn info_of(item: &aws_sdk_ssm::types::InstanceInformation) -> Info {
    use aws_sdk_ssm::types::PingStatus;
    let status = match item.ping_status() {
        Some(PingStatus::Online) => SsmStatus::Online,
        Some(PingStatus::ConnectionLost) => SsmStatus::ConnectionLost,
        _ => SsmStatus::Inactive,
    };
    Info {
        status,
        agent_version: item.agent_version().map(str::to_owned),
        last_ping: item
            .last_ping_date_time()
            .map(|t| format_unix(u64::try_from(t.secs()).unwrap_or(0))),
        name: item.name().or(item.computer_name()).map(str::to_owned),
        ip: item.ip_address().map(str::to_owned),
        platform: item.platform_name().map(str::to_owned),
    }
}

/// What DescribeInstanceInformation said of some instances, by id.
type Answer = Result<Vec<(String, Info)>, CallError>;

/// DescribeInstanceInformation with `filter`, every page.
async fn describe_information(
    shared: &Shared,
    ssm: &aws_sdk_ssm::Client,
    filter: InstanceInformationStringFilter,
) -> Result<Vec<(String, Info)>, CallError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = patiently(shared, || {
            let call = ssm
                .describe_instance_information()
                .filters(filter.clone())
                .max_results(50)
                .set_next_token(token.clone());
            async move {
                call.send()
                    .await
                    .map_err(|e| CallError::from_sdk("DescribeInstanceInformation", &e))
            }
        })
        .await?;
        for item in page.instance_information_list() {
            if let Some(id) = item.instance_id() {
                out.push((id.to_owned(), info_of(item)));
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// DescribeInstanceInformation for a slice of instance ids. AWS refuses the whole call with
/// `InvalidInstanceId` ("Instances [[i-…, i-…]] not in a valid state for account …") when any of
/// them is not registered; those are left out (not managed) and the rest asked again. When the
/// message names none of them, the slice is halved until the unregistered ones stand alone.
async fn describe_slice(
    shared: &Shared,
    ssm: &aws_sdk_ssm::Client,
    ids: Vec<String>,
) -> Result<Vec<(String, Info)>, CallError> {
    let mut found = Vec::new();
    let mut pending = vec![ids];
    while let Some(slice) = pending.pop() {
        if slice.is_empty() {
            continue;
        }
        let Some(by_id) = filter("InstanceIds", slice.clone()) else {
            continue;
        };
        match describe_information(shared, ssm, by_id).await {
            Ok(answer) => found.extend(answer),
            Err(e) if e.code.as_deref() == Some("InvalidInstanceId") => {
                let named: Vec<&String> = slice
                    .iter()
                    .filter(|id| e.message.contains(id.as_str()))
                    .collect();
                if !named.is_empty() {
                    let rest: Vec<String> = slice
                        .iter()
                        .filter(|id| !e.message.contains(id.as_str()))
                        .cloned()
                        .collect();
                    pending.push(rest);
                } else if slice.len() > 1 {
                    let (a, b) = slice.split_at(slice.len() / 2);
                    pending.push(a.to_vec());
                    pending.push(b.to_vec());
                }
                // A single id refused on its own: not registered.
            }
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

fn filter(key: &str, values: Vec<String>) -> Option<InstanceInformationStringFilter> {
    InstanceInformationStringFilter::builder()
        .key(key)
        .set_values(Some(values))
        .build()
        .ok()
}

fn ec2_row(instance: &aws_sdk_ec2::types::Instance) -> Option<(String, Row)> {
    let id = instance.instance_id()?.to_owned();
    let tags: BTreeMap<String, String> = instance
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
        .collect();
    let state = instance
        .state()
        .and_then(|s| s.name())
        .map(|s| s.as_str().to_owned());
    let row = Row {
        name: tags.get("Name").cloned(),
        state,
        platform: instance
            .platform_details()
            .map(str::to_owned)
            .or_else(|| instance.platform().map(|p| p.as_str().to_owned())),
        private_ip: instance.private_ip_address().map(str::to_owned),
        tags,
        ..Row::unlisted(&id)
    };
    Some((id, row))
}

async fn list_region(
    shared: &Arc<Shared>,
    access: &AwsAccess,
    identity: String,
    account: String,
    role: Option<String>,
) -> Part {
    let request = &shared.request;
    let region = access.region.clone();
    let mut part = Part {
        identity: identity.clone(),
        region: region.clone(),
        account: Some(account.clone()),
        role: role.clone(),
        rows: Vec::new(),
        problem: None,
        note: None,
        listed_at: unix_now(),
    };
    let ec2 = access.ec2_in(&region);
    let ssm = access.ssm().client;
    let calls = Arc::new(Semaphore::new(request.limits.calls_at_once.max(1)));
    let mut information: JoinSet<(Vec<String>, Answer)> = JoinSet::new();
    let mut rows: HashMap<String, Row> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = patiently(&**shared, || {
            let call = ec2
                .describe_instances()
                .max_results(1000)
                .set_next_token(token.clone());
            async move {
                call.send()
                    .await
                    .map_err(|e| CallError::from_sdk("DescribeInstances", &e))
            }
        })
        .await;
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                part.problem = Some(e.message);
                information.abort_all();
                return part;
            }
        };
        let mut ids = Vec::new();
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            let Some((id, row)) = ec2_row(instance) else {
                continue;
            };
            if row.state.as_deref() == Some("terminated") || rows.contains_key(&id) {
                continue;
            }
            ids.push(id.clone());
            order.push(id.clone());
            rows.insert(id, row);
        }
        // Ask Systems Manager about this page while the next one comes.
        for slice in ids.chunks(50) {
            let shared = shared.clone();
            let ssm = ssm.clone();
            let calls = calls.clone();
            let slice = slice.to_vec();
            information.spawn(async move {
                let _permit = calls.acquire_owned().await;
                let found = describe_slice(&shared, &ssm, slice.clone()).await;
                (slice, found)
            });
        }
        token = page
            .next_token()
            .map(str::to_owned)
            .filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    // Hybrid nodes (`mi-…`) are known to Systems Manager only.
    let hybrid = match filter("ResourceType", vec!["ManagedInstance".into()]) {
        Some(by_type) => describe_information(shared, &ssm, by_type).await,
        None => Ok(Vec::new()),
    };
    let mut unknown: Option<String> = None;
    let mut asked: HashMap<String, Info> = HashMap::new();
    let mut not_asked: Vec<String> = Vec::new();
    while let Some(joined) = information.join_next().await {
        let Ok((slice, found)) = joined else {
            continue;
        };
        match found {
            Ok(found) => asked.extend(found),
            // Still throttled past the limit: the part fails, so the rows listed before (with
            // their SSM status) stay rather than turn "unknown".
            Err(e) if e.throttled() => {
                information.abort_all();
                part.problem = Some(e.message);
                return part;
            }
            Err(e) => {
                unknown.get_or_insert(e.message);
                not_asked.extend(slice);
            }
        }
    }
    match hybrid {
        Ok(nodes) => {
            for (id, info) in nodes {
                if rows.contains_key(&id) {
                    continue;
                }
                let row = Row {
                    name: info.name.clone(),
                    platform: info.platform.clone(),
                    private_ip: info.ip.clone(),
                    ..Row::unlisted(&id)
                };
                order.push(id.clone());
                rows.insert(id.clone(), row);
                asked.insert(id, info);
            }
        }
        Err(e) if e.throttled() => {
            part.problem = Some(e.message);
            return part;
        }
        Err(e) => {
            unknown.get_or_insert(e.message);
        }
    }
    for id in &not_asked {
        if let Some(row) = rows.get_mut(id) {
            row.ssm_status = SsmStatus::Unknown;
        }
    }
    for (id, info) in asked {
        if let Some(row) = rows.get_mut(&id) {
            row.ssm_status = info.status;
            row.agent_version = info.agent_version;
            row.last_ping = info.last_ping;
        }
    }
    if let Some(why) = unknown {
        part.note = Some(format!("SSM status unknown for some instances: {why}"));
    }
    let no_denials = BTreeMap::new();
    let judge = Judge {
        who: Who {
            account: &account,
            role: role.as_deref(),
        },
        reach: &request.reach,
        denied: request.denied.get(&identity).unwrap_or(&no_denials),
    };
    let alias = request.aliases.get(&account).cloned();
    part.rows = order
        .into_iter()
        .filter_map(|id| rows.remove(&id))
        .map(|mut row| {
            row.account = account.clone();
            row.account_alias = alias.clone();
            row.region = region.clone();
            row.identity = identity.clone();
            judge.judge(&mut row);
            row
        })
        .collect();
    part
}

/// Judge cached rows again with today's rules and denials (they may have changed since).
pub fn rejudge(part: &mut Part, reach: &Reach, denied: &BTreeMap<String, BTreeMap<String, u64>>) {
    let Some(account) = part.account.clone() else {
        return;
    };
    let no_denials = BTreeMap::new();
    let judge = Judge {
        who: Who {
            account: &account,
            role: part.role.as_deref(),
        },
        reach,
        denied: denied.get(&part.identity).unwrap_or(&no_denials),
    };
    for row in &mut part.rows {
        judge.judge(row);
    }
}

#[cfg(test)]
mod tests {
    use super::role_of;

    #[test]
    fn roles_from_arns() {
        assert_eq!(
            role_of("arn:aws:sts::111111111111:assumed-role/dev/jo").as_deref(),
            Some("dev")
        );
        assert_eq!(role_of("arn:aws:iam::111111111111:user/jo"), None);
        assert_eq!(role_of("nonsense"), None);
    }
}
