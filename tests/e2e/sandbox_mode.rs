//! Sandbox mode as the desktop app runs it: `postern-sandbox serve --json --exit-with-stdin
//! --no-admin` started as a child, Postern assembled on its start line with a state folder and a
//! keychain of its own, the demo role signed into through the window's MFA prompt with the code
//! the virtual device shows (checked against oathtool, a TOTP no one here wrote), and a shell
//! kept in the registry. Nothing reaches the OS keychain.

use std::process::Command;
use std::sync::Arc;

use postern_core::aws::AwsAccess;
use postern_core::credentials::{Selection, unix_now};
use postern_core::inventory::listing::{Event, Listing, Request, Scope};
use postern_core::keychain::{OsStore, SecretStore as _};
use postern_core::mfa::window::{PromptEvent, WindowPrompt};
use postern_core::registry::About;
use postern_core::sandbox_mode::{ROLE_PROFILE, SandboxStart};
use postern_core::session::{self, SessionOptions, SessionRequest};
use postern_core::{Postern, Setup};
use postern_e2e::{TempDir, instance, let_go_of, output_until, serve_for_a_program};

fn oathtool_at(seed: &str, unix: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", &format!("--now=@{unix}"), seed])
        .output()
        .expect("oathtool (Debian package oathtool; .ci/deps installs it)");
    assert!(out.status.success(), "oathtool failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_desktop_s_sandbox_mode_signs_in_with_the_virtual_device_and_opens_a_shell() {
    let (child, line) = serve_for_a_program();
    let start = SandboxStart::parse(&line).expect("the start line");
    let demo = start.demo.as_ref().expect("a demo identity");
    // The code the window shows is the device's: oathtool agrees, at several times.
    for unix in [59, 1_700_000_000, unix_now()] {
        assert_eq!(
            demo.code_at(unix).expect("a code"),
            oathtool_at(demo.mfa_secret.expose_str(), unix),
            "at {unix}"
        );
    }

    let folder = TempDir::new("sandbox-mode");
    let setup = Setup::for_sandbox(&start, &folder.join("state")).expect("sandbox mode");
    let config = std::fs::read_to_string(&setup.files.config).expect("its config file");
    assert!(
        !config.contains(demo.secret_access_key.expose_str()) && !config.contains("aws_secret"),
        "no secret in the config file: {config}"
    );
    let (prompt, mut questions) = WindowPrompt::new();
    let prompt = Arc::new(prompt);
    let postern = Postern::at(setup, prompt.clone()).expect("Postern on the sandbox");
    // The window: a question comes, it is answered with the code the device shows now.
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let answering = {
        let prompt = prompt.clone();
        let asked = asked.clone();
        let code = demo.code_at(unix_now()).expect("a code");
        tokio::spawn(async move {
            while let Some(event) = questions.recv().await {
                if let PromptEvent::Asking(question) = event {
                    asked
                        .lock()
                        .expect("not poisoned")
                        .push(question.waiting.clone());
                    assert!(prompt.answer(question.id, &code));
                }
            }
        })
    };
    let access = AwsAccess::new(
        postern.resolver().clone(),
        Selection::Profile(ROLE_PROFILE.into()),
        None,
    )
    .await
    .expect("signed in to the demo role");
    let (_, _, arn, _) = postern
        .resolver()
        .whoami(&Selection::Profile(ROLE_PROFILE.into()))
        .await
        .expect("whoami");
    assert!(arn.contains(":assumed-role/developer/"), "{arn}");

    // The window lists as reachable only what the demo role may open: sandbox mode's tag rules
    // are the role's reach, as the start line gives it.
    assert!(
        !demo.reach.is_empty(),
        "the start line gives the role's reach"
    );
    let scope = Scope::active(postern.resolver(), Some(ROLE_PROFILE), None)
        .await
        .expect("the demo role's scope");
    let request = Request::for_scopes(postern.resolver().clone(), vec![scope]).expect("a request");
    let mut listing = Listing::start(request);
    let (mut reachable, mut outside) = (0, 0);
    while let Some(event) = listing.next().await {
        if let Event::Part(part) = event {
            assert_eq!(part.problem, None, "listed");
            for row in part.rows {
                let team = row.tags.get("team").cloned().unwrap_or_default();
                let allowed = demo.reach["team"].contains(&team);
                if row.reachable {
                    reachable += 1;
                    assert!(allowed, "{} (team {team}) is listed as reachable", row.id);
                } else if !allowed && row.state.as_deref() == Some("running") {
                    outside += 1;
                }
            }
        }
    }
    assert!(
        reachable > 0 && outside > 0,
        "{reachable} reachable, {outside} outside the rules"
    );

    // A shell, kept by core's registry.
    let target = instance("payments");
    let shell = session::open(
        &access.ssm(),
        SessionRequest::shell(&target),
        SessionOptions::default(),
    )
    .await
    .expect("a shell");
    let registry = postern.registry();
    let id = registry.adopt(
        shell,
        About {
            target: target.clone(),
            profile: Some(ROLE_PROFILE.into()),
            region: demo.region.clone(),
            kind: "shell".into(),
        },
    );
    let (_, mut events) = registry.listen(&id).expect("listed");
    registry
        .writer(&id)
        .expect("a writer")
        .send(b"echo sandbox-$((6*7))\r".to_vec())
        .await
        .expect("input");
    output_until(&mut events, "sandbox-42").await;
    registry.close_all().await;

    // What was cached lives in the memory keychain: none of its entries is in the OS one.
    let index = std::fs::read_to_string(postern.setup().paths.home().join("keychain.toml"))
        .expect("the entry list of sandbox mode's keychain");
    let os = OsStore::new(postern.setup().paths.keychain_service());
    let mut names = 0;
    for name in index.lines().filter_map(|l| l.split('"').nth(1)) {
        names += 1;
        assert!(
            os.get(name).expect("the OS keychain answers").is_none(),
            "{name} reached the OS keychain"
        );
    }
    assert!(names > 0, "the MFA session was cached (in memory): {index}");
    answering.abort();
    assert_eq!(
        *asked.lock().expect("not poisoned"),
        [vec![ROLE_PROFILE.to_owned()]],
        "asked once"
    );

    // The app quits: the sandbox goes with it.
    assert!(let_go_of(child).success());
}
