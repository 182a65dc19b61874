//! The sandbox's state: everything a scenario describes, plus what requests have created since
//! (temporary credentials, spent MFA codes).

use std::collections::{BTreeMap, HashMap};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use time::OffsetDateTime;

use crate::auth::AuthFailure;
use crate::clock::Clock;
use crate::iam::{Account, Caller, KeyRecord, Principal, Role, SessionFacts, User, ids};
use crate::mfa::{MfaDevice, MfaSecret};
use crate::scenario::{InstanceSpec, Scenario, Settings};

/// The identity `serve` prints: a user with an MFA device, and a role it may assume.
#[derive(Clone)]
pub struct DemoIdentity {
    /// The region to use.
    pub region: String,
    /// The demo user's access key id.
    pub access_key_id: String,
    /// Its secret access key.
    pub secret_access_key: String,
    /// The serial (ARN) of its virtual MFA device.
    pub mfa_serial: String,
    /// The device's base32 seed.
    pub mfa_secret: String,
    /// The role it may assume with MFA.
    pub role_arn: String,
    /// The tags of the instances that role may open sessions on.
    pub reach: std::collections::BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for DemoIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoIdentity")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("mfa_serial", &self.mfa_serial)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

/// Long-term credentials of a scenario user, for tests.
#[derive(Clone)]
pub struct UserKeys {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Everything the sandbox knows.
pub struct World {
    /// The sandbox clock.
    pub clock: Clock,
    /// The scenario's settings.
    pub settings: Settings,
    /// The random source for ids and keys.
    pub rng: StdRng,
    /// Accounts by id.
    pub accounts: BTreeMap<String, Account>,
    /// Access key id → what it is.
    pub keys: HashMap<String, KeyRecord>,
    /// MFA devices by serial, with the (account, user) they belong to.
    pub mfa_devices: HashMap<String, (String, String, MfaDevice)>,
    /// Long-term keys by (account, user).
    pub user_keys: BTreeMap<(String, String), UserKeys>,
    /// The demo identity, if the scenario names one.
    pub demo: Option<DemoIdentity>,
    /// The EC2 fleet, in scenario order.
    pub instances: Vec<Instance>,
    /// Instance id → index in `instances`.
    pub instance_index: HashMap<String, usize>,
    /// Session Manager sessions, oldest first.
    pub sessions: Vec<SsmSession>,
    /// Session id → index in `sessions`.
    pub session_index: HashMap<String, usize>,
    /// Where the sandbox listens, `127.0.0.1:<port>` (for stream URLs).
    pub address: std::net::SocketAddr,
    /// CloudTrail management events, oldest first.
    pub events: Vec<crate::trail::TrailEvent>,
    /// Whether LookupEvents is throttled (2 requests/s per account and region).
    pub lookup_throttle: bool,
    /// EC2 and SSM throttling, and injected latency.
    pub throttles: crate::throttle::Throttles,
    /// How long after a call LookupEvents shows its event.
    pub cloudtrail_delay: time::Duration,
    /// API requests received so far (not counting `/_sandbox/` calls), answered or refused.
    pub requests: u64,
    /// Recent LookupEvents calls per (account, region), for the throttle.
    pub lookups: HashMap<(String, String), std::collections::VecDeque<OffsetDateTime>>,
    /// Faults to inject into sessions' data channels, by session id.
    pub faults: HashMap<String, crate::agent::Faults>,
    /// Faults every newly started session gets.
    pub new_session_faults: Option<crate::agent::Faults>,
    /// How many websocket upgrades each session's data channel has been asked for.
    pub upgrades: HashMap<String, u32>,
    /// The faults injected so far.
    pub injected: crate::agent::faults::Injected,
    /// How many websocket upgrades of each session arrived with a valid SigV4 signature.
    pub signed_upgrades: HashMap<String, u32>,
    /// How many websocket upgrades of each session were refused (403: a bad signature).
    pub refused_upgrades: HashMap<String, u32>,
    /// Whether agents pace their output as the real agent does (1 KiB messages, 1 per ms).
    pub agent_pacing: bool,
    /// How long a session may see no data before the agent ends it.
    pub idle_timeout: std::time::Duration,
}

/// An EC2 instance: what the scenario says, plus what AWS would have made up at launch.
#[derive(Clone, Debug)]
pub struct Instance {
    /// The scenario's description.
    pub spec: InstanceSpec,
    /// `r-…`.
    pub reservation_id: String,
    /// `ami-…`.
    pub image_id: String,
    /// When it was launched.
    pub launch_time: OffsetDateTime,
    /// The availability zone, the region plus a letter.
    pub availability_zone: String,
    /// `vpc-…`.
    pub vpc_id: String,
    /// `subnet-…`.
    pub subnet_id: String,
}

impl Instance {
    fn new(spec: InstanceSpec) -> Self {
        // Everything derived is a function of the id, so it is the same at every start.
        let hash = fnv(spec.id.as_bytes());
        let hex = |salt: u64, n: usize| {
            let mut text = format!("{:016x}{:016x}", hash ^ salt, hash.rotate_left(17) ^ salt);
            text.truncate(n);
            text
        };
        let zone = ["a", "b", "c"][(hash % 3) as usize];
        let launch_time = time::macros::datetime!(2026-01-01 00:00 UTC)
            + time::Duration::seconds((hash % (300 * 86_400)) as i64);
        Self {
            reservation_id: format!("r-0{}", hex(0x5e, 16)),
            image_id: format!("ami-0{}", hex(0xa1, 16)),
            launch_time,
            availability_zone: format!("{}{zone}", spec.region),
            vpc_id: format!("vpc-0{}", hex(0x7c ^ fnv(spec.account.as_bytes()), 16)),
            subnet_id: format!("subnet-0{}", hex(0x5b ^ fnv(spec.region.as_bytes()), 16)),
            spec,
        }
    }

