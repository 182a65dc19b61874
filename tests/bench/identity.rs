//! Reading a large config (against botocore reading the same file), and switching to a role
//! with a live MFA session (against `aws sts assume-role` with the same session, on the same
//! sandbox).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use postern_core::credentials::Selection;
use postern_core::profile::{ConfigFiles, Profiles};
use postern_e2e::{TempDir, workspace_binary};

use crate::{Row, median};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv(tool: &str) -> PathBuf {
    let path = root().join(".venv/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: run `.ci/deps venv`",
        path.display()
    );
    path
}

/// Reading the 2,000-profile file `big_config.py` writes: Postern's reader in this process,
/// botocore's in its own (timed inside Python, so interpreter start is not counted).
fn config_reading(home: &TempDir) -> Row {
    let config = home.join("big-config");
    let out = Command::new(venv("python"))
        .arg(root().join("tests/peers/big_config.py"))
        .arg("2000")
        .output()
        .expect("big_config.py");
    assert!(out.status.success());
    std::fs::write(&config, &out.stdout).expect("write");
    let files = ConfigFiles {
        config: config.clone(),
        credentials: home.join("no-credentials"),
    };
    let mut ours = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        let profiles = Profiles::load(&files).expect("read");
        assert!(profiles.len() >= 2000);
        ours.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let script = r#"
import json, sys, time
import botocore.session
times = []
for _ in range(30):
    s = botocore.session.Session()
    s.set_config_variable("config_file", sys.argv[1])
    s.set_config_variable("credentials_file", sys.argv[2])
    t = time.perf_counter()
    n = len(s.full_config["profiles"])
    times.append((time.perf_counter() - t) * 1000)
    assert n >= 2000, n
times.sort()
print(json.dumps(times[len(times) // 2]))
"#;
    let out = Command::new(venv("python"))
        .args(["-c", script])
        .arg(&config)
        .arg(home.join("no-credentials"))
        .output()
        .expect("botocore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number");
    let ours = median(&mut ours);
    Row::new(
        "reading a 2,000-profile config (vs botocore)",
        format!("{ours:.2} ms"),
        format!("{theirs:.2} ms"),
        theirs / ours,
    )
    .target(5.0, "≥ 5×")
}

fn timed(mut command: Command) -> f64 {
    let start = Instant::now();
    let out = command.stdin(Stdio::null()).output().expect("run");
    let elapsed = start.elapsed().as_secs_f64() * 1000.0;
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

async fn role_switching(home: &TempDir) -> Vec<Row> {
    if std::env::var_os("POSTERN_KEYCHAIN_READY").is_none() {
        eprintln!(
            "identity: switching needs the keychain; run under .ci/with-keychain (make bench does)"
        );
        return Vec::new();
    }
    let sandbox = Arc::new(postern_e2e::sandbox().await);
    // The MFA session, made once: what `postern login` leaves behind.
    let resolver = postern_e2e::demo_resolver(
        &sandbox,
        home,
        Arc::new(postern_e2e::SandboxDevice(sandbox.clone())),
    );
    let session = resolver
        .credentials(&Selection::Profile("demo".into()))
        .await
        .expect("MFA session")
        .credentials;
    let postern_home = home.join("postern");
    let files = ConfigFiles {
        config: home.join("aws-config"),
        credentials: home.join("aws-credentials"),
    };

    let postern = workspace_binary("postern");
    let env = [
        ("POSTERN_HOME", postern_home.display().to_string()),
        ("AWS_CONFIG_FILE", files.config.display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            files.credentials.display().to_string(),
        ),
        ("AWS_ENDPOINT_URL", sandbox.endpoint()),
    ];
    let credential_process = |profile: &str| {
        let mut command = Command::new(&postern);
        command
            .args(["credential-process", "--profile", profile])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID");
        command
    };
    // A role not assumed yet: a new session name each time makes it new to the cache.
    let mut cold = Vec::new();
    for i in 0..15 {
        std::fs::write(
            postern_home.join("settings.toml"),
            format!("session_name = \"bench{i}\"\n"),
        )
        .expect("settings");
        cold.push(timed(credential_process("developer")));
    }
    // A role already assumed: switching back to it.
    let mut warm = Vec::new();
    for _ in 0..15 {
        warm.push(timed(credential_process("developer")));
    }
    let mut aws = Vec::new();
    for i in 0..15 {
        let mut command = Command::new(venv("aws"));
        command
            .args([
                "sts",
                "assume-role",
                "--role-arn",
                "arn:aws:iam::210987654321:role/developer",
                "--role-session-name",
                &format!("bench{i}"),
                "--endpoint-url",
                &sandbox.endpoint(),
                "--region",
                "us-east-1",
            ])
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", home.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
            .env("AWS_ACCESS_KEY_ID", &session.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", session.secret_access_key.expose())
            .env(
                "AWS_SESSION_TOKEN",
                session.session_token.as_ref().map_or("", |t| t.expose()),
            )
            .stdout(Stdio::null());
        aws.push(timed(command));
    }
    let (cold, warm, aws) = (median(&mut cold), median(&mut warm), median(&mut aws));
    let ms = |v: f64| format!("{v:.1} ms");
    vec![
        Row::new(
            "switch to a role, MFA session live (vs aws sts assume-role)",
            ms(cold),
            ms(aws),
            aws / cold,
        )
        .target(5.0, "≥ 5×"),
        Row::new(
            "switch back to a role already assumed (vs aws sts assume-role)",
            ms(warm),
            ms(aws),
            aws / warm,
        ),
    ]
}

pub(crate) async fn run() -> Vec<Row> {
    let home = TempDir::new("bench-identity");
    let mut rows = vec![config_reading(&home)];
    rows.extend(role_switching(&home).await);
    rows
}
