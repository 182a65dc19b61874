//! A local AWS on 127.0.0.1 for Postern's tests, benchmarks and demos.
//!
//! One HTTP endpoint serves STS, EC2, SSM and CloudTrail in each service's own protocol, and
//! enforces what AWS enforces: SigV4 signatures (checked with the `aws-sigv4` crate), session
//! tokens and their expiry, TOTP MFA codes, trust and identity policies, duration limits. What it
//! knows comes from a [`Scenario`]; its time from a [`Clock`] that tests can move.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use postern_sandbox::{Sandbox, Scenario};
//!
//! let sandbox = Sandbox::builder(Scenario::default_world()).start().await?;
//! let demo = sandbox.demo().expect("the default scenario has a demo user");
//! println!("{} as {}", sandbox.endpoint(), demo.access_key_id);
//! let code = sandbox.mfa_code(&demo.mfa_serial).expect("a device");
//! # let _ = code; Ok(()) }
//! ```
//!
//! How a request flows: [`http`] reads it and routes it to a service, [`auth`] resolves its
//! signature to a [`iam::Caller`], and [`services`] runs the operation against the [`world::World`]
//! and renders the answer through [`wire`]. Errors carry each service's own codes and statuses;
//! `docs/aws-wire-reference.md` records the sources for them and where AWS's documents and
//! observed behaviour disagree.
//!
//! Production crates never depend on this one.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod admin;
pub mod agent;
pub mod auth;
pub mod clock;
pub mod fleet;
pub mod http;
pub mod iam;
pub mod mfa;
pub mod policy;
pub mod scenario;
pub mod services;
pub mod shared;
pub mod sigv4;
pub mod throttle;
pub mod trail;
pub mod wire;
pub mod world;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use crate::clock::Clock;
pub use crate::scenario::Scenario;
pub use crate::world::{DemoIdentity, UserKeys};

/// How to start a sandbox.
#[derive(Debug)]
pub struct Builder {
    scenario: Scenario,
    port: u16,
    clock: Option<Clock>,
    homes: Option<std::path::PathBuf>,
    idle_timeout: Option<std::time::Duration>,
    admin: bool,
}

impl Builder {
    /// Serve the admin API under `/_sandbox/` (the default) or not: off, those paths answer
    /// 404 like any unknown path (the desktop app runs its sandbox so).
    pub fn admin(mut self, on: bool) -> Self {
        self.admin = on;
        self
    }

    /// Listen on `port` of 127.0.0.1 (0, the default, lets the system pick).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Use `clock` instead of the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Make the folders of shell and command sessions (their HOME) under `dir` instead of the
    /// system's temporary directory.
    pub fn session_homes(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.homes = Some(dir.into());
        self
    }

    /// End sessions after `timeout` without activity instead of the scenario's
    /// `idle_timeout_minutes`.
    pub fn idle_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Bind 127.0.0.1 and serve in the background until the [`Sandbox`] is dropped.
    pub async fn start(self) -> std::io::Result<Sandbox> {
        let clock = self.clock.unwrap_or_else(Clock::system);
        let listener =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))).await?;
        let address = listener.local_addr()?;
        let mut world = world::World::new(&self.scenario, clock.clone(), address);
        if let Some(timeout) = self.idle_timeout {
            world.idle_timeout = timeout;
        }
        let homes = self.homes.unwrap_or_else(std::env::temp_dir);
        let shared = shared::Shared::with_homes(world, homes);
        shared.set_admin(self.admin);
        let app = http::router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>();
        // Nagle off, as AWS's endpoints answer: small data-channel frames go out at once.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "the sandbox's server stopped");
            }
        });
        Ok(Sandbox {
            address,
            shared,
            clock,
            stop: Some(stop),
        })
    }
}

/// A running sandbox. Dropping it stops the server and ends every session; [`Sandbox::stop`]
/// also waits for the sessions' folders to be removed.
pub struct Sandbox {
    address: SocketAddr,
    shared: Arc<shared::Shared>,
    clock: Clock,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Start describing a sandbox for `scenario`.
    pub fn builder(scenario: Scenario) -> Builder {
        Builder {
            scenario,
            port: 0,
            clock: None,
            homes: None,
            idle_timeout: None,
            admin: true,
        }
    }

    /// Stop serving, end every session (its shell or command is hung up on) and wait, at most
    /// `limit`, until every session's folder is removed. False if some were still there.
    pub async fn stop(mut self, limit: std::time::Duration) -> bool {
        self.stop_now();
        tokio::time::timeout(limit, self.shared.homes().all_removed())
            .await
            .is_ok()
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.shared.stop_agents();
    }

