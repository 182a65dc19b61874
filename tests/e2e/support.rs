//! Helpers shared by the end-to-end journeys: the workspace's binaries, a sandbox, and the demo
//! user's way in (an MFA code, then a role).
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use postern_core::session::SsmAccess;
use postern_sandbox::{Sandbox, Scenario};

/// The path of a binary of this workspace, built by Cargo into the same profile directory as the
/// test executable (`target/debug/` for `cargo test`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/e2e-<hash> → target/debug
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A sandbox on the default world, following the system clock (data channels run in real time).
/// `POSTERN_TEST_LOG=debug` (a tracing filter) shows what the sandbox and the driver do.
pub async fn sandbox() -> Sandbox {
    if let Ok(filter) = std::env::var("POSTERN_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    Sandbox::builder(Scenario::default_world())
        .start()
        .await
        .expect("the sandbox starts on 127.0.0.1")
}

/// The scale world: the default one with 10,000 generated instances in 4 regions and 2
/// accounts (the same every time).
pub fn big_fleet() -> Scenario {
    let text = postern_sandbox::fleet::generate_shaped(postern_sandbox::fleet::Shape {
        instances: 10_000,
        regions: Some(4),
        accounts: Some(2),
        sessions: 0,
        seed: 2026,
    })
    .expect("the fleet generates");
    Scenario::from_toml(&text).expect("the generated scenario loads")
}

/// Credentials for `role_arn`, assumed by the demo user with an MFA code, as session `name`.
pub async fn role_credentials(sandbox: &Sandbox, role_arn: &str, name: &str) -> Credentials {
    person_role_credentials(sandbox, "demo", role_arn, name, None).await
}

/// Credentials for `role_arn`, assumed by `user` of the demo account (`demo` or `erin`) with
/// their MFA device, as session `name`, with `source_identity` if given (as Postern assumes).
pub async fn person_role_credentials(
    sandbox: &Sandbox,
    user: &str,
    role_arn: &str,
    name: &str,
    source_identity: Option<&str>,
) -> Credentials {
    let account = "210987654321";
    let (key_id, secret) = match sandbox.user_keys(account, user) {
        Some(keys) => (keys.access_key_id, keys.secret_access_key),
        None => panic!("the default world has the user {user}"),
    };
    let serial = format!("arn:aws:iam::{account}:mfa/{user}");
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(sandbox.endpoint())
        .credentials_provider(Credentials::new(&key_id, &secret, None, None, "person"))
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    // Each call gets a code of its own step: the sandbox refuses a code twice.
    for _ in 0..3 {
        let code = sandbox.mfa_code(&serial).expect("device");
        let out = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(name)
            .set_source_identity(source_identity.map(str::to_owned))
            .serial_number(&serial)
            .token_code(code)
            .send()
            .await;
        match out {
            Ok(out) => {
                let c = out.credentials().expect("credentials");
                return Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_owned()),
                    None,
                    "role",
                );
            }
            Err(_) => sandbox.clock().advance(time::Duration::seconds(30)),
        }
    }
    panic!("{user} could not assume {role_arn}");
}

/// An SSM client and signer for the sandbox with `credentials`.
pub fn ssm_access(sandbox: &Sandbox, credentials: Credentials) -> SsmAccess {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .endpoint_url(sandbox.endpoint())
        .credentials_provider(credentials.clone())
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
        .build();
    SsmAccess::from_sdk(
        aws_sdk_ssm::Client::from_conf(config),
        Some(SharedCredentialsProvider::new(credentials)),
        "us-east-1",
        postern_core::aws::AwsClock::system(),
    )
}

/// The developer role of the demo account.
pub const DEVELOPER: &str = "arn:aws:iam::210987654321:role/developer";

/// The admin role of the demo account (every instance).
pub const ADMIN: &str = "arn:aws:iam::210987654321:role/admin";

/// The first online instance of the demo account in us-east-1 that `matches`.
pub fn demo_instance(
    matches: impl Fn(&postern_sandbox::scenario::InstanceSpec) -> bool,
) -> Option<String> {
    use postern_sandbox::scenario::{InstanceState, SsmStatus};
    Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .find(|i| {
            i.account == "210987654321"
                && i.region == "us-east-1"
                && i.state == InstanceState::Running
                && i.ssm == SsmStatus::Online
                && matches(i)
        })
        .map(|i| i.id)
}

