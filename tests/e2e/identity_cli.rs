//! The identity commands of `postern`, as a user runs them against the sandbox: keys into the
//! keychain, `login` on a terminal, `credential-process` for the AWS CLI, `exec`, `whoami`,
//! `profiles`, `logout`; one prompt for two processes at once; no keychain; and afterwards no
//! secret anywhere it should not be.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use postern_e2e::{
    DEMO_ROLES, OnTerminal, TempDir, demo_config, require_keychain, workspace_binary,
};
use postern_sandbox::Sandbox;

/// A user's machine: AWS files, Postern's folder, the sandbox as AWS.
struct Machine {
    sandbox: Sandbox,
    home: TempDir,
}

impl Machine {
    async fn new(config: impl FnOnce(&Sandbox) -> String) -> Self {
        let sandbox = postern_e2e::sandbox().await;
        let home = TempDir::new("identity-cli");
        std::fs::write(home.join("aws-config"), config(&sandbox)).expect("config");
        Self { sandbox, home }
    }

    fn postern_home(&self) -> std::path::PathBuf {
        self.home.join("postern")
    }

    /// The environment of every command: only what a user's shell would hold for Postern.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), self.home.0.display().to_string()),
            (
                "POSTERN_HOME".into(),
                self.postern_home().display().to_string(),
            ),
            (
                "AWS_CONFIG_FILE".into(),
                self.home.join("aws-config").display().to_string(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                self.home.join("aws-credentials").display().to_string(),
            ),
            ("AWS_ENDPOINT_URL".into(), self.sandbox.endpoint()),
        ];
        if let Ok(bus) = std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            env.push(("DBUS_SESSION_BUS_ADDRESS".into(), bus));
        }
        env
    }

    /// Run `postern args…` with no terminal at all (its own session), `stdin` as input.
    fn run(&self, args: &[&str], stdin: &[u8], extra: &[(&str, &str)]) -> Output {
        run_detached(
            &workspace_binary("postern"),
            args,
            stdin,
            &self.env(),
            extra,
        )
    }

    fn code(&self) -> String {
        let demo = self.sandbox.demo().expect("demo");
        self.sandbox.mfa_code(&demo.mfa_serial).expect("device")
    }
}