    /// The folder (HOME and working directory) of session `session_id`'s shell or command;
    /// it exists only while the session does.
    pub fn session_home(&self, session_id: &str) -> std::path::PathBuf {
        self.shared.homes().path_for(session_id)
    }

    /// How many sessions' folders exist now.
    pub fn session_homes_in_use(&self) -> usize {
        self.shared.homes().live()
    }

    /// The endpoint URL every service answers on, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The address the sandbox listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The sandbox's clock: move it to test expiry without waiting.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The demo identity of the scenario, if it names one.
    pub fn demo(&self) -> Option<DemoIdentity> {
        self.shared.world().demo.clone()
    }

    /// The long-term keys of `user` in `account`.
    pub fn user_keys(&self, account: &str, user: &str) -> Option<UserKeys> {
        self.shared
            .world()
            .user_keys
            .get(&(account.to_owned(), user.to_owned()))
            .cloned()
    }

    /// The code the MFA device `serial` shows at the sandbox's current time.
    pub fn mfa_code(&self, serial: &str) -> Option<String> {
        let world = self.shared.world();
        let now = world.now();
        world
            .mfa_devices
            .get(serial)
            .map(|(_, _, device)| device.secret.code_at(now))
    }

    /// Inject faults into the data channel of session `session_id` (its next connections).
    pub fn set_faults(&self, session_id: &str, faults: agent::Faults) {
        self.shared
            .world()
            .faults
            .insert(session_id.to_owned(), faults);
    }

    /// How many websocket upgrades of session `session_id` were refused (403).
    pub fn refused_upgrades(&self, session_id: &str) -> u32 {
        self.shared
            .world()
            .refused_upgrades
            .get(session_id)
            .copied()
            .unwrap_or(0)
    }

    /// How many of a session's websocket upgrades arrived with a valid SigV4 signature.
    pub fn signed_upgrades(&self, session_id: &str) -> u32 {
        self.shared
            .world()
            .signed_upgrades
            .get(session_id)
            .copied()
            .unwrap_or(0)
    }

    /// The faults injected so far, all sessions together.
    pub fn faults_injected(&self) -> agent::faults::Injected {
        self.shared.world().injected
    }

    /// Inject faults into every session started from now on (`None` stops doing so).
    pub fn set_faults_for_new_sessions(&self, faults: Option<agent::Faults>) {
        self.shared.world().new_session_faults = faults;
    }

    /// Make agents pace their output as the real agent does (1 KiB messages, one per ms).
    pub fn set_agent_pacing(&self, on: bool) {
        self.shared.world().agent_pacing = on;
    }

    /// API requests received so far, answered or refused (`/_sandbox/` calls not counted).
    pub fn requests_served(&self) -> u64 {
        self.shared.world().requests
    }

    /// Add `latency` to every call of `action` (`DescribeInstances`…); zero for none.
    pub fn set_latency(&self, action: &str, latency: std::time::Duration) {
        let mut world = self.shared.world();
        if latency.is_zero() {
            world.throttles.latency.remove(action);
        } else {
            world.throttles.latency.insert(action.to_owned(), latency);
        }
    }

    /// Refuse the next `count` calls of `action` as throttled, whatever the buckets hold (the
    /// service's throttle must be on; for `LookupEvents`, CloudTrail's).
    pub fn refuse_next_calls(&self, action: &str, count: u64) {
        self.shared
            .world()
            .throttles
            .refuse_next
            .insert(action.to_owned(), count);
    }

    /// EC2, SSM and CloudTrail LookupEvents calls refused by the throttles so far, by action.
    pub fn throttled_calls(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.world().throttles.refused.clone()
    }

    /// Show CloudTrail events only `delay` after their call, as CloudTrail delivers them late.
    pub fn set_cloudtrail_delay(&self, delay: std::time::Duration) {
        self.shared.world().cloudtrail_delay =
            time::Duration::seconds(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX));
    }

    /// Switch CloudTrail LookupEvents' throttle (2 requests/s per account and region) on or off.
    pub fn set_lookup_events_throttle(&self, on: bool) {
        self.shared.world().lookup_throttle = on;
    }

    /// The base32 seed of the MFA device `serial`.
    pub fn mfa_secret(&self, serial: &str) -> Option<String> {
        self.shared
            .world()
            .mfa_devices
            .get(serial)
            .map(|(_, _, device)| device.secret.to_base32())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_now();
    }
}