/// An online instance of the demo account in us-east-1 whose team is `team`.
pub fn instance(team: &str) -> String {
    demo_instance(|i| i.tags.get("team").is_some_and(|t| t == team))
        .expect("the default world has such an instance")
}

/// An instance of the demo account in us-east-1 that the developer role may reach but whose
/// agent has lost its connection.
pub fn offline_instance() -> String {
    Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .find(|i| {
            i.account == "210987654321"
                && i.region == "us-east-1"
                && i.ssm == postern_sandbox::scenario::SsmStatus::ConnectionLost
                && i.tags
                    .get("team")
                    .is_some_and(|t| t == "payments" || t == "search")
        })
        .map(|i| i.id)
        .expect("the default world has an offline instance the developer reaches")
}

/// An online instance of the demo account (us-east-1, a team the developer role reaches) with
/// the given agent version.
pub fn instance_with_agent(version: &str) -> String {
    demo_instance(|i| {
        i.agent_version == version
            && i.tags
                .get("team")
                .is_some_and(|t| t == "payments" || t == "search")
    })
    .unwrap_or_else(|| panic!("no reachable instance with agent {version}"))
}

/// Give every session started from now on these websocket faults.
pub fn arm_faults_for_next_sessions(sandbox: &Sandbox, faults: postern_sandbox::agent::Faults) {
    sandbox.set_faults_for_new_sessions(Some(faults));
}

/// An echo server on 127.0.0.1 (what the agent's tunnels reach); returns its port.
pub async fn echo_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// A throw-away dropbear SSH server on 127.0.0.1 that lets the current user in with a fresh
/// key; nss_wrapper gives the user a temporary home, so no real ~/.ssh is touched. Killed on
/// drop.
pub struct Dropbear {
    /// Its port.
    pub port: u16,
    /// The client's private key file.
    pub key: PathBuf,
    /// The user name to log in as.
    pub user: String,
    dir: PathBuf,
    child: std::process::Child,
}

impl Dropbear {
    /// Start one (needs Debian's dropbear-bin, openssh-client and libnss-wrapper; .ci/deps
    /// installs them).
    pub fn start() -> Self {
        use std::process::{Command, Stdio};
        let dir = std::env::temp_dir().join(format!("postern-dropbear-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = dir.join("home");
        std::fs::create_dir_all(home.join(".ssh")).expect("temp home");
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap_or_else(|e| {
                panic!("{cmd:?}: {e} (install dropbear-bin and openssh-client)")
            });
            assert!(out.status.success(), "{cmd:?}: {out:?}");
        };
        let key = dir.join("id_ed25519");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(&key));
        std::fs::copy(key.with_extension("pub"), home.join(".ssh/authorized_keys"))
            .expect("authorized_keys");
        let host_key = dir.join("host_key");
        run(Command::new("dropbearkey")
            .args(["-t", "ed25519", "-f"])
            .arg(&host_key));
        let id = |flag: &str| {
            let out = Command::new("id").arg(flag).output().expect("id");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let (user, uid, gid, group) = (id("-un"), id("-u"), id("-g"), id("-gn"));
        std::fs::write(
            dir.join("passwd"),
            format!(
                "{user}:x:{uid}:{gid}:postern test:{}:/bin/sh\n",
                home.display()
            ),
        )
        .expect("passwd");
        std::fs::write(dir.join("group"), format!("{group}:x:{gid}:\n")).expect("group");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for (path, mode) in [
                (home.clone(), 0o700),
                (home.join(".ssh"), 0o700),
                (home.join(".ssh/authorized_keys"), 0o600),
            ] {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .expect("chmod");
            }
        }
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            probe.local_addr().expect("addr").port()
        };
        let child = Command::new("dropbear")
            .args(["-F", "-E", "-s", "-m"])
            .arg("-r")
            .arg(&host_key)
            .arg("-p")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-P")
            .arg(dir.join("pid"))
            .env("LD_PRELOAD", "libnss_wrapper.so")
            .env("NSS_WRAPPER_PASSWD", dir.join("passwd"))
            .env("NSS_WRAPPER_GROUP", dir.join("group"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dropbear (Debian package dropbear-bin)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            port,
            key,
            user,
            dir,
            child,
        }
    }
}

