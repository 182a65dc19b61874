//! STS through aws-sdk-sts: identities, MFA sessions, trust policies, source identity, limits.

use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::types::Tag;
use time::Duration;

use crate::support::*;

const DEMO_ACCOUNT: &str = "210987654321";
const PROD_ACCOUNT: &str = "345678901234";

fn role(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// GetSessionToken with the demo user's MFA device at the sandbox's current time.
async fn mfa_session(sandbox: &postern_sandbox::Sandbox) -> Credentials {
    let demo = sandbox.demo().expect("demo");
    let code = sandbox.mfa_code(&demo.mfa_serial).expect("device");
    let out = sts(sandbox, demo_keys(sandbox))
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(code)
        .send()
        .await
        .expect("a fresh TOTP code is accepted");
    from_sts(out.credentials().expect("credentials"))
}

#[tokio::test]
async fn caller_identity_names_the_user_and_its_sessions() {
    let sandbox = default_sandbox().await;
    let me = sts(&sandbox, demo_keys(&sandbox))
        .get_caller_identity()
        .send()
        .await
        .expect("ok");
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:iam::{DEMO_ACCOUNT}:user/demo").as_str())
    );
    assert_eq!(me.account(), Some(DEMO_ACCOUNT));
    let user_id = me.user_id().expect("user id").to_owned();
    assert!(user_id.starts_with("AIDA"), "{user_id}");

    // GetSessionToken credentials still act as the user.
    let session = mfa_session(&sandbox).await;
    assert!(session.access_key_id().starts_with("ASIA"));
    let me = sts(&sandbox, session)
        .get_caller_identity()
        .send()
        .await
        .expect("ok");
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:iam::{DEMO_ACCOUNT}:user/demo").as_str())
    );
    assert_eq!(me.user_id(), Some(user_id.as_str()));
}

#[tokio::test]
async fn mfa_codes_are_checked_and_used_once() {
    let sandbox = default_sandbox().await;
    let demo = sandbox.demo().expect("demo");
    let client = sts(&sandbox, demo_keys(&sandbox));
    let code = sandbox.mfa_code(&demo.mfa_serial).expect("device");

    let ok = client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(&code)
        .send()
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let reused = client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(&code)
        .send()
        .await
        .expect_err("the same code twice");
    assert_eq!(code_and_status(&reused), ("AccessDenied".into(), 403));
    assert_eq!(
        message(&reused),
        "MultiFactorAuthentication failed with invalid MFA one time pass code. "
    );

    sandbox.clock().advance(Duration::seconds(30));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(wrong)
        .send()
        .await
        .expect_err("a wrong code");
    assert_eq!(code_and_status(&err), ("AccessDenied".into(), 403));

    // The next step's code still works after a wrong one.
    let next = sandbox.mfa_code(&demo.mfa_serial).expect("device");
    client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code(next)
        .send()
        .await
        .expect("the next code is accepted");

    let err = client
        .get_session_token()
        .serial_number("arn:aws:iam::210987654321:mfa/someone-else")
        .token_code("123456")
        .send()
        .await
        .expect_err("a device that is not the caller's");
    assert_eq!(code_and_status(&err).0, "AccessDenied");
    assert!(
        message(&err).contains("associated with this user"),
        "{}",
        message(&err)
    );

    let err = client
        .get_session_token()
        .serial_number(&demo.mfa_serial)
        .token_code("12345")
        .send()
        .await
        .expect_err("five digits");
    assert_eq!(code_and_status(&err), ("ValidationError".into(), 400));
}

#[tokio::test]
async fn session_credentials_cannot_get_another_session_token() {
    let sandbox = default_sandbox().await;
    let session = mfa_session(&sandbox).await;
    let err = sts(&sandbox, session)
        .get_session_token()
        .send()
        .await
        .expect_err("refused");
    assert_eq!(code_and_status(&err), ("AccessDenied".into(), 403));
    assert_eq!(
        message(&err),
        "Cannot call GetSessionToken with session credentials"
    );
}

