//! Listing a big fleet: 10,000 instances in 4 regions and 2 accounts, with latency injected on
//! the listing calls, by `postern ls --fleet` (cold, and warm from its cache to the first row)
//! against the AWS CLI making the same DescribeInstances and DescribeInstanceInformation
//! listings for the same identities and regions, one after another as a script would, with the
//! largest pages each call allows.
//!
//! The latency (an assumption, near what a busy account shows): 400 ms for a DescribeInstances
//! page of up to 1,000 instances, 150 ms for a DescribeInstanceInformation page. The sandbox's
//! throttles are on with their defaults (see `postern_sandbox::throttle`).

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_core::credentials::Selection;
use postern_e2e::{TempDir, workspace_binary};

use crate::{Row, median};

fn venv(tool: &str) -> std::path::PathBuf {
    let mut dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.pop();
    dir.join(".venv/bin").join(tool)
}

/// The peak resident memory (VmHWM) of process `pid`, in KiB, while it lives.
fn high_water_mark(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Run `command`: seconds to its first byte of output, seconds to its end, its peak memory
/// (KiB, sampled while it runs) and its output.
fn watched(mut command: Command) -> (f64, f64, u64, Vec<u8>) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut first = [0u8; 1];
        let got = stdout.read(&mut first).unwrap_or(0);
        let first_at = started.elapsed().as_secs_f64();
        let mut rest = Vec::new();
        let _ = stdout.read_to_end(&mut rest);
        let mut all = first[..got].to_vec();
        all.extend(rest);
        (first_at, all)
    });
    let mut peak = 0;
    loop {
        if let Some(kib) = high_water_mark(pid) {
            peak = peak.max(kib);
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let ended = started.elapsed().as_secs_f64();
    let (first, output) = reader.join().expect("reader");
    (first, ended, peak, output)
}

pub(crate) async fn run() -> Vec<Row> {
    if std::env::var_os("POSTERN_KEYCHAIN_READY").is_none() {
        eprintln!("inventory: needs the keychain; run under .ci/with-keychain (make bench does)");
        return Vec::new();
    }
    let mut scenario = postern_e2e::big_fleet();
    scenario
        .settings
        .latency_ms
        .insert("DescribeInstances".into(), 400);
    scenario
        .settings
        .latency_ms
        .insert("DescribeInstanceInformation".into(), 150);
    let regions = scenario.settings.regions.clone();
    let sandbox = Arc::new(
        postern_sandbox::Sandbox::builder(scenario)
            .start()
            .await
            .expect("sandbox"),
    );
    let home = TempDir::new("bench-inventory");
    let resolver = postern_e2e::demo_resolver(
        &sandbox,
        &home,
        Arc::new(postern_e2e::SandboxDevice(sandbox.clone())),
    );
    // What `postern login` leaves: the MFA session; and each role once, for the CLI's keys.
    let mut role_keys = Vec::new();
    for profile in ["developer", "prod-ops"] {
        let resolved = resolver
            .credentials(&Selection::Profile(profile.into()))
            .await
            .expect("role");
        role_keys.push(resolved.credentials);
    }
    let postern_home = home.join("postern");
    let quoted: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    std::fs::write(
        postern_home.join("settings.toml"),
        format!(
            "[inventory]\nregions = [{}]\nidentities = [\"developer\", \"prod-ops\"]\n",
            quoted.join(", ")
        ),
    )
    .expect("settings");
    let env = [
        ("POSTERN_HOME", postern_home.display().to_string()),
        ("POSTERN_POLICY", String::new()),
        (
            "AWS_CONFIG_FILE",
            home.join("aws-config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join("aws-credentials").display().to_string(),
        ),
        ("AWS_ENDPOINT_URL", sandbox.endpoint()),
    ];
    let ls = |extra: &[&str]| {
        let mut command = Command::new(workspace_binary("postern"));
        command
            .args(["ls", "--fleet", "--json"])
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN");
        command
    };
    let count = |output: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(output)
            .ok()
            .and_then(|v| v["instances"].as_array().map(Vec::len))
            .unwrap_or(0)
    };

    let mut cold = Vec::new();
    let mut peak = 0;
    for _ in 0..3 {
        let (_, ended, kib, output) = watched(ls(&["--refresh"]));
        assert_eq!(count(&output), 10_000, "postern ls listed every instance");
        cold.push(ended);
        peak = peak.max(kib);
    }
    let mut warm = Vec::new();
    for _ in 0..5 {
        let (first, _, _, output) = watched(ls(&[]));
        assert_eq!(count(&output), 10_000, "the cache holds every instance");
        warm.push(first);
    }

    // The AWS CLI: each identity, each region, both listings, one after another.
    let started = Instant::now();
    let mut listed = 0;
    for keys in &role_keys {
        for region in &regions {
            // The largest pages each call allows (the CLI's defaults would make it slower).
            for call in [
                &["ec2", "describe-instances", "--page-size", "1000"][..],
                &["ssm", "describe-instance-information", "--page-size", "50"][..],
            ] {
                let out = Command::new(venv("aws"))
                    .args(call)
                    .args([
                        "--region",
                        region,
                        "--endpoint-url",
                        &sandbox.endpoint(),
                        "--output",
                        "json",
                    ])
                    .env_remove("AWS_PROFILE")
                    .env("AWS_CONFIG_FILE", home.join("no-config"))
                    .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
                    .env("AWS_ACCESS_KEY_ID", &keys.access_key_id)
                    .env("AWS_SECRET_ACCESS_KEY", keys.secret_access_key.expose())
                    .env(
                        "AWS_SESSION_TOKEN",
                        keys.session_token.as_ref().map_or("", |t| t.expose()),
                    )
                    .output()
                    .expect("aws");
                assert!(out.status.success(), "aws {call:?}: {out:?}");
                if call[0] == "ec2" {
                    let answer: serde_json::Value =
                        serde_json::from_slice(&out.stdout).expect("json");
                    listed += answer["Reservations"].as_array().map_or(0, |r| {
                        r.iter()
                            .map(|r| r["Instances"].as_array().map_or(0, Vec::len))
                            .sum::<usize>()
                    });
                }
            }
        }
    }
    let cli = started.elapsed().as_secs_f64();
    assert_eq!(listed, 10_000, "the AWS CLI listed every instance");

    let (cold, warm) = (median(&mut cold), median(&mut warm));
    let s = |v: f64| format!("{v:.2} s");
    let ms = |v: f64| format!("{:.1} ms", v * 1000.0);
    vec![
        Row::new(
            "ls of 10,000 instances, 4 regions × 2 accounts (vs AWS CLI)",
            format!("{}, peak {:.0} MiB", s(cold), peak as f64 / 1024.0),
            s(cli),
            cli / cold,
        )
        .target(5.0, "≥ 5×"),
        Row::new(
            "ls from its cache, to the first row (vs AWS CLI)",
            ms(warm),
            s(cli),
            cli / warm,
        )
        .target(50.0, "≥ 50×"),
    ]
}