    /// The instance's ARN.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:ec2:{}:{}:instance/{}",
            self.spec.region, self.spec.account, self.spec.id
        )
    }

    /// Tags as AWS lists them: `Name` first, then the others.
    pub fn tags(&self) -> Vec<(&str, &str)> {
        let mut tags: Vec<(&str, &str)> = Vec::with_capacity(self.spec.tags.len() + 1);
        if let Some(name) = &self.spec.name {
            tags.push(("Name", name));
        }
        tags.extend(self.spec.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        tags
    }

    /// The private DNS name AWS gives the private IP.
    pub fn private_dns_name(&self) -> String {
        let ip = self.spec.private_ip.replace('.', "-");
        if self.spec.region == "us-east-1" {
            format!("ip-{ip}.ec2.internal")
        } else {
            format!("ip-{ip}.{}.compute.internal", self.spec.region)
        }
    }
}

/// 64-bit FNV-1a: a stable hash for derived ids and page-token fingerprints.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl std::fmt::Debug for SsmSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmSession")
            .field("id", &self.id)
            .field("target", &self.target)
            .field("document", &self.document)
            .field("owner_arn", &self.owner_arn)
            .field("status", &self.status)
            .field("started", &self.started)
            .field("ended", &self.ended)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The state of a Session Manager session, as DescribeSessions names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    /// Started, data channel not yet open.
    Connecting,
    /// Open.
    Connected,
    /// The client went away; the session may be resumed.
    Disconnected,
    /// Being ended.
    Terminating,
    /// Ended.
    Terminated,
    /// Failed.
    Failed,
}

impl SessionStatus {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting",
            Self::Connected => "Connected",
            Self::Disconnected => "Disconnected",
            Self::Terminating => "Terminating",
            Self::Terminated => "Terminated",
            Self::Failed => "Failed",
        }
    }

    /// Whether DescribeSessions lists it under `Active` (otherwise under `History`).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Self::Connecting | Self::Connected | Self::Disconnected
        )
    }
}