impl Drop for Dropbear {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// Identity: AWS config files for the demo user, Postern's folder, the keychain.

/// The demo user's roles, by profile name, as the identity journeys configure them.
pub const DEMO_ROLES: &[(&str, &str)] = &[
    ("developer", "arn:aws:iam::210987654321:role/developer"),
    ("readonly", "arn:aws:iam::210987654321:role/readonly"),
    ("admin", "arn:aws:iam::210987654321:role/admin"),
    ("legacy-ops", "arn:aws:iam::210987654321:role/legacy-ops"),
    ("prod-ops", "arn:aws:iam::345678901234:role/prod-ops"),
];

/// A fresh folder under the system's temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Make one named after `label`.
    pub fn new(label: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "postern-{label}-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An `~/.aws/config` for the demo user: `demo` (no keys: they go in the keychain) with its MFA
/// device, a profile per role, and `prod-via-dev`, prod-ops chained through developer asking
/// for two hours (AWS allows one).
pub fn demo_config(sandbox: &Sandbox) -> String {
    let demo = sandbox.demo().expect("demo user");
    let mut config = format!(
        "# The demo user of the sandbox.\n[profile demo]\nregion = us-east-1\nmfa_serial = {}\n\n",
        demo.mfa_serial
    );
    for (name, arn) in DEMO_ROLES {
        config.push_str(&format!(
            "[profile {name}]\nrole_arn = {arn}\nsource_profile = demo\n\n"
        ));
    }
    config.push_str(
        "[profile prod-via-dev]\nrole_arn = arn:aws:iam::345678901234:role/prod-ops\nsource_profile = developer\nduration_seconds = 7200\n",
    );
    config
}

/// Fails the test with the way to run it when no Secret Service is set up for tests.
pub fn require_keychain() {
    assert!(
        std::env::var_os("POSTERN_KEYCHAIN_READY").is_some(),
        "this test uses the real OS keychain: run it under `.ci/with-keychain` (make test does), \
         which starts a private D-Bus session with an unlocked gnome-keyring"
    );
}

/// A program running on its own pseudo-terminal (its controlling terminal, so it can open
/// `/dev/tty`), as a user at a terminal runs it. Killed on drop.
pub struct OnTerminal {
    transcript: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    writer: Option<Box<dyn std::io::Write + Send>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Option<Box<dyn portable_pty::MasterPty + Send>>,
}

impl OnTerminal {
    /// Start `program args…` with exactly `env` (and nothing else of this process's environment).
    pub fn spawn(program: &std::path::Path, args: &[&str], env: &[(String, String)]) -> Self {
        Self::spawn_in(program, args, env, None)
    }

    /// [`OnTerminal::spawn`] in the working directory `cwd` (by default, `HOME`'s).
    pub fn spawn_in(
        program: &std::path::Path,
        args: &[&str],
        env: &[(String, String)],
        cwd: Option<&std::path::Path>,
    ) -> Self {
        use portable_pty::{CommandBuilder, PtySize, native_pty_system};
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut command = CommandBuilder::new(program);
        command.args(args);
        if let Some(cwd) = cwd {
            command.cwd(cwd);
        }
        command.env_clear();
        for (key, value) in env {
            command.env(key, value);
        }
        let child = pair
            .slave
            .spawn_command(command)
            .expect("spawn on the terminal");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let transcript = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = transcript.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]);
            }
        });
        Self {
            transcript,
            writer: Some(writer),
            child,
            master: Some(pair.master),
        }
    }

    /// Everything it has written so far.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(
            &self
                .transcript
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }

    /// Whether it has written `text` yet.
    pub fn shows(&self, text: &str) -> bool {
        self.transcript().contains(text)
    }

    /// Wait until it writes `text` (panics after `seconds`).
    pub fn wait_for(&self, text: &str, seconds: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while !self.shows(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {text:?} on the terminal; it shows:\n{}",
                self.transcript()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Type `text` (a line ends with `\r`, as Enter sends).
    pub fn type_text(&mut self, text: &str) {
        let writer = self.writer.as_mut().expect("the terminal is open");
        writer.write_all(text.as_bytes()).expect("type");
        writer.flush().expect("flush");
    }

    /// Close the terminal as closing its window does, and wait for the program's exit code
    /// (panics after `seconds`). The transcript's reader still holds the terminal open, so the
    /// SIGHUP the kernel sends a terminal's program when its window closes is sent here.
    pub fn hang_up(&mut self, seconds: u64) -> u32 {
        self.writer = None;
        self.master = None;
        let pid = self.child.process_id().expect("a running program");
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill -HUP");
        assert!(sent.success(), "kill -HUP {pid}");
        self.wait(seconds)
    }

    /// Wait for it to exit; its exit code (panics after `seconds`).
    pub fn wait(&mut self, seconds: u64) -> u32 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            if let Some(status) = self.child.try_wait().expect("status") {
                // Let the reader drain what was written last.
                std::thread::sleep(std::time::Duration::from_millis(100));
                return status.exit_code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running; the terminal shows:\n{}",
                self.transcript()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The demo user's MFA device as a prompt: answers with the code the sandbox's device shows.
pub struct SandboxDevice(pub std::sync::Arc<Sandbox>);

impl postern_core::mfa::MfaPrompt for SandboxDevice {
    fn ask<'a>(
        &'a self,
        request: &'a postern_core::mfa::MfaRequest,
    ) -> postern_core::mfa::PromptFuture<'a> {
        let code = self.0.mfa_code(&request.serial).unwrap_or_default();
        Box::pin(async move { Ok(code) })
    }
}

/// A resolver as `postern` builds one, for the demo user of `sandbox` in `home`: the demo config
/// (written to `home/aws-config`), the demo keys in the real keychain under Postern's folder
/// `home/postern`, codes from `prompt` (a [`SandboxDevice`], or a scripted user).
pub fn demo_resolver(
    sandbox: &Sandbox,
    home: &TempDir,
    prompt: std::sync::Arc<dyn postern_core::mfa::MfaPrompt>,
) -> postern_core::credentials::Resolver {
    use postern_core::credentials::Environment;
    use postern_core::keychain::{AccessKeys, Keychain, Secret};
    use postern_core::paths::Paths;
    use postern_core::profile::ConfigFiles;
    require_keychain();
    let files = ConfigFiles {
        config: home.join("aws-config"),
        credentials: home.join("aws-credentials"),
    };
    std::fs::write(&files.config, demo_config(sandbox)).expect("config");
    let paths = Paths::at(&home.join("postern"));
    let demo = sandbox.demo().expect("demo");
    Keychain::os(&paths)
        .set_access_keys(
            "demo",
            &AccessKeys {
                access_key_id: demo.access_key_id,
                secret_access_key: Secret::new(demo.secret_access_key),
            },
        )
        .expect("the demo keys into the keychain");
    let setup = postern_core::Setup {
        paths,
        files,
        environment: Environment {
            endpoint_url: Some(sandbox.endpoint()),
            ..Environment::default()
        },
        secrets: postern_core::Secrets::Os,
    };
    setup.resolver(prompt).expect("the demo setup loads")
}

/// `resolver` again over the AWS config now in `home` (a process started after the file
/// changed), same keychain, environment and prompt.
pub fn reload(
    resolver: postern_core::credentials::Resolver,
    home: &TempDir,
) -> postern_core::credentials::Resolver {
    use postern_core::profile::{ConfigFiles, Profiles};
    let files = ConfigFiles {
        config: home.join("aws-config"),
        credentials: home.join("aws-credentials"),
    };
    resolver.with_profiles(Profiles::load(&files).expect("config"))
}

/// The environment a user would have after assuming the developer role: the sandbox's endpoint,
/// the role's credentials, no AWS config files.
pub async fn role_env(sandbox: &postern_sandbox::Sandbox) -> Vec<(String, String)> {
    let credentials = role_credentials(sandbox, DEVELOPER, "demo").await;
    env_of(sandbox, &credentials)
}

/// The environment of a user holding `credentials`: the sandbox's endpoint, the credentials, no
/// AWS config files.
pub fn env_of(
    sandbox: &postern_sandbox::Sandbox,
    credentials: &Credentials,
) -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL".into(), sandbox.endpoint()),
        (
            "AWS_ACCESS_KEY_ID".into(),
            credentials.access_key_id().into(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            credentials.secret_access_key().into(),
        ),
        (
            "AWS_SESSION_TOKEN".into(),
            credentials.session_token().unwrap_or_default().into(),
        ),
        ("AWS_REGION".into(), "us-east-1".into()),
        (
            "AWS_CONFIG_FILE".into(),
            "/nonexistent/postern-e2e-config".into(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            "/nonexistent/postern-e2e-credentials".into(),
        ),
        ("AWS_MAX_ATTEMPTS".into(), "1".into()),
    ]
}

/// Run `postern args…` with exactly `env` (and PATH), `stdin` written and closed; its output
/// (panics after 30 s).
pub async fn postern(
    env: &[(String, String)],
    args: &[&str],
    stdin: &[u8],
) -> std::process::Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = spawn_postern(env, args);
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("write stdin");
    drop(input);
    tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("postern finished in time")
        .expect("postern ran")
}

