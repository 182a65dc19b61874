//! EC2 through aws-sdk-ec2: the fleet per account and region, filters, paging, errors.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Filter;
use postern_sandbox::{Sandbox, Scenario};

use crate::support::*;

const DEMO_ACCOUNT: &str = "210987654321";

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
        .build()
}

/// Every instance id DescribeInstances returns, across pages.
async fn ids(client: &aws_sdk_ec2::Client, filters: Vec<Filter>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut pages = client
        .describe_instances()
        .set_filters(Some(filters))
        .max_results(5)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for reservation in page.expect("a page").reservations() {
            for instance in reservation.instances() {
                out.insert(instance.instance_id().expect("id").to_owned());
            }
        }
    }
    out
}

/// What the scenario itself says should match, computed independently of the sandbox.
fn expected(
    scenario: &Scenario,
    account: &str,
    region: &str,
    keep: impl Fn(&postern_sandbox::scenario::InstanceSpec) -> bool,
) -> BTreeSet<String> {
    scenario
        .fleet
        .instances
        .iter()
        .filter(|i| i.account == account && i.region == region && keep(i))
        .map(|i| i.id.clone())
        .collect()
}

#[tokio::test]
async fn filters_return_exactly_the_matching_instances() {
    let sandbox = default_sandbox().await;
    let scenario = Scenario::default_world();
    let client = ec2(&sandbox, developer(&sandbox).await, "us-east-1");
    let all = expected(&scenario, DEMO_ACCOUNT, "us-east-1", |_| true);
    assert_eq!(all.len(), 10);
    assert_eq!(ids(&client, vec![]).await, all);

    let payments = expected(&scenario, DEMO_ACCOUNT, "us-east-1", |i| {
        i.tags.get("team").is_some_and(|t| t == "payments")
    });
    assert!(!payments.is_empty() && payments.len() < all.len());
    assert_eq!(
        ids(&client, vec![filter("tag:team", &["payments"])]).await,
        payments
    );

    let two_teams = expected(&scenario, DEMO_ACCOUNT, "us-east-1", |i| {
        i.tags
            .get("team")
            .is_some_and(|t| t == "payments" || t == "search")
    });
    assert_eq!(
        ids(&client, vec![filter("tag:team", &["payments", "search"])]).await,
        two_teams
    );
    assert_eq!(
        ids(&client, vec![filter("tag:team", &["pay*", "se?rch"])]).await,
        two_teams
    );

    let stopped = expected(&scenario, DEMO_ACCOUNT, "us-east-1", |i| {
        i.state.name() == "stopped"
    });
    assert!(!stopped.is_empty());
    assert_eq!(
        ids(&client, vec![filter("instance-state-name", &["stopped"])]).await,
        stopped
    );

    let named_index = expected(&scenario, DEMO_ACCOUNT, "us-east-1", |i| {
        i.name.as_deref().is_some_and(|n| n.contains("indexer"))
    });
    assert_eq!(
        ids(&client, vec![filter("tag:Name", &["*indexer*"])]).await,
        named_index
    );
    assert_eq!(ids(&client, vec![filter("tag-key", &["own?r"])]).await, all);
    assert_eq!(
        ids(&client, vec![filter("tag-value", &["no-such-value"])]).await,
        BTreeSet::new()
    );

    // Filters AND together.
    let both = expected(&scenario, DEMO_ACCOUNT, "us-east-1", |i| {
        i.tags.get("team").is_some_and(|t| t == "search") && i.state.name() == "running"
    });
    assert_eq!(
        ids(
            &client,
            vec![
                filter("tag:team", &["search"]),
                filter("instance-state-name", &["running"])
            ]
        )
        .await,
        both
    );

    let one = all.iter().next().expect("one").clone();
    let spec = scenario
        .fleet
        .instances
        .iter()
        .find(|i| i.id == one)
        .expect("spec");
    assert_eq!(
        ids(&client, vec![filter("instance-id", &[&one])]).await,
        BTreeSet::from([one.clone()])
    );
    assert_eq!(
        ids(
            &client,
            vec![filter("private-ip-address", &[&spec.private_ip])]
        )
        .await,
        BTreeSet::from([one])
    );
}

#[tokio::test]
async fn each_region_and_account_sees_its_own_fleet() {
    let sandbox = default_sandbox().await;
    let scenario = Scenario::default_world();
    let developer = developer(&sandbox).await;
    for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
        let client = ec2(&sandbox, developer.clone(), region);
        assert_eq!(
            ids(&client, vec![]).await,
            expected(&scenario, DEMO_ACCOUNT, region, |_| true),
            "{region}"
        );
    }
    let prod = assume(
        &sandbox,
        "arn:aws:iam::345678901234:role/prod-readonly",
        "demo",
    )
    .await;
    let client = ec2(&sandbox, prod, "eu-west-1");
    assert_eq!(
        ids(&client, vec![]).await,
        expected(&scenario, "345678901234", "eu-west-1", |_| true)
    );

    let regions = ec2(&sandbox, demo_keys(&sandbox), "us-east-1")
        .describe_regions()
        .send()
        .await
        .expect("ok");
    let names: Vec<&str> = regions
        .regions()
        .iter()
        .filter_map(|r| r.region_name())
        .collect();
    assert_eq!(names, ["us-east-1", "eu-west-1", "ap-southeast-2"]);
}