/// A Session Manager session. Its `Debug` leaves the stream token out.
#[derive(Clone)]
pub struct SsmSession {
    /// `<user or role session name>-<17 hex digits>`.
    pub id: String,
    /// The account it runs in.
    pub account: String,
    /// The region it runs in.
    pub region: String,
    /// The instance.
    pub target: String,
    /// The session document.
    pub document: String,
    /// The document parameters, as given.
    pub parameters: BTreeMap<String, Vec<String>>,
    /// The ARN of who started it.
    pub owner_arn: String,
    /// The `aws:userid` of who started it (the session's `aws:ssmmessages:session-id` tag).
    pub owner_user_id: String,
    /// The reason given at start, if any.
    pub reason: Option<String>,
    /// Its status.
    pub status: SessionStatus,
    /// When it started.
    pub started: OffsetDateTime,
    /// When it ended.
    pub ended: Option<OffsetDateTime>,
    /// The single-use token the data channel accepts next, until it is used.
    pub token: Option<String>,
}

impl World {
    /// Build the world a scenario describes, generating what it leaves out; the sandbox listens
    /// on `address`.
    pub fn new(scenario: &Scenario, clock: Clock, address: std::net::SocketAddr) -> Self {
        let mut rng = match scenario.settings.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let mut world = Self {
            clock,
            settings: scenario.settings.clone(),
            rng: StdRng::seed_from_u64(0),
            accounts: BTreeMap::new(),
            keys: HashMap::new(),
            mfa_devices: HashMap::new(),
            user_keys: BTreeMap::new(),
            demo: None,
            instances: Vec::with_capacity(scenario.fleet.instances.len()),
            instance_index: HashMap::with_capacity(scenario.fleet.instances.len()),
            sessions: Vec::new(),
            session_index: HashMap::new(),
            address,
            events: Vec::new(),
            lookup_throttle: scenario.settings.lookup_events_throttle,
            throttles: crate::throttle::Throttles::new(
                scenario.settings.ec2_throttle,
                scenario.settings.ssm_throttle,
                scenario.settings.rate_limits.clone(),
                scenario
                    .settings
                    .latency_ms
                    .iter()
                    .map(|(action, ms)| (action.clone(), std::time::Duration::from_millis(*ms)))
                    .collect(),
            ),
            cloudtrail_delay: time::Duration::seconds(
                i64::try_from(scenario.settings.cloudtrail_delay_seconds).unwrap_or(i64::MAX),
            ),
            requests: 0,
            lookups: HashMap::new(),
            faults: HashMap::new(),
            new_session_faults: None,
            upgrades: HashMap::new(),
            injected: Default::default(),
            signed_upgrades: HashMap::new(),
            refused_upgrades: HashMap::new(),
            agent_pacing: scenario.settings.agent_pacing,
            idle_timeout: std::time::Duration::from_secs(
                scenario.settings.idle_timeout_minutes * 60,
            ),
        };
        for spec in &scenario.fleet.instances {
            world
                .instance_index
                .insert(spec.id.clone(), world.instances.len());
            world.instances.push(Instance::new(spec.clone()));
        }
        for spec in &scenario.accounts {
            let mut account = Account {
                id: spec.id.clone(),
                alias: spec.alias.clone(),
                users: BTreeMap::new(),
                roles: BTreeMap::new(),
            };
            for user in &spec.users {
                let user_id = ids::unique(&mut rng, "AIDA", 17);
                let (access_key_id, secret) = match (&user.access_key_id, &user.secret_access_key) {
                    (Some(key), Some(secret)) => (key.clone(), secret.clone()),
                    _ => (ids::unique(&mut rng, "AKIA", 16), ids::secret_key(&mut rng)),
                };
                let principal = Principal::User {
                    account: spec.id.clone(),
                    name: user.name.clone(),
                    user_id: user_id.clone(),
                };
                world.keys.insert(
                    access_key_id.clone(),
                    KeyRecord::LongTerm {
                        secret: secret.clone(),
                        principal,
                    },
                );
                world.user_keys.insert(
                    (spec.id.clone(), user.name.clone()),
                    UserKeys {
                        access_key_id,
                        secret_access_key: secret,
                    },
                );
                let mfa_serial = user.mfa_device.as_ref().map(|device| {
                    let serial = format!("arn:aws:iam::{}:mfa/{device}", spec.id);
                    let secret = user
                        .mfa_secret
                        .as_deref()
                        .and_then(|s| MfaSecret::from_base32(s).ok())
                        .unwrap_or_else(|| MfaSecret::generate(&mut rng));
                    world.mfa_devices.insert(
                        serial.clone(),
                        (
                            spec.id.clone(),
                            user.name.clone(),
                            MfaDevice::new(serial.clone(), secret),
                        ),
                    );
                    serial
                });
                account.users.insert(
                    user.name.clone(),
                    User {
                        name: user.name.clone(),
                        id: user_id,
                        policies: user.policies.clone(),
                        mfa_serial,
                    },
                );
            }
            for role in &spec.roles {
                account.roles.insert(
                    role.name.clone(),
                    Role {
                        name: role.name.clone(),
                        id: ids::unique(&mut rng, "AROA", 17),
                        trust: role.trust.clone(),
                        policies: role.policies.clone(),
                        max_session_duration: role.max_session_duration,
                    },
                );
            }
            world.accounts.insert(spec.id.clone(), account);
        }
        if let Some(demo) = &scenario.demo {
            let keys = world
                .user_keys
                .get(&(demo.account.clone(), demo.user.clone()))
                .cloned();
            let device = world
                .mfa_devices
                .values()
                .find(|(account, user, _)| *account == demo.account && *user == demo.user);
            if let (Some(keys), Some((_, _, device))) = (keys, device) {
                world.demo = Some(DemoIdentity {
                    region: scenario.settings.default_region.clone(),
                    access_key_id: keys.access_key_id,
                    secret_access_key: keys.secret_access_key,
                    mfa_serial: device.serial.clone(),
                    mfa_secret: device.secret.to_base32(),
                    role_arn: format!("arn:aws:iam::{}:role/{}", demo.account, demo.role),
                    reach: demo.reach.clone(),
                });
            }
        }
        world.rng = rng;
        world.seed_history(&scenario.history);
        world
    }