/// Start `postern args…` with exactly `env` (and PATH), its stdin, stdout and stderr piped;
/// killed when dropped.
pub fn spawn_postern(env: &[(String, String)], args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(workspace_binary("postern"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run postern")
}

/// The ids of the sessions DescribeSessions lists as active.
pub async fn active_sessions(access: &SsmAccess) -> Vec<String> {
    access
        .sdk()
        .describe_sessions()
        .state(aws_sdk_ssm::types::SessionState::Active)
        .send()
        .await
        .expect("DescribeSessions")
        .sessions()
        .iter()
        .filter_map(|s| s.session_id().map(str::to_owned))
        .collect()
}

/// Whether a process whose command line starts with `command` runs on this machine (the
/// sandbox's "remote" processes are local ones; a program that merely has `command` among its
/// arguments, like the `postern run` that started it, does not count).
pub fn process_running(command: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", &format!("^{command}")])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// Wait up to `seconds` for a process whose command line starts with `command` to run.
pub fn process_appears(command: &str, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !process_running(command) {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// Wait up to `seconds` for no process whose command line starts with `command` to be left.
pub fn processes_gone(command: &str, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while process_running(command) {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    true
}

/// Read output until it contains `needle` (or fail after a while), returning everything read.
pub async fn output_until(
    events: &mut tokio::sync::mpsc::Receiver<postern_core::session::SessionEvent>,
    needle: &str,
) -> String {
    use postern_core::session::SessionEvent;
    let mut seen = Vec::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        while let Some(event) = events.recv().await {
            match event {
                SessionEvent::Output(bytes) => {
                    seen.extend_from_slice(&bytes);
                    if String::from_utf8_lossy(&seen).contains(needle) {
                        return true;
                    }
                }
                SessionEvent::Ended(end) => panic!("ended while waiting for {needle:?}: {end:?}"),
                _ => {}
            }
        }
        false
    })
    .await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        matches!(found, Ok(true)),
        "never saw {needle:?} in {text:?}"
    );
    text
}

/// `postern-sandbox serve` as a program (the desktop app) starts it: `--json --exit-with-stdin
/// --no-admin`, stdin and stdout piped. The child (its stdin still open) and its start line.
pub fn serve_for_a_program() -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(workspace_binary("postern-sandbox"))
        .args(["serve", "--json", "--exit-with-stdin", "--no-admin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start postern-sandbox serve (built by `cargo build --workspace --bins`)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a start line");
    (child, line)
}

/// Close `child`'s stdin and wait (at most 15 s) for it to exit; its status.
pub fn let_go_of(mut child: std::process::Child) -> std::process::ExitStatus {
    drop(child.stdin.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 15 s after its stdin closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A tunnel from a free loopback port to `port` on `target`, over `pool` sessions.
pub fn tunnel_spec(target: &str, port: u16, pool: usize) -> postern_core::tunnel::TunnelSpec {
    postern_core::tunnel::TunnelSpec {
        target: target.to_owned(),
        remote_port: port,
        host: None,
        local: "127.0.0.1:0".parse().expect("a loopback address"),
        pool,
    }
}

/// Access to Session Manager as the demo person on the developer role (session name `demo`).
pub async fn developer_access(sandbox: &Sandbox) -> SsmAccess {
    ssm_access(sandbox, role_credentials(sandbox, DEVELOPER, "demo").await)
}

/// A default shell on `target`, opened (StartSession answered, the driver running).
pub async fn open_shell(access: &SsmAccess, target: &str) -> postern_core::session::Session {
    postern_core::session::open(
        access,
        postern_core::session::SessionRequest::shell(target),
        postern_core::session::SessionOptions::default(),
    )
    .await
    .expect("the shell opens")
}
