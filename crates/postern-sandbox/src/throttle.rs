//! API throttling of EC2 and Systems Manager, and injected latency: what a big account feels.
//!
//! Each (account, region, action) has a token bucket, as AWS throttles: a call takes a token or
//! is refused, EC2 with `RequestLimitExceeded` (HTTP 503, "Request limit exceeded."), SSM with
//! `ThrottlingException` (HTTP 400, "Rate exceeded"). Buckets run on the system's monotonic
//! clock, not the sandbox clock (moving the sandbox clock neither fills nor drains them).
//!
//! Default sizes and refill rates:
//! - EC2 non-mutating actions (`Describe…`): 100 tokens, 20 a second — AWS's documented defaults
//!   ("Request throttling for the Amazon EC2 API", EC2 API reference). Other EC2 actions: 50
//!   tokens, 5 a second (an assumption; the sandbox serves only Describe actions).
//! - SSM actions: 40 tokens, 20 a second — an assumption: AWS does not publish per-action rates
//!   for DescribeInstanceInformation, DescribeSessions or StartSession.
//!
//! Scenarios and the admin API switch each service's throttle, override any action's bucket
//! (`[settings.rate_limits.DescribeInstanceInformation] burst = 10, per_second = 5`), and add a
//! fixed latency to any action (`[settings.latency_ms] DescribeInstances = 80`). CloudTrail's
//! own throttle (2 LookupEvents a second) is in `services::cloudtrail`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::wire::{AwsError, Service};

/// A bucket's size and refill rate.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Tokens it holds when full: the burst.
    pub burst: f64,
    /// Tokens added a second.
    pub per_second: f64,
}

/// The default bucket of `action` of `service`.
pub fn default_limit(service: Service, action: &str) -> RateLimit {
    match service {
        Service::Ec2 if action.starts_with("Describe") => RateLimit {
            burst: 100.0,
            per_second: 20.0,
        },
        Service::Ec2 => RateLimit {
            burst: 50.0,
            per_second: 5.0,
        },
        _ => RateLimit {
            burst: 40.0,
            per_second: 20.0,
        },
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The throttles and latencies in force.
#[derive(Debug, Default)]
pub struct Throttles {
    /// Whether EC2 calls are throttled.
    pub ec2: bool,
    /// Whether SSM calls are throttled.
    pub ssm: bool,
    /// Buckets that differ from the defaults, by action.
    pub limits: BTreeMap<String, RateLimit>,
    /// Latency added to each call of an action.
    pub latency: BTreeMap<String, Duration>,
    buckets: HashMap<(String, String, String), Bucket>,
    /// The next calls of an action to refuse whatever the buckets hold (fault injection, for
    /// tests that must see throttling however fast or slow the machine is).
    pub refuse_next: BTreeMap<String, u64>,
    /// Calls refused so far, by action.
    pub refused: BTreeMap<String, u64>,
}

impl Throttles {
    /// Throttles switched on or off, with these buckets and latencies.
    pub fn new(
        ec2: bool,
        ssm: bool,
        limits: BTreeMap<String, RateLimit>,
        latency: BTreeMap<String, Duration>,
    ) -> Self {
        Self {
            ec2,
            ssm,
            limits,
            latency,
            ..Self::default()
        }
    }

    /// Take a token for `action` of `service` for `account` in `region`, or refuse the call as
    /// AWS does.
    pub fn take(
        &mut self,
        service: Service,
        account: &str,
        region: &str,
        action: &str,
    ) -> Result<(), AwsError> {
        let on = match service {
            Service::Ec2 => self.ec2,
            Service::Ssm => self.ssm,
            _ => false,
        };
        if !on {
            return Ok(());
        }
        let forced = match self.refuse_next.get_mut(action) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        let limit = self
            .limits
            .get(action)
            .copied()
            .unwrap_or_else(|| default_limit(service, action));
        let now = Instant::now();
        let bucket = self
            .buckets
            .entry((account.to_owned(), region.to_owned(), action.to_owned()))
            .or_insert(Bucket {
                tokens: limit.burst,
                at: now,
            });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(limit.burst);
        bucket.at = now;
        if !forced && bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        *self.refused.entry(action.to_owned()).or_default() += 1;
        Err(match service {
            Service::Ec2 => AwsError::new(
                "RequestLimitExceeded",
                http::StatusCode::SERVICE_UNAVAILABLE,
                "Request limit exceeded.",
            ),
            _ => AwsError::bad_request("ThrottlingException", "Rate exceeded"),
        })
    }

    /// Forget the buckets (a new limit starts full).
    pub fn reset(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate_per_account_region_and_action() {
        let mut throttles = Throttles::new(true, true, BTreeMap::new(), BTreeMap::new());
        throttles.limits.insert(
            "DescribeInstanceInformation".into(),
            RateLimit {
                burst: 3.0,
                per_second: 0.001,
            },
        );
        let take = |t: &mut Throttles, region: &str| {
            t.take(Service::Ssm, "1", region, "DescribeInstanceInformation")
        };
        for _ in 0..3 {
            assert!(take(&mut throttles, "us-east-1").is_ok());
        }
        let refused = take(&mut throttles, "us-east-1").expect_err("throttled");
        assert_eq!(refused.code, "ThrottlingException");
        assert!(take(&mut throttles, "eu-west-1").is_ok(), "another region");
        assert!(
            throttles
                .take(Service::Ssm, "1", "us-east-1", "DescribeSessions")
                .is_ok(),
            "another action"
        );
        assert_eq!(throttles.refused["DescribeInstanceInformation"], 1);
        // EC2's answer.
        throttles.limits.insert(
            "DescribeInstances".into(),
            RateLimit {
                burst: 1.0,
                per_second: 0.001,
            },
        );
        assert!(
            throttles
                .take(Service::Ec2, "1", "r", "DescribeInstances")
                .is_ok()
        );
        let refused = throttles
            .take(Service::Ec2, "1", "r", "DescribeInstances")
            .expect_err("throttled");
        assert_eq!(refused.code, "RequestLimitExceeded");
        assert_eq!(refused.status, http::StatusCode::SERVICE_UNAVAILABLE);
        // Forced refusals, then the bucket again.
        throttles.refuse_next.insert("DescribeSessions".into(), 2);
        for _ in 0..2 {
            assert!(
                throttles
                    .take(Service::Ssm, "1", "r", "DescribeSessions")
                    .is_err()
            );
        }
        assert!(
            throttles
                .take(Service::Ssm, "1", "r", "DescribeSessions")
                .is_ok()
        );
        // Off: never refused.
        throttles.ec2 = false;
        assert!(
            throttles
                .take(Service::Ec2, "1", "r", "DescribeInstances")
                .is_ok()
        );
    }
}