    /// Record the scenario's older events, as if they had happened before the start.
    fn seed_history(&mut self, history: &[crate::scenario::HistorySpec]) {
        use serde_json::json;

        use crate::iam::{Issuer, SessionFacts};
        use crate::scenario::HistoryEvent;
        use crate::trail::{self, EventContext, Outcome};
        use crate::wire::Service;

        let start = self.now();
        for seed in history {
            let at = start - time::Duration::minutes(seed.minutes_ago);
            let Some(principal) = self.principal_for_arn(&seed.principal) else {
                continue;
            };
            let is_user = matches!(principal, Principal::User { .. });
            let long_term = is_user
                && matches!(
                    seed.event,
                    HistoryEvent::GetSessionToken | HistoryEvent::AssumeRole
                );
            let access_key_id = match (&principal, long_term) {
                (Principal::User { account, name, .. }, true) => self
                    .user_keys
                    .get(&(account.clone(), name.clone()))
                    .map(|k| k.access_key_id.clone())
                    .unwrap_or_default(),
                _ => ids::unique(&mut self.rng, "ASIA", 16),
            };
            let session = (!long_term).then(|| SessionFacts {
                issuer: if is_user {
                    Issuer::SessionToken
                } else {
                    Issuer::AssumeRole
                },
                issued: at - time::Duration::minutes(10),
                expires: at + time::Duration::hours(1),
                mfa_authenticated_at: seed.mfa.then_some(at - time::Duration::minutes(10)),
                source_identity: seed.source_identity.clone(),
                tags: Vec::new(),
            });
            let caller = Caller {
                principal,
                access_key_id,
                session,
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            let agent = "aws-cli/2.22.0 md/awscrt#0.22.0 ua/2.0 os/linux#6.8 md/arch#x86_64 lang/python#3.12.6";
            let context = |time, request_id| EventContext {
                time,
                region: &seed.region,
                source_ip: "127.0.0.1",
                user_agent: agent,
                request_id,
            };
            let session_id = seed.session_id.clone().unwrap_or_else(|| {
                format!(
                    "{}-{}",
                    caller.principal.short_name(),
                    ids::hex(&mut self.rng, 17)
                )
            });
            let stream = format!(
                "wss://ssmmessages.{}.amazonaws.com/v1/data-channel/{session_id}?role=publish_subscribe",
                seed.region
            );
            let outcome = match seed.event {
                HistoryEvent::StartSession => {
                    let target = seed.target.clone().unwrap_or_default();
                    let mut request = json!({ "target": target });
                    if let Some(document) = &seed.document {
                        request["documentName"] = json!(document);
                    }
                    if !seed.parameters.is_empty() {
                        request["parameters"] = json!(seed.parameters);
                    }
                    let ended = seed
                        .ended_minutes_ago
                        .map(|m| start - time::Duration::minutes(m));
                    self.session_index
                        .insert(session_id.clone(), self.sessions.len());
                    self.sessions.push(SsmSession {
                        id: session_id.clone(),
                        account: seed.account.clone(),
                        region: seed.region.clone(),
                        target: target.clone(),
                        document: seed
                            .document
                            .clone()
                            .unwrap_or_else(|| "SSM-SessionManagerRunShell".into()),
                        parameters: seed.parameters.clone(),
                        owner_arn: caller.principal.arn(),
                        owner_user_id: caller.principal.user_id(),
                        reason: None,
                        status: SessionStatus::Terminated,
                        started: at,
                        ended: Some(ended.unwrap_or(at + time::Duration::minutes(20))),
                        token: None,
                    });
                    Outcome {
                        name: "StartSession",
                        service: Service::Ssm,
                        request,
                        response: Some(
                            json!({ "sessionId": session_id, "tokenValue": trail::HIDDEN, "streamUrl": stream }),
                        ),
                        error: None,
                        resources: vec![("AWS::EC2::Instance".into(), target)],
                        also_in: None,
                    }
                }
                HistoryEvent::ResumeSession => Outcome {
                    name: "ResumeSession",
                    service: Service::Ssm,
                    request: json!({ "sessionId": session_id }),
                    response: Some(
                        json!({ "sessionId": session_id, "tokenValue": trail::HIDDEN, "streamUrl": stream }),
                    ),
                    error: None,
                    resources: Vec::new(),
                    also_in: None,
                },
                HistoryEvent::TerminateSession => Outcome {
                    name: "TerminateSession",
                    service: Service::Ssm,
                    request: json!({ "sessionId": session_id }),
                    response: Some(json!({ "sessionId": session_id })),
                    error: None,
                    resources: Vec::new(),
                    also_in: None,
                },
                HistoryEvent::AssumeRole => {
                    let role_arn = seed.role_arn.clone().unwrap_or_default();
                    let session_name = caller.principal.short_name().to_owned();
                    Outcome {
                        name: "AssumeRole",
                        service: Service::Sts,
                        request: json!({ "roleArn": role_arn, "roleSessionName": session_name }),
                        response: Some(json!({
                            "credentials": {
                                "accessKeyId": ids::unique(&mut self.rng, "ASIA", 16),
                                "sessionToken": ids::session_token(&mut self.rng),
                                "expiration": trail::console_time(at + time::Duration::hours(1)),
                            },
                        })),
                        error: None,
                        resources: vec![("AWS::IAM::Role".into(), role_arn)],
                        also_in: None,
                    }
                }
                HistoryEvent::GetSessionToken => Outcome {
                    name: "GetSessionToken",
                    service: Service::Sts,
                    request: Value::Null,
                    response: Some(json!({
                        "credentials": {
                            "accessKeyId": ids::unique(&mut self.rng, "ASIA", 16),
                            "sessionToken": ids::session_token(&mut self.rng),
                            "expiration": trail::console_time(at + time::Duration::hours(12)),
                        },
                    })),
                    error: None,
                    resources: Vec::new(),
                    also_in: None,
                },
            };
            trail::record_at(self, &context(at, &request_id), &caller, outcome);
            if seed.event == HistoryEvent::StartSession
                && let Some(ended) = seed.ended_minutes_ago
            {
                let end_id = uuid::Uuid::new_v4().to_string();
                let end = Outcome {
                    name: "TerminateSession",
                    service: Service::Ssm,
                    request: json!({ "sessionId": session_id }),
                    response: Some(json!({ "sessionId": session_id })),
                    error: None,
                    resources: Vec::new(),
                    also_in: None,
                };
                trail::record_at(
                    self,
                    &context(start - time::Duration::minutes(ended), &end_id),
                    &caller,
                    end,
                );
            }
        }
        self.events.sort_by_key(|e| e.time);
    }

    /// The principal an ARN names: an IAM user, or a session of a role (`assumed-role/R/S`).
    pub fn principal_for_arn(&self, arn: &str) -> Option<Principal> {
        if let Some(rest) = arn.strip_prefix("arn:aws:iam::") {
            let (account, name) = rest.split_once(":user/")?;
            let user = self.accounts.get(account)?.users.get(name)?;
            return Some(Principal::User {
                account: account.into(),
                name: name.into(),
                user_id: user.id.clone(),
            });
        }
        let rest = arn.strip_prefix("arn:aws:sts::")?;
        let (account, path) = rest.split_once(":assumed-role/")?;
        let (role_name, session_name) = path.split_once('/')?;
        let role = self.accounts.get(account)?.roles.get(role_name)?;
        Some(Principal::AssumedRole {
            account: account.into(),
            role_name: role_name.into(),
            role_id: role.id.clone(),
            session_name: session_name.into(),
        })
    }

    /// The instance `id`, if it exists.
    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instance_index.get(id).map(|&i| &self.instances[i])
    }

