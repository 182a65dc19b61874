//! The `postern` command, as a user first meets it.

use std::process::Command;

use postern_e2e::{postern, role_env, workspace_binary};

#[test]
fn postern_reports_its_version() {
    let out = Command::new(workspace_binary("postern"))
        .arg("--version")
        .output()
        .expect("run postern --version (is it built? `cargo build --workspace --bins`)");
    assert!(out.status.success(), "postern --version failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("postern {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_keeps_streams_apart_and_exits_with_the_remote_code() {
    let sandbox = postern_e2e::sandbox().await;
    let env = role_env(&sandbox).await;
    let target = postern_e2e::instance("payments");
    let out = postern(
        &env,
        &[
            "run",
            &target,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let out = postern(
        &env,
        &["run", &target, "--", "printf", "%s|", "two words", "it's"],
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "two words|it's|",
        "arguments keep their boundaries"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_piped_shell_runs_its_input_and_ends_when_quiet() {
    let sandbox = postern_e2e::sandbox().await;
    let env = role_env(&sandbox).await;
    let out = postern(
        &env,
        &["shell", &postern_e2e::instance("search")],
        b"echo piped $((2+3))\n",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("piped 5"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_can_run_a_named_command_in_its_terminal() {
    let sandbox = postern_e2e::sandbox().await;
    let env = role_env(&sandbox).await;
    // AWS-StartInteractiveCommand: the command runs in a PTY and the session ends with it.
    let out = postern(
        &env,
        &[
            "shell",
            &postern_e2e::instance("payments"),
            "--command",
            "sh -c 'echo named-$((6*7)); tty'",
        ],
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("named-42"), "{stdout}");
    assert!(stdout.contains("/dev/pts/"), "in a terminal: {stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn targets_outside_the_role_fail_with_the_aws_reason() {
    let sandbox = postern_e2e::sandbox().await;
    let env = role_env(&sandbox).await;
    let out = postern(
        &env,
        &["run", &postern_e2e::instance("data"), "--", "true"],
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not authorized to perform: ssm:StartSession"),
        "{stderr}"
    );
    let out = postern(&env, &["shell", &postern_e2e::instance("data")], b"").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("not authorized to perform: ssm:StartSession"),
        "{out:?}"
    );
    // An instance the role may reach, but whose agent is offline.
    let offline = postern_e2e::offline_instance();
    for args in [
        vec!["shell", offline.as_str()],
        vec!["run", offline.as_str(), "--", "true"],
    ] {
        let out = postern(&env, &args, b"").await;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("AWS says: {offline} is not connected.")),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_of_other_regions_or_none_are_named_as_such_not_as_denied() {
    let sandbox = postern_e2e::sandbox().await;
    let env = role_env(&sandbox).await;
    // A payments instance the developer role reaches, in eu-west-1; the user is in us-east-1.
    let elsewhere = postern_sandbox::Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .find(|i| {
            i.account == "210987654321"
                && i.region == "eu-west-1"
                && i.tags.get("team").is_some_and(|t| t == "payments")
        })
        .map(|i| i.id)
        .expect("the default world has one");
    for args in [
        vec!["run", elsewhere.as_str(), "--", "true"],
        vec!["shell", elsewhere.as_str()],
        vec!["tunnel", elsewhere.as_str(), "0:22"],
    ] {
        let out = postern(&env, &args, b"").await;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim_end(),
            format!(
                "postern: no instance {elsewhere} in us-east-1; it is in eu-west-1 (use --region eu-west-1)"
            ),
            "{args:?}"
        );
    }
    // With --region, it works.
    let out = postern(
        &env,
        &[
            "run",
            "--region",
            "eu-west-1",
            &elsewhere,
            "--",
            "echo here",
        ],
        b"",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "here\n");
    // An id no region has.
    let out = postern(&env, &["run", "i-0123456789abcdef0", "--", "true"], b"").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "no such instance: i-0123456789abcdef0 is not in us-east-1 nor in any other region"
        ),
        "{out:?}"
    );
    // A malformed id is bad usage, refused before any call (the sandbox records none).
    let calls_before = sandbox.requests_served();
    for args in [
        vec!["run", "i-xyz", "--", "true"],
        vec!["shell", "mi-01"],
        vec!["tunnel", "i-12", "0:22"],
    ] {
        let out = postern(&env, &args, b"").await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is not an instance id"),
            "{args:?}: {out:?}"
        );
    }
    assert_eq!(sandbox.requests_served(), calls_before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_that_cannot_be_resumed_exits_non_zero_with_the_reason() {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let sandbox = postern_e2e::sandbox().await;
    let env = role_env(&sandbox).await;
    // The websocket dies a few frames in and the way back hangs, until the session is ended
    // elsewhere (an admin, or the idle timeout): then ResumeSession refuses.
    postern_e2e::arm_faults_for_next_sessions(
        &sandbox,
        postern_sandbox::agent::Faults {
            drop_socket_after: Some(30),
            drop_socket_times: 1,
            hang_upgrades_after: Some(1),
            ..Default::default()
        },
    );
    let mut child = tokio::process::Command::new(workspace_binary("postern"))
        .args(["shell", &postern_e2e::instance("payments")])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run postern shell");
    let mut stdin = child.stdin.take().expect("stdin");
    let typing = tokio::spawn(async move {
        for n in 0..200 {
            if stdin
                .write_all(format!("echo line {n}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // Keep stdin open: a piped shell would end at end of input.
        std::future::pending::<()>().await;
    });
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut said = String::new();
    let session_id = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).await.expect("stderr") == 0 {
                panic!("postern ended before losing the connection: {said}");
            }
            said.push_str(&line);
            if let Some(rest) = line.split("resuming session ").nth(1) {
                return rest.trim_end().trim_end_matches(']').to_owned();
            }
        }
    })
    .await
    .expect("the dropped socket was reported");
    let credentials = postern_e2e::role_credentials(&sandbox, postern_e2e::DEVELOPER, "demo").await;
    postern_e2e::ssm_access(&sandbox, credentials)
        .sdk()
        .terminate_session()
        .session_id(&session_id)
        .send()
        .await
        .expect("TerminateSession");
    let mut rest = String::new();
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        stderr.read_to_string(&mut rest).await.expect("stderr");
        child.wait().await.expect("status")
    })
    .await
    .expect("postern ends soon after the session was ended");
    typing.abort();
    said.push_str(&rest);
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "session {session_id} failed: the session cannot be resumed"
        )),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tunnel_forwards_a_local_port_until_interrupted() {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let sandbox = postern_e2e::sandbox().await;
    let env = role_env(&sandbox).await;
    let echo = postern_e2e::echo_server().await;
    let mut child = postern_e2e::spawn_postern(
        &env,
        &[
            "tunnel",
            &postern_e2e::instance("payments"),
            &format!("0:{echo}"),
        ],
    );
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let address = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the tunnel printed its address")
        .expect("read")
        .expect("a line");
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect to the tunnel");
    socket
        .write_all(b"through the side door")
        .await
        .expect("write");
    let mut back = [0u8; 21];
    socket.read_exact(&mut back).await.expect("echo");
    assert_eq!(&back, b"through the side door");
    drop(socket);
    let pid = child.id().expect("pid").to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill -INT");
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("stops on Ctrl-C")
        .expect("output");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Closed: 1 connections, 21 bytes sent, 21 bytes received."),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_reaches_dropbear_through_ssh_proxy() {
    let sandbox = postern_e2e::sandbox().await;
    let env = role_env(&sandbox).await;
    let dropbear = postern_e2e::Dropbear::start();
    let proxy = format!(
        "ProxyCommand={} ssh-proxy %h %p",
        workspace_binary("postern").display()
    );
    let target = postern_e2e::instance("search");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new("ssh")
            .args([
                "-o",
                &proxy,
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-F",
                "/dev/null",
            ])
            .arg("-i")
            .arg(&dropbear.key)
            .args([
                "-p",
                &dropbear.port.to_string(),
                "-l",
                &dropbear.user,
                &target,
            ])
            .arg("echo hello over $(echo SSH) through Session Manager")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ssh finished in time")
    .expect("run ssh (Debian package openssh-client)");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello over SSH through Session Manager\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_config_maps_ids_and_names_to_the_proxy() {
    let sandbox = postern_e2e::sandbox().await;
    let env = role_env(&sandbox).await;
    let out = postern(&env, &["ssh-config"], b"").await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Host i-* mi-*\n    ProxyCommand "), "{text}");
    let target = postern_e2e::instance("payments");
    let name = postern_sandbox::Scenario::default_world()
        .fleet
        .instances
        .into_iter()
        .find(|i| i.id == target)
        .and_then(|i| i.name)
        .expect("a Name tag");
    assert!(
        text.contains(&format!("Host {name}\n    HostName {target}\n")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_one_sentence_each_cause_once_and_never_a_backtrace() {
    let sandbox = postern_e2e::sandbox().await;
    let mut env = role_env(&sandbox).await;
    env.push(("RUST_BACKTRACE".into(), "full".into()));
    env.push(("RUST_LIB_BACKTRACE".into(), "1".into()));
    let one_sentence = |out: &std::process::Output, expected: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(stderr.matches(expected).count(), 1, "said once: {stderr}");
        for debug in ["{ ", "kind:", "backtrace", "Backtrace", " at ", "src/"] {
            assert!(
                !stderr.contains(debug),
                "no Debug dump or backtrace: {stderr}"
            );
        }
    };
    // Nothing listens on the endpoint.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut unreachable = env.clone();
    unreachable.push((
        "AWS_ENDPOINT_URL".into(),
        format!("http://127.0.0.1:{closed}"),
    ));
    let out = postern(&unreachable, &["whoami"], b"").await;
    one_sentence(&out, "Connection refused");
    let out = postern(
        &unreachable,
        &["run", &postern_e2e::instance("payments"), "--", "true"],
        b"",
    )
    .await;
    one_sentence(&out, "Connection refused");
    // A local port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let out = postern(
        &env,
        &[
            "tunnel",
            &postern_e2e::instance("payments"),
            &format!("{port}:22"),
        ],
        b"",
    )
    .await;
    one_sentence(&out, "Address already in use");
    // The sandbox's own errors too.
    let out = std::process::Command::new(workspace_binary("postern-sandbox"))
        .args(["serve", "--scenario", "/nonexistent/world.toml"])
        .env("RUST_BACKTRACE", "full")
        .output()
        .expect("run postern-sandbox");
    one_sentence(&out, "No such file or directory");
}