#[tokio::test]
async fn session_token_duration_is_bounded_and_expiry_is_enforced() {
    let sandbox = default_sandbox().await;
    let client = sts(&sandbox, demo_keys(&sandbox));
    for bad in [899, 129_601] {
        let err = client
            .get_session_token()
            .duration_seconds(bad)
            .send()
            .await
            .expect_err("out of range");
        assert_eq!(
            code_and_status(&err),
            ("ValidationError".into(), 400),
            "{bad}"
        );
    }
    let out = client
        .get_session_token()
        .duration_seconds(900)
        .send()
        .await
        .expect("15 minutes");
    let credentials = from_sts(out.credentials().expect("credentials"));
    let session = sts(&sandbox, credentials);
    session
        .get_caller_identity()
        .send()
        .await
        .expect("valid for now");
    sandbox.clock().advance(Duration::seconds(901));
    let err = session
        .get_caller_identity()
        .send()
        .await
        .expect_err("expired");
    assert_eq!(code_and_status(&err), ("ExpiredToken".into(), 403));
    assert_eq!(
        message(&err),
        "The security token included in the request is expired"
    );
}

#[tokio::test]
async fn roles_that_require_mfa_refuse_long_term_keys_without_it() {
    let sandbox = default_sandbox().await;
    let demo = sandbox.demo().expect("demo");
    let keys = sts(&sandbox, demo_keys(&sandbox));
    let err = keys
        .assume_role()
        .role_arn(&demo.role_arn)
        .role_session_name("demo")
        .send()
        .await
        .expect_err("no MFA");
    assert_eq!(code_and_status(&err), ("AccessDenied".into(), 403));
    assert_eq!(
        message(&err),
        format!(
            "User: arn:aws:iam::{DEMO_ACCOUNT}:user/demo is not authorized to perform: sts:AssumeRole on resource: {}",
            demo.role_arn
        )
    );

    // With the code in the AssumeRole call itself.
    let code = sandbox.mfa_code(&demo.mfa_serial).expect("device");
    let out = keys
        .assume_role()
        .role_arn(&demo.role_arn)
        .role_session_name("demo")
        .serial_number(&demo.mfa_serial)
        .token_code(code)
        .send()
        .await
        .expect("MFA in the request");
    let user = out.assumed_role_user().expect("assumed role user");
    assert_eq!(
        user.arn(),
        format!("arn:aws:sts::{DEMO_ACCOUNT}:assumed-role/developer/demo")
    );
    assert!(
        user.assumed_role_id().starts_with("AROA") && user.assumed_role_id().ends_with(":demo")
    );

    // A role without the MFA condition needs none.
    keys.assume_role()
        .role_arn(role(DEMO_ACCOUNT, "readonly"))
        .role_session_name("demo")
        .send()
        .await
        .expect("readonly needs no MFA");
}

#[tokio::test]
async fn one_mfa_session_reaches_every_role_in_both_accounts() {
    let sandbox = default_sandbox().await;
    let session = sts(&sandbox, mfa_session(&sandbox).await);
    for arn in [
        role(DEMO_ACCOUNT, "developer"),
        role(DEMO_ACCOUNT, "readonly"),
        role(DEMO_ACCOUNT, "admin"),
        role(DEMO_ACCOUNT, "legacy-ops"),
        role(PROD_ACCOUNT, "prod-ops"),
        role(PROD_ACCOUNT, "prod-readonly"),
    ] {
        let out = session
            .assume_role()
            .role_arn(&arn)
            .role_session_name("demo")
            .send()
            .await;
        let out = out.unwrap_or_else(|e| panic!("{arn}: {e:?}"));
        let credentials = from_sts(out.credentials().expect("credentials"));
        let me = sts(&sandbox, credentials)
            .get_caller_identity()
            .send()
            .await
            .expect("ok");
        let name = arn.rsplit('/').next().expect("name");
        assert!(
            me.arn()
                .expect("arn")
                .ends_with(&format!("assumed-role/{name}/demo")),
            "{me:?}"
        );
    }
}