    /// The session `id`, if it exists.
    pub fn session_mut(&mut self, id: &str) -> Option<&mut SsmSession> {
        self.session_index.get(id).map(|&i| &mut self.sessions[i])
    }

    /// The current sandbox time.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The identity policies that apply to a caller.
    pub fn identity_policies(&self, principal: &Principal) -> Vec<&crate::policy::PolicyDocument> {
        let Some(account) = self.accounts.get(principal.account()) else {
            return Vec::new();
        };
        match principal {
            Principal::User { name, .. } => account
                .users
                .get(name)
                .map(|u| u.policies.iter().collect())
                .unwrap_or_default(),
            Principal::AssumedRole { role_name, .. } => account
                .roles
                .get(role_name)
                .map(|r| r.policies.iter().collect())
                .unwrap_or_default(),
        }
    }

    /// Issue temporary credentials for `principal`.
    pub fn issue_temporary(
        &mut self,
        principal: Principal,
        facts: SessionFacts,
    ) -> IssuedCredentials {
        let access_key_id = ids::unique(&mut self.rng, "ASIA", 16);
        let secret = ids::secret_key(&mut self.rng);
        let session_token = ids::session_token(&mut self.rng);
        let expires = facts.expires;
        self.keys.insert(
            access_key_id.clone(),
            KeyRecord::Temporary {
                secret: secret.clone(),
                session_token: session_token.clone(),
                principal,
                facts,
            },
        );
        IssuedCredentials {
            access_key_id,
            secret_access_key: secret,
            session_token,
            expires,
        }
    }

