//! Identity in postern-core against the sandbox, with the real OS keychain (Secret Service from
//! gnome-keyring under `.ci/with-keychain`) and the sandbox's controllable clock: one MFA code
//! for five roles, wrong, malformed and reused codes, one prompt for concurrent requests, expiry
//! and refresh, the one-hour cap of chained roles, SourceIdentity in CloudTrail.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use postern_core::credentials::{Clock, CredentialError, Resolver, Selection};
use postern_core::mfa::{MfaPrompt, MfaRequest, PromptFuture, Retry};
use postern_core::paths::Paths;
use postern_core::settings::State;
use postern_e2e::{DEMO_ROLES, TempDir, require_keychain};
use postern_sandbox::Sandbox;

/// Postern's view of time follows the sandbox's, so moving the sandbox's clock expires what
/// Postern cached.
#[derive(Debug)]
struct SandboxClock(postern_sandbox::Clock);

impl Clock for SandboxClock {
    fn now(&self) -> SystemTime {
        let secs = self.0.now().unix_timestamp();
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }
}

/// What the scripted user types.
#[derive(Clone, Debug)]
enum Answer {
    /// The code the device shows now.
    Code,
    /// These characters.
    Text(&'static str),
}

/// A user at the keyboard: answers in order, slowly, and remembers every question.
struct ScriptedUser {
    sandbox: Arc<Sandbox>,
    serial: String,
    answers: Mutex<VecDeque<Answer>>,
    asked: Mutex<Vec<MfaRequest>>,
    typing: Duration,
}

impl ScriptedUser {
    fn new(sandbox: &Arc<Sandbox>, answers: &[Answer]) -> Arc<Self> {
        Arc::new(Self {
            sandbox: sandbox.clone(),
            serial: sandbox.demo().expect("demo").mfa_serial,
            answers: Mutex::new(answers.iter().cloned().collect()),
            asked: Mutex::new(Vec::new()),
            typing: Duration::from_millis(300),
        })
    }

    fn asked(&self) -> Vec<MfaRequest> {
        self.asked.lock().expect("lock").clone()
    }
}

impl MfaPrompt for ScriptedUser {
    fn ask<'a>(&'a self, request: &'a MfaRequest) -> PromptFuture<'a> {
        Box::pin(async move {
            self.asked.lock().expect("lock").push(request.clone());
            tokio::time::sleep(self.typing).await;
            let answer = self.answers.lock().expect("lock").pop_front();
            Ok(match answer {
                Some(Answer::Code) => self.sandbox.mfa_code(&self.serial).expect("device"),
                Some(Answer::Text(text)) => text.to_owned(),
                None => panic!("asked for a code more often than the script allows: {request:?}"),
            })
        })
    }
}

/// A sandbox, the demo user's keys in the keychain, the demo config; resolvers as fresh
/// processes would build them, on the sandbox's clock.
struct World {
    sandbox: Arc<Sandbox>,
    home: TempDir,
}

impl World {
    async fn new() -> Self {
        require_keychain();
        Self {
            sandbox: Arc::new(postern_e2e::sandbox().await),
            home: TempDir::new("identity"),
        }
    }

    fn paths(&self) -> Paths {
        Paths::at(&self.home.join("postern"))
    }

    /// A resolver as a fresh process would build it, asking `user` for codes.
    fn resolver(&self, user: &Arc<impl MfaPrompt + 'static>) -> Resolver {
        postern_e2e::demo_resolver(&self.sandbox, &self.home, user.clone())
            .with_clock(Arc::new(SandboxClock(self.sandbox.clock().clone())))
    }

    fn advance(&self, seconds: i64) {
        self.sandbox
            .clock()
            .advance(time::Duration::seconds(seconds));
    }

