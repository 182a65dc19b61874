//! `make bench`: Postern's numbers, each printed as a ratio against a baseline measured in the
//! same run on the same machine (never a timed assertion).
//!
//! - tunnel: throughput on loopback, unpaced against raw TCP, paced against the pacing bucket
//!   alone, a pool of sessions against one;
//! - latency: session start and keystroke echo against a local PTY;
//! - identity: reading a 2,000-profile config against botocore, switching roles against
//!   `aws sts assume-role`;
//! - inventory: `postern ls` of 10,000 instances in 4 regions and 2 accounts, cold and from its
//!   cache, against the AWS CLI's listings;
//! - history: a person's sessions among 500 in 2 accounts × 2 regions, to the first entries and
//!   to complete, against a sequential boto3 LookupEvents loop.
//!
//! `cargo bench -p postern-e2e --bench postern [tunnel|latency|identity|inventory|history]…` runs
//! some of them (the identity, inventory and history parts need `.ci/with-keychain`, the release `postern` and the venv's AWS CLI,
//! which `make bench` provides).
//!
//! Each tunnel measure runs [`runs`] times (`POSTERN_BENCH_RUNS`, 5 unless set), its baseline
//! beside it in the same round; the table shows min / median / max of each, and the ratio and
//! the target's verdict are taken at the medians.
#![forbid(unsafe_code)]

mod history;
mod identity;
mod inventory;
mod latency;
mod tunnel;

use std::fmt::Write as _;

/// One measured figure and its baseline.
pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) value: String,
    pub(crate) baseline: String,
    pub(crate) ratio: f64,
    /// `(at least, phrase)`: the target for the ratio, if it sets one.
    pub(crate) target: Option<(f64, &'static str)>,
}

/// How many times each tunnel measure runs (`POSTERN_BENCH_RUNS`, at least 1; 5 unless set).
pub(crate) fn runs() -> usize {
    std::env::var("POSTERN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(5usize)
        .max(1)
}

/// `min / median / max unit` of `samples`, each number written by `fmt` (one number alone if
/// there is one).
pub(crate) fn spread(samples: &[f64], fmt: impl Fn(f64) -> String, unit: &str) -> String {
    let mut sorted = samples.to_vec();
    let mid = median(&mut sorted);
    match (sorted.first(), sorted.last()) {
        (Some(&min), Some(&max)) if sorted.len() > 1 => {
            format!("{} / {} / {} {unit}", fmt(min), fmt(mid), fmt(max))
        }
        _ => format!("{} {unit}", fmt(mid)),
    }
}

impl Row {
    /// A measure taken several times against a baseline taken as often: both printed as
    /// min / median / max, the ratio taken at the medians.
    pub(crate) fn repeated(
        what: impl Into<String>,
        values: &[f64],
        baselines: &[f64],
        fmt: impl Fn(f64) -> String,
        unit: &str,
    ) -> Self {
        let ratio = median(&mut values.to_vec()) / median(&mut baselines.to_vec());
        Self::new(
            what,
            spread(values, &fmt, unit),
            spread(baselines, &fmt, unit),
            ratio,
        )
    }

    pub(crate) fn new(
        what: impl Into<String>,
        value: impl Into<String>,
        baseline: impl Into<String>,
        ratio: f64,
    ) -> Self {
        Self {
            what: what.into(),
            value: value.into(),
            baseline: baseline.into(),
            ratio,
            target: None,
        }
    }

    /// For times, where less is better: the ratio is the baseline's over Postern's.
    pub(crate) fn inverted(mut self) -> Self {
        self.ratio = 1.0 / self.ratio;
        self
    }

    pub(crate) fn target(mut self, at_least: f64, phrase: &'static str) -> Self {
        self.target = Some((at_least, phrase));
        self
    }
}

/// MiB/s of `bytes` in `seconds`.
pub(crate) fn mib_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / seconds
}

/// The median of `samples` (sorted in place; of an even count, the lower middle one).
pub(crate) fn median(samples: &mut [f64]) -> f64 {
    percentile(samples, 0.5)
}

/// The `p` quantile of `samples` (sorted in place), nearest rank.
pub(crate) fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |part: &str| wanted.is_empty() || wanted.iter().any(|w| w == part);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut rows = Vec::new();
    runtime.block_on(async {
        if want("tunnel") {
            rows.extend(tunnel::run().await);
        }
        if want("latency") {
            rows.extend(latency::run().await);
        }
        if want("identity") {
            rows.extend(identity::run().await);
        }
        if want("inventory") {
            rows.extend(inventory::run().await);
        }
        if want("history") {
            rows.extend(history::run().await);
        }
    });
    let mut report = String::new();
    let _ = writeln!(
        report,
        "\n{:<62} {:>28} {:>28} {:>8}  target",
        "measure (tunnels: min / median / max)", "Postern", "baseline", "ratio"
    );
    let mut missed = 0;
    for row in &rows {
        let verdict = match row.target {
            Some((at_least, phrase)) if row.ratio >= at_least => format!("{phrase}: met"),
            Some((_, phrase)) => {
                missed += 1;
                format!("{phrase}: NOT MET")
            }
            None => String::new(),
        };
        let _ = writeln!(
            report,
            "{:<62} {:>28} {:>28} {:>7.2}×  {verdict}",
            row.what, row.value, row.baseline, row.ratio
        );
    }
    print!("{report}");
    if missed > 0 {
        println!("\n{missed} target(s) not met.");
    }
}