    /// Resolve an access key to its secret and caller, checking the session token and expiry.
    pub fn caller_for_key(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(Caller, &str), AuthFailure> {
        match self.keys.get(access_key_id) {
            None => Err(AuthFailure::UnknownKey),
            Some(KeyRecord::LongTerm { secret, principal }) => {
                // A session token sent with a long-term key is not valid for it.
                if session_token.is_some() {
                    return Err(AuthFailure::UnknownKey);
                }
                let caller = Caller {
                    principal: principal.clone(),
                    access_key_id: access_key_id.to_owned(),
                    session: None,
                };
                Ok((caller, secret))
            }
            Some(KeyRecord::Temporary {
                secret,
                session_token: expected,
                principal,
                facts,
            }) => {
                if session_token != Some(expected.as_str()) {
                    return Err(AuthFailure::UnknownKey);
                }
                if now >= facts.expires {
                    return Err(AuthFailure::ExpiredToken);
                }
                let caller = Caller {
                    principal: principal.clone(),
                    access_key_id: access_key_id.to_owned(),
                    session: Some(facts.clone()),
                };
                Ok((caller, secret))
            }
        }
    }
}

/// Credentials STS hands out.
pub struct IssuedCredentials {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// When they expire.
    pub expires: OffsetDateTime,
}