    /// The ARN the credentials of `profile` belong to, as STS says.
    async fn arn(&self, resolver: &Resolver, profile: &str) -> String {
        let (_, _, arn, _) = resolver
            .whoami(&Selection::Profile(profile.into()))
            .await
            .unwrap_or_else(|e| panic!("whoami {profile}: {e}"));
        arn
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn five_roles_on_one_code_with_source_identity_in_cloudtrail() {
    let world = World::new().await;
    let start = world.sandbox.clock().now() - time::Duration::minutes(1);
    let user = ScriptedUser::new(&world.sandbox, &[Answer::Code]);
    let resolver = world.resolver(&user);
    for (profile, _) in DEMO_ROLES {
        let arn = world.arn(&resolver, profile).await;
        let role = DEMO_ROLES
            .iter()
            .find(|(p, _)| p == profile)
            .map(|(_, arn)| arn.rsplit('/').next().unwrap_or_default())
            .expect("role");
        assert!(
            arn.ends_with(&format!(":assumed-role/{role}/demo")),
            "{profile}: {arn}"
        );
    }
    assert_eq!(user.asked().len(), 1, "one code for five roles");

    // A second process finds the MFA session and the roles in the keychain: no question.
    let second = ScriptedUser::new(&world.sandbox, &[]);
    let resolver = world.resolver(&second);
    for (profile, _) in DEMO_ROLES {
        resolver
            .credentials(&Selection::Profile((*profile).into()))
            .await
            .expect("cached");
    }
    assert!(second.asked().is_empty());

    // CloudTrail ties the roles to the person: SourceIdentity is the user's name, except on
    // legacy-ops, whose trust policy does not allow it (assumed without, noted once).
    let state = State::load(&world.paths()).expect("state");
    assert_eq!(
        state
            .roles_without_source_identity
            .iter()
            .collect::<Vec<_>>(),
        ["arn:aws:iam::210987654321:role/legacy-ops"]
    );
    let admin = resolver
        .credentials(&Selection::Profile("admin".into()))
        .await
        .expect("admin");
    let trail = aws_sdk_cloudtrail::Client::from_conf(
        aws_sdk_cloudtrail::Config::builder()
            .behavior_version(aws_sdk_cloudtrail::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudtrail::config::Region::new("us-east-1"))
            .endpoint_url(world.sandbox.endpoint())
            .credentials_provider(admin.credentials.to_sdk())
            .build(),
    );
    world.sandbox.set_lookup_events_throttle(false);
    let events = trail
        .lookup_events()
        .lookup_attributes(
            aws_sdk_cloudtrail::types::LookupAttribute::builder()
                .attribute_key(aws_sdk_cloudtrail::types::LookupAttributeKey::EventName)
                .attribute_value("AssumeRole")
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("LookupEvents");
    let mut with_identity = 0;
    for event in events.events() {
        let at = event.event_time().map_or(0, |t| t.secs());
        if at < start.unix_timestamp() {
            continue; // the seeded history
        }
        let record: serde_json::Value =
            serde_json::from_str(event.cloud_trail_event().unwrap_or("{}")).expect("json");
        if record.get("errorCode").is_some() {
            continue; // legacy-ops' refusal of the source identity
        }
        let role = record["requestParameters"]["roleArn"]
            .as_str()
            .unwrap_or_default();
        let source = record["requestParameters"]["sourceIdentity"].as_str();
        if role.ends_with("/legacy-ops") {
            assert_eq!(source, None, "{record}");
        } else if role.contains(":role/") {
            assert_eq!(source, Some("demo"), "{record}");
            with_identity += 1;
        }
    }
    assert!(
        with_identity >= 4,
        "{with_identity} AssumeRole events with a source identity"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_malformed_and_reused_codes_are_asked_again() {
    let world = World::new().await;
    let user = ScriptedUser::new(
        &world.sandbox,
        &[Answer::Text("12345"), Answer::Text("000000"), Answer::Code],
    );
    let resolver = world.resolver(&user);
    resolver
        .credentials(&Selection::Profile("developer".into()))
        .await
        .expect("third answer works");
    let retries: Vec<_> = user.asked().iter().map(|r| r.retry).collect();
    assert_eq!(
        retries,
        [None, Some(Retry::Malformed), Some(Retry::Rejected)]
    );

    // The same code again within its 30 seconds: Postern does not send it, and says why.
    resolver.logout().expect("logout");
    world.advance(30);
    let used = world.sandbox.mfa_code(&user.serial).expect("device");
    let again = Arc::new(ScriptedUser {
        sandbox: world.sandbox.clone(),
        serial: user.serial.clone(),
        answers: Mutex::new(VecDeque::new()),
        asked: Mutex::new(Vec::new()),
        typing: Duration::from_millis(10),
    });
    // Typed by the same process (it remembers the last code it sent).
    let replay = Arc::new(Replay {
        inner: again.clone(),
        first: used,
        world_clock: world.sandbox.clone(),
    });
    let resolver = world.resolver(&replay);
    resolver
        .credentials(&Selection::Profile("developer".into()))
        .await
        .expect("first");
    resolver.logout().expect("logout");
    resolver
        .credentials(&Selection::Profile("developer".into()))
        .await
        .expect("after waiting for the next code");
    let retries: Vec<_> = again.asked().iter().map(|r| r.retry).collect();
    assert_eq!(retries, [None, None, Some(Retry::AlreadyUsed)]);

    // Three rejected codes: a clear error, nothing cached.
    resolver.logout().expect("logout");
    let stubborn = ScriptedUser::new(
        &world.sandbox,
        &[
            Answer::Text("000000"),
            Answer::Text("000001"),
            Answer::Text("000002"),
        ],
    );
    let error = world
        .resolver(&stubborn)
        .credentials(&Selection::Profile("developer".into()))
        .await
        .expect_err("rejected");
    assert!(
        matches!(error, CredentialError::MfaRejected { .. }),
        "{error}"
    );
}

/// Types the code `first` twice, then (once told it was used) waits for the device's next code.
struct Replay {
    inner: Arc<ScriptedUser>,
    first: String,
    world_clock: Arc<Sandbox>,
}

impl MfaPrompt for Replay {
    fn ask<'a>(&'a self, request: &'a MfaRequest) -> PromptFuture<'a> {
        Box::pin(async move {
            self.inner.asked.lock().expect("lock").push(request.clone());
            if request.retry == Some(Retry::AlreadyUsed) {
                self.world_clock
                    .clock()
                    .advance(time::Duration::seconds(30));
                return Ok(self
                    .world_clock
                    .mfa_code(&self.inner.serial)
                    .expect("device"));
            }
            Ok(self.first.clone())
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_in_one_process_share_one_prompt() {
    let world = World::new().await;
    let user = ScriptedUser::new(&world.sandbox, &[Answer::Code]);
    let resolver = Arc::new(world.resolver(&user));
    let tasks: Vec<_> = ["developer", "admin", "prod-ops", "readonly"]
        .into_iter()
        .map(|profile| {
            let resolver = resolver.clone();
            tokio::spawn(async move {
                resolver
                    .credentials(&Selection::Profile(profile.into()))
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("credentials");
    }
    assert_eq!(user.asked().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_refresh_before_expiry_and_the_mfa_session_lasts_its_hours() {
    let world = World::new().await;
    let user = ScriptedUser::new(&world.sandbox, &[Answer::Code, Answer::Code]);
    let resolver = world.resolver(&user);
    let developer = Selection::Profile("developer".into());
    let first = resolver.credentials(&developer).await.expect("first");
    let expires = first.credentials.expires.expect("temporary");

    // 56 minutes on: the role (1 h) is within five minutes of its end and is assumed again with
    // the MFA session, without a question.
    world.advance(56 * 60);
    let renewed = resolver.credentials(&developer).await.expect("renewed");
    assert_ne!(
        renewed.credentials.access_key_id,
        first.credentials.access_key_id
    );
    assert!(renewed.credentials.expires.expect("temporary") > expires);
    assert_eq!(user.asked().len(), 1);

    // Past the MFA session's 12 hours: one new code.
    world.advance(12 * 3600);
    resolver.credentials(&developer).await.expect("after 12 h");
    assert_eq!(user.asked().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chained_role_is_capped_at_one_hour_and_assumed_again_silently() {
    let world = World::new().await;
    let user = ScriptedUser::new(&world.sandbox, &[Answer::Code]);
    let resolver = world.resolver(&user);
    let chained = Selection::Profile("prod-via-dev".into());
    let first = resolver
        .credentials(&chained)
        .await
        .expect("the two hours asked for become one, not an error");
    // The role was issued before this moment (however long the calls took on a busy machine),
    // so an hour's role expires at most an hour after it; a two-hour one would not.
    let after = SandboxClock(world.sandbox.clock().clone()).now();
    let left = first
        .credentials
        .expires
        .expect("temporary")
        .duration_since(after)
        .expect("future");
    assert!(left <= Duration::from_secs(3600), "{left:?}");
    assert!(
        first
            .credentials
            .arn
            .as_deref()
            .is_some_and(|a| a.contains("assumed-role/prod-ops/demo"))
    );
    for _ in 0..3 {
        world.advance(56 * 60);
        let again = resolver.credentials(&chained).await.expect("again");
        assert_ne!(
            again.credentials.access_key_id,
            first.credentials.access_key_id
        );
    }
    assert_eq!(user.asked().len(), 1, "no new code within the MFA session");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_keeps_one_source_identity_when_a_role_names_its_own_session() {
    let world = World::new().await;
    // prod-ops chained from developer, with a session name of its own: SourceIdentity must stay
    // the person's (AWS refuses to change it within a chain), the session name is the role's.
    let config = format!(
        "{}\n[profile deploy]\nrole_arn = arn:aws:iam::345678901234:role/prod-ops\nsource_profile = developer\nrole_session_name = deploy\n",
        postern_e2e::demo_config(&world.sandbox)
    );
    let user = ScriptedUser::new(&world.sandbox, &[Answer::Code]);
    let resolver = world.resolver(&user);
    std::fs::write(world.home.join("aws-config"), config).expect("config");
    let resolver = postern_e2e::reload(resolver, &world.home);
    let deploy = resolver
        .credentials(&Selection::Profile("deploy".into()))
        .await
        .expect("the chain with its own session name");
    assert!(
        deploy
            .credentials
            .arn
            .as_deref()
            .is_some_and(|a| a.ends_with(":assumed-role/prod-ops/deploy")),
        "{:?}",
        deploy.credentials.arn
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_process_feeds_a_chain_and_the_one_hour_limit_is_met() {
    let world = World::new().await;
    // A tool that hands out the developer role's credentials (temporary keys), and a role
    // assumed from them asking for two hours: a chained role, which AWS allows one.
    let user = ScriptedUser::new(&world.sandbox, &[Answer::Code]);
    let developer = world
        .resolver(&user)
        .credentials(&Selection::Profile("developer".into()))
        .await
        .expect("developer");
    let c = &developer.credentials;
    let output = serde_json::json!({
        "Version": 1,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
        "SessionToken": c.session_token.as_ref().expect("token").expose(),
    });
    let script = world.home.join("creds.sh");
    std::fs::write(&script, format!("#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\n")).expect("script");
    let mut perms = std::fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    std::fs::set_permissions(&script, perms).expect("chmod");
    let config = format!(
        "[profile tool]\nregion = us-east-1\ncredential_process = {}\n\n[profile prod-from-tool]\nrole_arn = arn:aws:iam::345678901234:role/prod-ops\nsource_profile = tool\nduration_seconds = 7200\n",
        script.display()
    );
    let resolver = world.resolver(&ScriptedUser::new(&world.sandbox, &[]));
    std::fs::write(world.home.join("aws-config"), config).expect("config");
    let resolver = postern_e2e::reload(resolver, &world.home);
    let tool = resolver
        .credentials(&Selection::Profile("tool".into()))
        .await
        .expect("the process's credentials");
    assert_eq!(tool.credentials.access_key_id, c.access_key_id);
    let before = SandboxClock(world.sandbox.clock().clone()).now();
    let prod = resolver
        .credentials(&Selection::Profile("prod-from-tool".into()))
        .await
        .expect("assumed within the one-hour limit");
    let lasts = prod
        .credentials
        .expires
        .expect("temporary")
        .duration_since(before)
        .expect("future");
    assert!(lasts <= Duration::from_secs(3601), "{lasts:?}");
}
