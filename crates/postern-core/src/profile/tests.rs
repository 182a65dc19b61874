use super::*;

fn profiles(config: &str, credentials: &str) -> Profiles {
    Profiles::from_files(
        Some(ini::parse(Path::new("config"), config.as_bytes())),
        Some(ini::parse(Path::new("credentials"), credentials.as_bytes())),
    )
}

#[test]
fn chains_and_kinds() {
    let p = profiles(
        "[profile base]\nmfa_serial = arn:aws:iam::111111111111:mfa/me\nregion = eu-west-1\n\
         [profile dev]\nrole_arn = arn:aws:iam::111111111111:role/dev\nsource_profile = base\n\
         [profile prod]\nrole_arn = arn:aws:iam::222222222222:role/ops/prod\nsource_profile = dev\nduration_seconds = 3600\n",
        "[base]\naws_access_key_id = AKIAEXAMPLEEXAMPLE01\naws_secret_access_key = x\n",
    );
    assert!(
        p.problems().iter().all(|p| p.severity != Severity::Error),
        "{:?}",
        p.problems()
    );
    let chain = p.chain("prod").expect("chain");
    let roles: Vec<_> = chain.roles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(roles, ["prod", "dev"]);
    assert!(matches!(chain.base, Base::Profile(p) if p.name == "base"));
    let prod = p.get("prod").expect("prod");
    let role = prod.role().expect("role");
    assert_eq!(role.role_arn.name(), "prod");
    assert_eq!(role.role_arn.account(), "222222222222");
    assert_eq!(role.duration_seconds, Some(3600));
    assert!(matches!(
        p.get("base").expect("base").kind,
        ProfileKind::Base {
            file_keys: Some(_),
            ..
        }
    ));
}

#[test]
fn loops_name_the_chain_and_self_reference_needs_keys() {
    let p = profiles(
        "[profile a]\nrole_arn = arn:aws:iam::111111111111:role/a\nsource_profile = b\n\
         [profile b]\nrole_arn = arn:aws:iam::111111111111:role/b\nsource_profile = a\n\
         [profile me]\nrole_arn = arn:aws:iam::111111111111:role/me\nsource_profile = me\n\
         [profile self]\nrole_arn = arn:aws:iam::111111111111:role/s\nsource_profile = self\naws_access_key_id = AKIAEXAMPLEEXAMPLE02\naws_secret_access_key = y\n",
        "",
    );
    let err = p.chain("a").expect_err("loop");
    assert!(err.to_string().contains("a → b → a"), "{err}");
    assert!(p.chain("me").is_err());
    let chain = p.chain("self").expect("self with keys");
    assert_eq!(chain.roles.len(), 1);
    assert!(matches!(chain.base, Base::Profile(p) if p.name == "self"));
}

#[test]
fn missing_source_and_bad_values_make_only_that_profile_unusable() {
    let p = profiles(
        "[profile a]\nrole_arn = arn:aws:iam::111111111111:role/a\nsource_profile = nowhere\n\
         [profile b]\nrole_arn = \"arn:aws:iam::111111111111:role/b\"\nsource_profile = c\n\
         [profile c]\nregion = us-east-1\nregoin = typo\n",
        "",
    );
    let err = p.chain("a").expect_err("missing");
    assert!(
        err.to_string()
            .contains("source_profile nowhere does not exist")
    );
    assert!(err.to_string().starts_with("config:3:"), "{err}");
    assert!(p.chain("b").is_err(), "quoted ARN is not an ARN");
    assert!(p.chain("c").is_ok());
    let notes: Vec<_> = p
        .problems()
        .iter()
        .filter(|p| p.severity == Severity::Note)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        notes,
        ["config:9: `regoin` is not a key Postern knows; it is kept (did you mean `region`?)"]
    );
    assert!(
        p.problems()
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::QuotedValue { .. }))
    );
}

