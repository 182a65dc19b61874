//! The sandbox's state: everything a scenario describes, plus what requests have created since
//! (temporary credentials, spent MFA codes).

use std::collections::{BTreeMap, HashMap};

use rand::SeedableRng;
use rand::rngs::StdRng;
use time::OffsetDateTime;

use crate::auth::AuthFailure;
use crate::clock::Clock;
use crate::iam::{Account, Caller, KeyRecord, Principal, Role, SessionFacts, User, ids};
use crate::mfa::{MfaDevice, MfaSecret};
use crate::scenario::{Scenario, Settings};

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
}

impl World {
    /// Build the world a scenario describes, generating what it leaves out.
    pub fn new(scenario: &Scenario, clock: Clock) -> Self {
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
        };
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
                });
            }
        }
        world.rng = rng;
        world
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