#[tokio::test]
async fn identity_policy_is_needed_when_trust_names_only_the_account() {
    let sandbox = default_sandbox().await;
    let robot = sandbox
        .user_keys(DEMO_ACCOUNT, "ci-robot")
        .expect("ci-robot");
    let robot = sts(
        &sandbox,
        Credentials::new(
            robot.access_key_id,
            robot.secret_access_key,
            None,
            None,
            "t",
        ),
    );
    // readonly: the trust policy names the account and the robot's policy allows it.
    robot
        .assume_role()
        .role_arn(role(DEMO_ACCOUNT, "readonly"))
        .role_session_name("ci")
        .send()
        .await
        .expect("allowed by trust and identity");
    // prod-readonly: trusted through the account, but the robot's policy does not allow it.
    let err = robot
        .assume_role()
        .role_arn(role(PROD_ACCOUNT, "prod-readonly"))
        .role_session_name("ci")
        .send()
        .await
        .expect_err("no identity policy");
    assert_eq!(code_and_status(&err), ("AccessDenied".into(), 403));
    // A role that does not exist looks the same as one that refuses.
    let err = robot
        .assume_role()
        .role_arn(role(DEMO_ACCOUNT, "no-such-role"))
        .role_session_name("ci")
        .send()
        .await
        .expect_err("missing role");
    assert_eq!(code_and_status(&err), ("AccessDenied".into(), 403));
}