/// Run a program in a new session (no controlling terminal), with exactly `env` and `extra`.
fn run_detached(
    program: &Path,
    args: &[&str],
    stdin: &[u8],
    env: &[(String, String)],
    extra: &[(&str, &str)],
) -> Output {
    use std::io::Write as _;
    let mut child = Command::new("setsid")
        .arg("--wait")
        .arg(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(extra.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run (setsid is util-linux)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// Every file under `dir`, read whole.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

fn assert_no_secret(secrets: &[String], place: &str, haystack: &[u8]) {
    let haystack = String::from_utf8_lossy(haystack);
    for secret in secrets {
        assert!(
            !haystack.contains(secret.as_str()),
            "a secret ({}…) is in {place}",
            &secret[..4.min(secret.len())]
        );
    }
}

/// The venv's AWS CLI (`.ci/deps venv` makes it).
fn aws_cli() -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/aws");
    assert!(
        path.exists(),
        "the AWS CLI peer is missing: run `.ci/deps venv` (make test does)"
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_login_credential_process_exec_whoami_and_logout() {
    require_keychain();
    let postern = workspace_binary("postern");
    let machine = Machine::new(|sandbox| {
        format!(
            "{}\n[profile via-postern]\ncredential_process = {} credential-process --profile developer\nregion = us-east-1\n",
            demo_config(sandbox),
            workspace_binary("postern").display()
        )
    })
    .await;
    let demo = machine.sandbox.demo().expect("demo");
    std::fs::create_dir_all(machine.postern_home()).expect("home");
    std::fs::write(
        machine.postern_home().join("settings.toml"),
        "[account_aliases]\n\"210987654321\" = \"postern-demo\"\n\"345678901234\" = \"postern-prod\"\n",
    )
    .expect("settings");
    let mut quiet_outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut secrets = vec![
        demo.secret_access_key.clone(),
        machine.sandbox.mfa_secret(&demo.mfa_serial).expect("seed"),
    ];

    // Keys in: read from stdin when it is not a terminal.
    let out = machine.run(
        &["keys", "add", "demo"],
        format!("{}\n{}\n", demo.access_key_id, demo.secret_access_key).as_bytes(),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    quiet_outputs.push(("keys add".into(), [out.stdout, out.stderr].concat()));

    // Without a session and without a terminal, a command that needs a code says what to do.
    let out = machine.run(&["credential-process", "--profile", "developer"], b"", &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("run `postern login --profile developer`"),
        "{}",
        text(&out)
    );

    // login on a terminal: the question goes to the terminal, the code is typed there.
    let mut env = machine.env();
    env.push(("TERM".into(), "dumb".into()));
    let mut login = OnTerminal::spawn(&postern, &["login", "--profile", "developer"], &env);
    login.wait_for("MFA code for", 20);
    login.type_text(&format!("{}\r", machine.code()));
    assert_eq!(login.wait(20), 0, "{}", login.transcript());
    assert!(login.shows("Signed in with"), "{}", login.transcript());
    quiet_outputs.push(("login".into(), login.transcript().into_bytes()));

    // Every role now works without a terminal: one code for all of them.
    for (profile, _) in DEMO_ROLES {
        let out = machine.run(&["credential-process", "--profile", profile], b"", &[]);
        let creds = json(&out);
        assert_eq!(creds["Version"], 1);
        assert!(
            creds["Expiration"]
                .as_str()
                .is_some_and(|e| e.ends_with('Z'))
        );
        for key in ["SecretAccessKey", "SessionToken"] {
            secrets.push(creds[key].as_str().expect(key).to_owned());
        }
    }

    // The AWS CLI uses Postern through credential_process.
    let out = Command::new(aws_cli())
        .args([
            "sts",
            "get-caller-identity",
            "--profile",
            "via-postern",
            "--output",
            "json",
        ])
        .env_clear()
        .envs(machine.env())
        .stdin(Stdio::null())
        .output()
        .expect("aws");
    let identity = json(&out);
    assert!(
        identity["Arn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":assumed-role/developer/demo")),
        "{identity}"
    );

    // exec: the command gets the credentials and the region, and its exit code comes back.
    let out = machine.run(
        &[
            "exec",
            "--profile",
            "prod-ops",
            "--",
            "sh",
            "-c",
            "test -n \"$AWS_SESSION_TOKEN\" && test -z \"$AWS_PROFILE\" && echo \"$AWS_REGION $POSTERN_PROFILE\"; exit 7",
        ],
        b"",
        &[("AWS_PROFILE", "developer")],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "us-east-1 prod-ops"
    );

    // whoami and profiles. The most verbose log Postern has: the libraries that see secrets on
    // the wire stay at info.
    let out = machine.run(
        &["whoami", "--profile", "prod-ops"],
        b"",
        &[("POSTERN_LOG", "trace")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("account  345678901234 (postern-prod)"),
        "{shown}"
    );
    assert!(shown.contains("assumed-role/prod-ops/demo"), "{shown}");
    quiet_outputs.push(("whoami".into(), [out.stdout, out.stderr].concat()));
    let out = machine.run(&["favourite", "prod-ops"], b"", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = machine.run(&["profiles"], b"", &[]);
    let listing = text(&out);
    assert!(out.status.success(), "{listing}");
    let prod = listing.find("postern-prod (345678901234)").expect(&listing);
    let star = listing.find("★ prod-ops").expect(&listing);
    assert!(star > prod, "{listing}");
    assert!(listing.contains("role developer ← demo"), "{listing}");
    // A chained role shows its source_profile and the base it really starts from.
    assert!(
        listing.contains("role prod-ops ← developer → demo (chained)"),
        "{listing}"
    );
    quiet_outputs.push(("profiles".into(), [out.stdout, out.stderr].concat()));
    let out = machine.run(&["profiles", "pdev"], b"", &[]);
    assert!(
        text(&out)
            .lines()
            .next()
            .is_some_and(|l| l.contains("prod-via-dev")),
        "{}",
        text(&out)
    );

    // A session command with the profile, end to end.
    let target = postern_e2e::instance("payments");
    let out = machine.run(
        &[
            "run",
            "--profile",
            "developer",
            &target,
            "--",
            "echo",
            "via-profile",
        ],
        b"",
        &[("POSTERN_LOG", "trace")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "via-profile");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TRACE"),
        "the log was on: {}",
        text(&out)
    );
    quiet_outputs.push(("run, traced".into(), [out.stdout, out.stderr].concat()));

    // logout forgets the sessions; the keys stay.
    let out = machine.run(&["logout"], b"", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Forgot"), "{}", text(&out));
    quiet_outputs.push(("logout".into(), [out.stdout, out.stderr].concat()));
    let out = machine.run(&["credential-process", "--profile", "admin"], b"", &[]);
    assert!(
        !out.status.success(),
        "no session after logout: {}",
        text(&out)
    );
    let out = machine.run(&["keys", "list"], b"", &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "demo");

    // Nothing secret in Postern's folder or in what the quiet commands printed.
    let files = files_under(&machine.postern_home());
    assert!(
        files.iter().any(|(p, _)| p.ends_with("state.toml")),
        "{files:?}"
    );
    for (path, bytes) in &files {
        assert_no_secret(&secrets, &path.display().to_string(), bytes);
    }
    for (command, output) in &quiet_outputs {
        assert_no_secret(&secrets, command, output);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_credential_process_children_ask_once() {
    require_keychain();
    let machine = Machine::new(demo_config).await;
    let demo = machine.sandbox.demo().expect("demo");
    let out = machine.run(
        &["keys", "add", "demo"],
        format!("{}\n{}\n", demo.access_key_id, demo.secret_access_key).as_bytes(),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Two tools start at once, each on its own terminal, each needing a code for another role.
    let postern = workspace_binary("postern");
    let env = machine.env();
    let mut first = OnTerminal::spawn(
        &postern,
        &["credential-process", "--profile", "developer"],
        &env,
    );
    let mut second = OnTerminal::spawn(
        &postern,
        &["credential-process", "--profile", "admin"],
        &env,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let asking = loop {
        match (first.shows("MFA code for"), second.shows("MFA code for")) {
            (true, false) => break 0,
            (false, true) => break 1,
            (true, true) => panic!(
                "both asked:\n{}\n---\n{}",
                first.transcript(),
                second.transcript()
            ),
            (false, false) => {
                assert!(std::time::Instant::now() < deadline, "nobody asked");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    };
    let (asker, waiter) = if asking == 0 {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    waiter.wait_for("Waiting for the MFA code another Postern is asking for", 10);
    asker.type_text(&format!("{}\r", machine.code()));
    assert_eq!(asker.wait(20), 0, "{}", asker.transcript());
    assert_eq!(waiter.wait(20), 0, "{}", waiter.transcript());
    assert!(!waiter.shows("MFA code for"), "{}", waiter.transcript());
    for terminal in [&first, &second] {
        assert!(
            terminal.shows("\"SessionToken\""),
            "{}",
            terminal.transcript()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn precedence_and_import_from_the_credentials_file() {
    require_keychain();
    // ci-robot needs no MFA code; it may assume readonly.
    let machine = Machine::new(|_| {
        "[profile ci]\nregion = us-east-1\n\n[profile ci-readonly]\nrole_arn = arn:aws:iam::210987654321:role/readonly\nsource_profile = ci\n".into()
    })
    .await;
    let robot = machine
        .sandbox
        .user_keys("210987654321", "ci-robot")
        .expect("ci-robot");
    let demo = machine.sandbox.demo().expect("demo");
    let credentials = machine.home.join("aws-credentials");
    std::fs::write(
        &credentials,
        format!(
            "# CI's keys\n[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            robot.access_key_id, robot.secret_access_key
        ),
    )
    .expect("credentials");
    let whoami = |args: &[&str], extra: &[(&str, &str)]| {
        let out = machine.run(args, b"", extra);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    // From the credentials file.
    assert!(whoami(&["whoami", "--profile", "ci"], &[]).contains(":user/ci-robot"));
    assert!(
        whoami(&["whoami", "--profile", "ci-readonly"], &[])
            .contains("assumed-role/readonly/ci-robot")
    );
    // Other keys in the file: the role cached from the old ones is not served.
    let keys_file = |keys: (&str, &str)| {
        std::fs::write(
            &credentials,
            format!(
                "# CI's keys\n[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                keys.0, keys.1
            ),
        )
        .expect("credentials");
    };
    keys_file((&demo.access_key_id, &demo.secret_access_key));
    assert!(
        whoami(&["whoami", "--profile", "ci-readonly"], &[]).contains("assumed-role/readonly/demo")
    );
    keys_file((&robot.access_key_id, &robot.secret_access_key));
    // The environment's keys beat AWS_PROFILE; --profile beats the environment.
    let env_keys = [
        ("AWS_ACCESS_KEY_ID", demo.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", demo.secret_access_key.as_str()),
        ("AWS_PROFILE", "ci"),
    ];
    assert!(whoami(&["whoami"], &env_keys).contains(":user/demo"));
    assert!(whoami(&["whoami", "--profile", "ci"], &env_keys).contains(":user/ci-robot"));
    assert!(whoami(&["whoami"], &[("AWS_PROFILE", "ci")]).contains(":user/ci-robot"));

    // import: into the keychain, with where the plaintext still is.
    let out = machine.run(&["keys", "import", "ci"], b"", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("(lines 3 and 4)"), "{said}");
    assert!(!said.contains(&robot.secret_access_key), "{said}");
    // The keychain comes before the file: with other keys in the file, the keychain's are used.
    std::fs::write(
        &credentials,
        format!(
            "[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            demo.access_key_id, demo.secret_access_key
        ),
    )
    .expect("credentials");
    assert!(whoami(&["whoami", "--profile", "ci"], &[]).contains(":user/ci-robot"));
    let out = machine.run(&["keys", "remove", "ci"], b"", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(whoami(&["whoami", "--profile", "ci"], &[]).contains(":user/demo"));
}

/// The names of the cached sessions in Postern's list of keychain entries, by kind.
fn cached_entries(machine: &Machine) -> (usize, usize) {
    let index =
        std::fs::read_to_string(machine.postern_home().join("keychain.toml")).unwrap_or_default();
    (
        index.matches("\"mfa/").count(),
        index.matches("\"role/").count(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn new_keys_for_one_profile_forget_only_its_sessions() {
    require_keychain();
    let machine = Machine::new(|sandbox| {
        format!(
            "{}\n[profile ci]\nregion = us-east-1\n\n[profile ci-readonly]\nrole_arn = arn:aws:iam::210987654321:role/readonly\nsource_profile = ci\n",
            demo_config(sandbox)
        )
    })
    .await;
    let demo = machine.sandbox.demo().expect("demo");
    let robot = machine
        .sandbox
        .user_keys("210987654321", "ci-robot")
        .expect("ci-robot");
    let add = |profile: &str, id: &str, secret: &str| {
        let out = machine.run(
            &["keys", "add", profile],
            format!("{id}\n{secret}\n").as_bytes(),
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    add("demo", &demo.access_key_id, &demo.secret_access_key);
    add("ci", &robot.access_key_id, &robot.secret_access_key);

    // demo signs in once (an MFA session and the developer role); admin comes from that
    // session without a code; ci's role needs no code.
    let mut env = machine.env();
    env.push(("TERM".into(), "dumb".into()));
    let postern = workspace_binary("postern");
    let mut login = OnTerminal::spawn(&postern, &["login", "--profile", "developer"], &env);
    // The question names the profile whose keys and device make the MFA session.
    login.wait_for("(profile demo, for developer): ", 20);
    login.type_text(&format!("{}\r", machine.code()));
    assert_eq!(login.wait(20), 0, "{}", login.transcript());
    let serve = |profile: &str| {
        let out = machine.run(&["credential-process", "--profile", profile], b"", &[]);
        (out.status.success(), text(&out))
    };
    for profile in ["admin", "ci-readonly"] {
        let (served, said) = serve(profile);
        assert!(served, "{said}");
    }
    assert_eq!(cached_entries(&machine), (1, 3));

    // ci's keys again: ci's role goes, demo's MFA session and roles stay.
    let said = add("ci", &robot.access_key_id, &robot.secret_access_key);
    assert!(
        said.contains("Forgot 1 cached session made with the previous keys of profile ci."),
        "{said}"
    );
    assert_eq!(cached_entries(&machine), (1, 2));
    for profile in ["developer", "readonly"] {
        let (served, said) = serve(profile);
        assert!(served, "demo's MFA session outlived ci's new keys: {said}");
    }
    let (served, said) = serve("ci-readonly");
    assert!(served, "{said}");

    // demo's keys again: its MFA session and its roles go (a code is needed), ci's role stays.
    let said = add("demo", &demo.access_key_id, &demo.secret_access_key);
    assert!(
        said.contains("Forgot 4 cached sessions made with the previous keys of profile demo."),
        "{said}"
    );
    assert_eq!(cached_entries(&machine), (0, 1));
    let (served, said) = serve("developer");
    assert!(
        !served && said.contains("run `postern login --profile developer`"),
        "{said}"
    );

    // keys remove: the same for the profile whose keys go.
    let out = machine.run(&["keys", "remove", "ci"], b"", &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("Forgot 1 cached session made with the previous keys of profile ci."),
        "{said}"
    );
    assert_eq!(cached_entries(&machine), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_secret_service_postern_says_how_to_get_one_and_writes_no_file() {
    let machine = Machine::new(demo_config).await;
    let demo = machine.sandbox.demo().expect("demo");
    let out = machine.run(
        &["keys", "add", "demo"],
        format!("{}\n{}\n", demo.access_key_id, demo.secret_access_key).as_bytes(),
        &[(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/postern-no-bus",
        )],
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("no OS keychain is available"), "{said}");
    assert!(said.contains("gnome-keyring"), "{said}");
    assert!(
        said.contains("never keeps secrets in a plain file"),
        "{said}"
    );
    // Listing the keys says the same, not "no keys yet".
    let out = machine.run(
        &["keys", "list"],
        b"",
        &[(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/postern-no-bus",
        )],
    );
    assert!(!out.status.success());
    let listed = text(&out);
    assert!(listed.contains("no OS keychain is available"), "{listed}");
    assert!(listed.contains("gnome-keyring"), "{listed}");
    assert!(!listed.contains("No keys in the keychain yet"), "{listed}");
    for (path, bytes) in files_under(&machine.postern_home()) {
        assert_no_secret(
            std::slice::from_ref(&demo.secret_access_key),
            &path.display().to_string(),
            &bytes,
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_reports_bad_lines_and_keeps_the_rest() {
    let machine = Machine::new(|_| {
        "[profile good]\nregion = eu-west-1\n\n[profile loop-a]\nrole_arn = arn:aws:iam::111111111111:role/a\nsource_profile = loop-b\n\n\
         [profile loop-b]\nrole_arn = arn:aws:iam::111111111111:role/b\nsource_profile = loop-a\n\nthis line is wrong\n[profile good]\nregoin = x\n\
         [profile dev]\nrole_arn = arn:aws:iam::111111111111:role/dev\nsource_profile = good\n\
         [profile prod]\nrole_arn = arn:aws:iam::222222222222:role/prod\nsource_profile = dev\n\
         [profile unclosed\nregion = us-west-2\n"
            .into()
    })
    .await;
    let out = machine.run(&["profiles"], b"", &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("good"), "{said}");
    let config = machine.home.join("aws-config").display().to_string();
    assert!(
        said.contains(&format!(
            "error: {config}:12: this line is not `key = value`"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "error: {config}:13: [profile good] appears again (first on line 1"
        )),
        "{said}"
    );
    assert!(said.contains("loop-a → loop-b → loop-a"), "{said}");
    // One loop, reported once.
    assert_eq!(said.matches("goes round in a loop").count(), 1, "{said}");
    assert!(said.contains("did you mean `region`"), "{said}");
    assert!(
        said.contains(&format!(
            "error: {config}:21: [profile unclosed has no closing `]` (the AWS CLI refuses this file): write [profile unclosed]"
        )),
        "{said}"
    );
    // Problems by line.
    let lines: Vec<usize> = said
        .lines()
        .filter_map(|l| l.split_once(&format!("{config}:"))?.1.split(':').next())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(lines.len() >= 5, "{said}");
    assert!(lines.is_sorted(), "{lines:?} in {said}");
    // The real source of a chained role, and regions taken from the chain.
    let line_of = |profile: &str| {
        said.lines()
            .find(|l| l.split_whitespace().next() == Some(profile))
            .unwrap_or_else(|| panic!("no {profile} in {said}"))
            .to_owned()
    };
    let prod = line_of("prod");
    assert!(prod.contains("role prod ← dev → good (chained)"), "{prod}");
    assert!(prod.contains("eu-west-1 (from good)"), "{prod}");
    assert!(line_of("dev").contains("eu-west-1 (from good)"), "{said}");
    assert!(line_of("good").ends_with("eu-west-1"), "{said}");
    let listed = json(&machine.run(&["profiles", "--json"], b"", &[]));
    let prod = listed
        .as_array()
        .and_then(|all| all.iter().find(|p| p["profile"] == "prod"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(prod["source"], "good", "{prod}");
    assert_eq!(prod["via"], serde_json::json!(["dev"]), "{prod}");
    assert_eq!(prod["region"], "eu-west-1", "{prod}");
    assert_eq!(prod["region_from"], "good", "{prod}");
    let out = machine.run(&["whoami", "--profile", "loop-a"], b"", &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("loop"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn when_aws_clock_passes_a_cached_session_the_next_command_replaces_it() {
    require_keychain();
    let machine = Machine::new(demo_config).await;
    let demo = machine.sandbox.demo().expect("demo");
    let target = postern_e2e::instance("payments");
    let out = machine.run(
        &["keys", "add", "demo"],
        format!("{}\n{}\n", demo.access_key_id, demo.secret_access_key).as_bytes(),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut env = machine.env();
    env.push(("TERM".into(), "dumb".into()));
    let mut login = OnTerminal::spawn(
        &workspace_binary("postern"),
        &["login", "--profile", "developer"],
        &env,
    );
    login.wait_for("MFA code for", 20);
    login.type_text(&format!("{}\r", machine.code()));
    assert_eq!(login.wait(20), 0, "{}", login.transcript());
    let run = |word: &str| {
        machine.run(
            &[
                "run",
                "--profile",
                "developer",
                &target,
                "--",
                &format!("echo {word}"),
            ],
            b"",
            &[],
        )
    };
    let out = run("one");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "one\n",
        "{}",
        text(&out)
    );

    // AWS's clock moves two hours on (this machine's does not): the cached role (one hour) has
    // expired by AWS's clock while Postern's clock says it is fresh. The next command replaces
    // it with the MFA session, which AWS still takes: no terminal, no code, no error.
    machine.sandbox.clock().advance(time::Duration::hours(2));
    let out = run("two");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "two\n",
        "{}",
        text(&out)
    );
    let out = machine.run(&["whoami", "--profile", "developer"], b"", &[]);
    assert!(out.status.success(), "{}", text(&out));

    // Thirteen hours more: the MFA session (12 h) is gone too. The next command asks for one
    // code, on the terminal, and goes on.
    machine.sandbox.clock().advance(time::Duration::hours(13));
    let mut command = OnTerminal::spawn(
        &workspace_binary("postern"),
        &["run", "--profile", "developer", &target, "--", "echo three"],
        &env,
    );
    command.wait_for("MFA code for", 30);
    command.type_text(&format!("{}\r", machine.code()));
    assert_eq!(command.wait(30), 0, "{}", command.transcript());
    let transcript = command.transcript();
    assert!(transcript.contains("three"), "{transcript}");
    assert_eq!(
        transcript.matches("MFA code for").count(),
        1,
        "one question: {transcript}"
    );
    assert!(
        !transcript.contains("run the command again"),
        "{transcript}"
    );
}