#[test]
fn each_loop_and_each_missing_source_is_reported_once_and_problems_are_in_file_order() {
    let p = profiles(
        "[profile into-loop]\nrole_arn = arn:aws:iam::111111111111:role/c\nsource_profile = loop-b\n\
         [profile loop-a]\nrole_arn = arn:aws:iam::111111111111:role/a\nsource_profile = loop-b\nregoin = x\n\
         [profile loop-b]\nrole_arn = arn:aws:iam::111111111111:role/b\nsource_profile = loop-a\n\
         [profile me]\nrole_arn = arn:aws:iam::111111111111:role/me\nsource_profile = me\n\
         [profile x]\nrole_arn = arn:aws:iam::111111111111:role/x\nsource_profile = y\n\
         [profile y]\nrole_arn = arn:aws:iam::111111111111:role/y\nsource_profile = gone\n",
        "[z]\nregoin = 1\n[a]\nregion = \"x\"\n",
    );
    let loops: Vec<String> = p
        .problems()
        .iter()
        .filter(|p| matches!(p.kind, ProblemKind::SourceProfileLoop { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(loops.len(), 2, "{loops:#?}");
    assert!(
        loops[0].contains(": source_profile goes round in a loop: loop-a → loop-b → loop-a:"),
        "{loops:#?}"
    );
    assert!(loops[1].contains("loop: me → me:"), "{loops:#?}");
    // Every profile on the way is unusable all the same, with its own chain.
    let err = p.chain("into-loop").expect_err("into a loop");
    assert!(
        err.to_string()
            .contains("into-loop → loop-b → loop-a → loop-b"),
        "{err}"
    );
    assert!(p.chain("loop-b").is_err());
    let missing = p
        .problems()
        .iter()
        .filter(|p| matches!(p.kind, ProblemKind::MissingSourceProfile { .. }))
        .count();
    assert_eq!(missing, 1, "{:#?}", p.problems());
    assert!(p.chain("x").is_err());
    let order: Vec<(&str, usize)> = p
        .problems()
        .iter()
        .map(|p| (p.path.to_str().unwrap_or_default(), p.line))
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by_key(|(path, line)| (*path != "config", *line));
    assert_eq!(order, sorted);
    assert_eq!(order.first(), Some(&("config", 7)), "{order:?}");
    assert_eq!(order.last(), Some(&("credentials", 4)), "{order:?}");
}

#[test]
fn credentials_file_wins_and_default_sections_follow_botocore() {
    let p = profiles(
        "[default]\nregion = us-east-1\n[profile default]\nregion = eu-west-1\n[profile x]\nregion = a\n[profiles y]\noutput = json\n[z]\nregion = b\n",
        "[x]\nregion = from-credentials\n[only-creds]\naws_access_key_id = AKIAEXAMPLEEXAMPLE03\n",
    );
    assert_eq!(
        p.get("default").and_then(Profile::region),
        Some("eu-west-1")
    );
    assert_eq!(
        p.get("x").and_then(Profile::region),
        Some("from-credentials")
    );
    assert!(p.get("y").is_some(), "botocore reads [profiles y] as y");
    assert!(p.get("z").is_none());
    assert!(p.get("only-creds").is_some());
    assert!(
        p.problems()
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::NotAProfile { .. }))
    );
}

#[test]
fn sso_profiles_are_recognised() {
    let p = profiles(
        "[profile sso]\nsso_session = corp\nsso_account_id = 333333333333\nsso_role_name = Dev\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n\
         [profile legacy]\nsso_start_url = https://old.awsapps.com/start\nsso_account_id = 444444444444\n",
        "",
    );
    let ProfileKind::Sso(sso) = &p.get("sso").expect("sso").kind else {
        panic!("not sso");
    };
    assert_eq!(
        sso.start_url.as_deref(),
        Some("https://corp.awsapps.com/start")
    );
    assert_eq!(
        p.get("legacy").and_then(Profile::account),
        Some("444444444444")
    );
}

#[test]
fn role_arns() {
    assert!(RoleArn::parse("arn:aws:iam::123456789012:role/a/b/Name_1").is_some());
    assert!(RoleArn::parse("arn:aws-cn:iam::123456789012:role/x").is_some());
    assert!(RoleArn::parse("arn:aws:iam::12345678901:role/x").is_none());
    assert!(RoleArn::parse("arn:aws:iam::123456789012:user/x").is_none());
    assert!(RoleArn::parse("arn:aws:iam::123456789012:role/").is_none());
}

#[test]
fn paths_expand_like_python() {
    // SAFETY of the test: no other test reads these variables.
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(expand_path("~/x"), format!("{home}/x"));
    assert_eq!(expand_path("$HOME/y"), format!("{home}/y"));
    assert_eq!(expand_path("${HOME}/z"), format!("{home}/z"));
    assert_eq!(
        expand_path("$POSTERN_SURELY_UNSET/a"),
        "$POSTERN_SURELY_UNSET/a"
    );
}