#[tokio::test]
async fn durations_follow_the_role_and_the_one_hour_chain_limit() {
    let sandbox = default_sandbox().await;
    let session = sts(&sandbox, mfa_session(&sandbox).await);
    let admin = role(DEMO_ACCOUNT, "admin");
    let err = session
        .assume_role()
        .role_arn(&admin)
        .role_session_name("demo")
        .duration_seconds(7200)
        .send()
        .await
        .expect_err("admin allows one hour");
    assert_eq!(code_and_status(&err), ("ValidationError".into(), 400));
    assert_eq!(
        message(&err),
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    );

    let out = session
        .assume_role()
        .role_arn(role(DEMO_ACCOUNT, "developer"))
        .role_session_name("demo")
        .duration_seconds(43_200)
        .send()
        .await
        .expect("developer allows twelve hours");
    let expiry = out.credentials().expect("credentials").expiration().secs();
    let now = sandbox.clock().now().unix_timestamp();
    assert_eq!(expiry - now, 43_200);

    // Chained from developer, two hours are refused and one hour is the cap.
    let developer = sts(&sandbox, from_sts(out.credentials().expect("credentials")));
    let err = developer
        .assume_role()
        .role_arn(role(PROD_ACCOUNT, "prod-ops"))
        .role_session_name("demo")
        .duration_seconds(7200)
        .send()
        .await
        .expect_err("chained beyond one hour");
    assert_eq!(
        message(&err),
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
    );
    let chained = developer
        .assume_role()
        .role_arn(role(PROD_ACCOUNT, "prod-ops"))
        .role_session_name("demo")
        .send()
        .await
        .expect("chained for the default hour");
    let chained = sts(
        &sandbox,
        from_sts(chained.credentials().expect("credentials")),
    );
    chained.get_caller_identity().send().await.expect("valid");
    sandbox.clock().advance(Duration::seconds(3600));
    let err = chained
        .get_caller_identity()
        .send()
        .await
        .expect_err("expired after one hour");
    assert_eq!(code_and_status(&err).0, "ExpiredToken");
    // The developer session it came from lives on.
    developer
        .get_caller_identity()
        .send()
        .await
        .expect("developer session still valid");

    for bad in [899, 43_201] {
        let err = session
            .assume_role()
            .role_arn(role(DEMO_ACCOUNT, "developer"))
            .role_session_name("demo")
            .duration_seconds(bad)
            .send()
            .await
            .expect_err("out of range");
        assert_eq!(
            code_and_status(&err),
            ("ValidationError".into(), 400),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn source_identity_is_set_kept_through_chains_and_never_changed() {
    let sandbox = default_sandbox().await;
    let session = sts(&sandbox, mfa_session(&sandbox).await);
    let out = session
        .assume_role()
        .role_arn(role(DEMO_ACCOUNT, "developer"))
        .role_session_name("demo")
        .source_identity("demo")
        .send()
        .await
        .expect("developer trusts sts:SetSourceIdentity");
    assert_eq!(out.source_identity(), Some("demo"));
    let developer = sts(&sandbox, from_sts(out.credentials().expect("credentials")));

    let err = developer
        .assume_role()
        .role_arn(role(PROD_ACCOUNT, "prod-ops"))
        .role_session_name("demo")
        .source_identity("somebody-else")
        .send()
        .await
        .expect_err("changed in a chain");
    assert_eq!(code_and_status(&err).0, "AccessDenied");
    let chained = developer
        .assume_role()
        .role_arn(role(PROD_ACCOUNT, "prod-ops"))
        .role_session_name("demo")
        .send()
        .await
        .expect("kept without asking");
    assert_eq!(chained.source_identity(), Some("demo"));

    // legacy-ops trusts the user but not sts:SetSourceIdentity.
    let err = session
        .assume_role()
        .role_arn(role(DEMO_ACCOUNT, "legacy-ops"))
        .role_session_name("demo")
        .source_identity("demo")
        .send()
        .await
        .expect_err("source identity not trusted");
    assert_eq!(code_and_status(&err), ("AccessDenied".into(), 403));
    assert!(
        message(&err).contains("sts:SetSourceIdentity"),
        "{}",
        message(&err)
    );
    session
        .assume_role()
        .role_arn(role(DEMO_ACCOUNT, "legacy-ops"))
        .role_session_name("demo")
        .send()
        .await
        .expect("without a source identity");

    for bad in ["x", "aws:me", "has space"] {
        let err = session
            .assume_role()
            .role_arn(role(DEMO_ACCOUNT, "developer"))
            .role_session_name("demo")
            .source_identity(bad)
            .send()
            .await
            .expect_err("bad source identity");
        assert_eq!(
            code_and_status(&err),
            ("ValidationError".into(), 400),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn role_session_names_are_validated() {
    let sandbox = default_sandbox().await;
    let keys = sts(&sandbox, demo_keys(&sandbox));
    let err = keys
        .assume_role()
        .role_arn(role(DEMO_ACCOUNT, "readonly"))
        .role_session_name("a:b")
        .send()
        .await
        .expect_err("bad name");
    assert_eq!(code_and_status(&err), ("ValidationError".into(), 400));
    assert_eq!(
        message(&err),
        "1 validation error detected: Value 'a:b' at 'roleSessionName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [\\w+=,.@-]*"
    );
    let err = keys
        .assume_role()
        .role_arn(role(DEMO_ACCOUNT, "readonly"))
        .role_session_name("x".repeat(65))
        .send()
        .await
        .expect_err("too long");
    assert!(message(&err).ends_with("Member must have length less than or equal to 64"));
}

const TRUST_SCENARIO: &str = r#"
[[accounts]]
id = "111122223333"
alias = "trust-tests"

[[accounts.users]]
name = "alice"
mfa_device = "alice"
policies = ['{"Statement": [{"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::111122223333:role/denied-by-identity"}]}']

[[accounts.users]]
name = "bob"

[[accounts.roles]]
name = "partner"
trust = '''{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
  "Action": ["sts:AssumeRole", "sts:TagSession"],
  "Condition": {"StringEquals": {"sts:ExternalId": "s3cret-handshake"}}}]}'''

[[accounts.roles]]
name = "denied-by-identity"
trust = '''{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "sts:AssumeRole"}]}'''

[[accounts.roles]]
name = "named-source"
trust = '''{"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:user/bob"]},
  "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
  "Condition": {"StringLike": {"sts:SourceIdentity": "${aws:username}"}}}]}'''
"#;

#[tokio::test]
async fn trust_conditions_external_id_tags_and_explicit_denies() {
    let sandbox = sandbox_from(TRUST_SCENARIO).await;
    let keys = |user: &str| {
        let k = sandbox.user_keys("111122223333", user).expect("user");
        sts(
            &sandbox,
            Credentials::new(k.access_key_id, k.secret_access_key, None, None, "t"),
        )
    };
    let alice = keys("alice");
    let partner = "arn:aws:iam::111122223333:role/partner";
    let err = alice
        .assume_role()
        .role_arn(partner)
        .role_session_name("alice")
        .send()
        .await
        .expect_err("no id");
    assert_eq!(code_and_status(&err).0, "AccessDenied");
    alice
        .assume_role()
        .role_arn(partner)
        .role_session_name("alice")
        .external_id("s3cret-handshake")
        .tags(
            Tag::builder()
                .key("team")
                .value("payments")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("external id and a trusted TagSession");

    let err = alice
        .assume_role()
        .role_arn("arn:aws:iam::111122223333:role/denied-by-identity")
        .role_session_name("alice")
        .send()
        .await
        .expect_err("an explicit deny in the identity policy wins over the trust policy");
    assert_eq!(code_and_status(&err).0, "AccessDenied");

    let named = "arn:aws:iam::111122223333:role/named-source";
    alice
        .assume_role()
        .role_arn(named)
        .role_session_name("alice")
        .source_identity("alice")
        .send()
        .await
        .expect("source identity equal to the user name");
    let err = keys("bob")
        .assume_role()
        .role_arn(named)
        .role_session_name("bob")
        .source_identity("alice")
        .send()
        .await
        .expect_err("bob may not claim to be alice");
    assert_eq!(code_and_status(&err).0, "AccessDenied");
}

#[tokio::test]
async fn bad_keys_signatures_and_clocks_are_refused_as_sts_refuses_them() {
    let sandbox = default_sandbox().await;
    let demo = sandbox.demo().expect("demo");
    let unknown = Credentials::new("AKIAEXAMPLEUNKNOWN01", "x".repeat(40), None, None, "t");
    let err = sts(&sandbox, unknown)
        .get_caller_identity()
        .send()
        .await
        .expect_err("unknown key");
    assert_eq!(code_and_status(&err), ("InvalidClientTokenId".into(), 403));

    let wrong_secret = Credentials::new(&demo.access_key_id, "y".repeat(40), None, None, "t");
    let err = sts(&sandbox, wrong_secret)
        .get_caller_identity()
        .send()
        .await
        .expect_err("bad signature");
    assert_eq!(code_and_status(&err), ("SignatureDoesNotMatch".into(), 403));

    let session = mfa_session(&sandbox).await;
    let forged = Credentials::new(
        session.access_key_id(),
        session.secret_access_key(),
        Some("not-the-token".into()),
        None,
        "t",
    );
    let err = sts(&sandbox, forged)
        .get_caller_identity()
        .send()
        .await
        .expect_err("wrong token");
    assert_eq!(code_and_status(&err), ("InvalidClientTokenId".into(), 403));

    #[derive(Debug)]
    struct Late(std::time::SystemTime);
    impl aws_smithy_async::time::TimeSource for Late {
        fn now(&self) -> std::time::SystemTime {
            self.0
        }
    }
    let late = std::time::SystemTime::from(sandbox.clock().now() - Duration::minutes(20));
    let err = sts_at(&sandbox, demo_keys(&sandbox), Late(late))
        .get_caller_identity()
        .send()
        .await
        .expect_err("signed 20 minutes ago");
    assert_eq!(code_and_status(&err), ("SignatureDoesNotMatch".into(), 403));
    assert!(
        message(&err).starts_with("Signature expired: "),
        "{}",
        message(&err)
    );
    let near = std::time::SystemTime::from(sandbox.clock().now() - Duration::minutes(10));
    sts_at(&sandbox, demo_keys(&sandbox), Late(near))
        .get_caller_identity()
        .send()
        .await
        .expect("ten minutes of skew are tolerated");
}