#[tokio::test]
async fn instances_carry_what_the_sdk_reads() {
    let sandbox = default_sandbox().await;
    let client = ec2(&sandbox, developer(&sandbox).await, "ap-southeast-2");
    let out = client.describe_instances().send().await.expect("ok");
    let instances: Vec<_> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .collect();
    assert_eq!(instances.len(), 10);
    for instance in instances {
        assert!(instance.image_id().is_some_and(|i| i.starts_with("ami-")));
        assert!(instance.state().and_then(|s| s.name()).is_some());
        assert!(instance.launch_time().is_some());
        assert!(instance.private_ip_address().is_some());
        assert!(
            instance
                .placement()
                .and_then(|p| p.availability_zone())
                .is_some_and(|z| z.starts_with("ap-southeast-2"))
        );
        assert!(instance.tags().iter().any(|t| t.key() == Some("Name")));
        assert!(instance.platform_details().is_some());
    }
    assert!(out.next_token().is_none(), "no token after the last page");
}

#[tokio::test]
async fn describe_instances_refuses_what_aws_refuses() {
    let sandbox = default_sandbox().await;
    let client = ec2(&sandbox, developer(&sandbox).await, "us-east-1");
    let cases = [
        (
            client
                .describe_instances()
                .max_results(10)
                .instance_ids("i-0123456789abcdef0"),
            "InvalidParameterCombination",
        ),
        (
            client.describe_instances().max_results(4),
            "InvalidParameterValue",
        ),
        (
            client.describe_instances().max_results(1001),
            "InvalidParameterValue",
        ),
        (
            client.describe_instances().instance_ids("ma1"),
            "InvalidInstanceID.Malformed",
        ),
        (
            client
                .describe_instances()
                .instance_ids("i-0123456789abcdef0"),
            "InvalidInstanceID.NotFound",
        ),
        (
            client
                .describe_instances()
                .filters(filter("public-ip", &["1.2.3.4"])),
            "InvalidParameterValue",
        ),
        (
            client.describe_instances().next_token("garbage"),
            "InvalidParameterValue",
        ),
        (client.describe_instances().dry_run(true), "DryRunOperation"),
    ];
    for (request, code) in cases {
        let err = request.send().await.expect_err(code);
        assert_eq!(code_and_status(&err).0, code, "{err:?}");
    }
    // A page token only resumes the query that made it.
    let first = client
        .describe_instances()
        .max_results(5)
        .send()
        .await
        .expect("page");
    let token = first.next_token().expect("more pages").to_owned();
    let err = client
        .describe_instances()
        .max_results(5)
        .filters(filter("tag:team", &["search"]))
        .next_token(token)
        .send()
        .await
        .expect_err("token from another query");
    assert_eq!(code_and_status(&err).0, "InvalidParameterValue");
}

#[tokio::test]
async fn ec2_refuses_callers_without_permission_or_valid_keys() {
    let sandbox = default_sandbox().await;
    // The demo user's own policy allows ec2:DescribeRegions but not ec2:DescribeInstances.
    let err = ec2(&sandbox, demo_keys(&sandbox), "us-east-1")
        .describe_instances()
        .send()
        .await
        .expect_err("no permission");
    assert_eq!(code_and_status(&err), ("UnauthorizedOperation".into(), 403));
    assert!(
        message(&err).ends_with(
            "is not authorized to perform: ec2:DescribeInstances because no identity-based policy allows the ec2:DescribeInstances action"
        ),
        "{}",
        message(&err)
    );
    let unknown = aws_sdk_ec2::config::Credentials::new(
        "AKIAEXAMPLEUNKNOWN01",
        "x".repeat(40),
        None,
        None,
        "t",
    );
    let err = ec2(&sandbox, unknown, "us-east-1")
        .describe_instances()
        .send()
        .await
        .expect_err("unknown key");
    assert_eq!(code_and_status(&err), ("AuthFailure".into(), 401));
    let err = ec2(&sandbox, demo_keys(&sandbox), "mars-north-1")
        .describe_regions()
        .send()
        .await
        .expect_err("region");
    assert_eq!(code_and_status(&err).0, "AuthFailure");
}

#[tokio::test]
async fn ten_thousand_instances_page_and_filter_exactly() {
    let text = postern_sandbox::fleet::generate(10_000, 42).expect("generates");
    let scenario = Scenario::from_toml(&text).expect("loads");
    let sandbox = Sandbox::builder(scenario.clone())
        .clock(postern_sandbox::Clock::frozen(
            time::OffsetDateTime::now_utc(),
        ))
        .start()
        .await
        .expect("starts");
    let client = ec2(&sandbox, developer(&sandbox).await, "eu-west-1");
    let mut all = BTreeSet::new();
    let mut pages = client
        .describe_instances()
        .max_results(1000)
        .into_paginator()
        .send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        count += 1;
        for reservation in page.expect("page").reservations() {
            all.extend(
                reservation
                    .instances()
                    .iter()
                    .filter_map(|i| i.instance_id().map(str::to_owned)),
            );
        }
    }
    let want = expected(&scenario, DEMO_ACCOUNT, "eu-west-1", |_| true);
    assert!(want.len() > 1000, "{}", want.len());
    assert_eq!(all, want);
    assert_eq!(count, want.len().div_ceil(1000));

    let out = client
        .describe_instances()
        .filters(filter("tag:team", &["data"]))
        .send()
        .await
        .expect("ok");
    let data: BTreeSet<String> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    assert_eq!(
        data,
        expected(&scenario, DEMO_ACCOUNT, "eu-west-1", |i| i
            .tags
            .get("team")
            .is_some_and(|t| t == "data"))
    );
}
