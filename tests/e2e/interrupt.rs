//! Every way out of `postern shell`, `run` and `tunnel` ends the sessions Postern opened on AWS
//! and the remote processes with them: Ctrl-C (SIGINT), `kill` (SIGTERM), a closed terminal
//! window (SIGHUP), and the end of piped input. Checked through DescribeSessions and through the
//! sandbox's processes (they are local processes of this machine).

use postern_e2e::developer_access;
use std::time::Duration;

use postern_e2e::{
    DEVELOPER, OnTerminal, active_sessions, instance, processes_gone, role_credentials, role_env,
    sandbox, spawn_postern, ssm_access, workspace_binary,
};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

const SIGNALS: [(&str, i32); 3] = [("INT", 130), ("TERM", 143), ("HUP", 129)];

/// A `sleep` whose command line no other test shares: `sleep 300.<n>`.
fn unique_sleep(tag: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("sleep 300.{tag}{nanos:09}")
}

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Read `stdout` until it holds `needle`.
async fn read_until(stdout: &mut tokio::process::ChildStdout, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(20), async {
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = stdout.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "stdout ended before {needle:?}: {:?}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", String::from_utf8_lossy(&seen)));
    String::from_utf8_lossy(&seen).into_owned()
}

/// Wait for the child's end: its exit code and what it printed on stderr.
async fn finish(child: tokio::process::Child) -> (Option<i32>, String) {
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("postern ended within the close limit")
        .expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Start a command with `start` (given a unique `sleep` for the remote side to run) until it
/// prints `ready`, then stop it with each signal in turn: it exits with the signal's code and
/// its summary, DescribeSessions lists nothing active, and the remote `sleep` is gone.
async fn every_signal_ends(
    sandbox: &postern_sandbox::Sandbox,
    tag: u32,
    start: impl Fn(&str) -> tokio::process::Child,
    ready: &str,
) {
    let access = ssm_access(sandbox, role_credentials(sandbox, DEVELOPER, "demo").await);
    for (index, (signal, code)) in SIGNALS.into_iter().enumerate() {
        let sleep = unique_sleep(tag + index as u32);
        let mut child = start(&sleep);
        let mut stdout = child.stdout.take().expect("stdout");
        read_until(&mut stdout, ready).await;
        assert!(
            postern_e2e::process_appears(&sleep, 10),
            "the remote side runs it"
        );
        kill(child.id().expect("pid"), signal);
        let (exit, stderr) = finish(child).await;
        assert_eq!(exit, Some(code), "SIG{signal}: {stderr}");
        assert!(
            stderr.contains(" terminated."),
            "SIG{signal} summary: {stderr}"
        );
        assert_eq!(
            active_sessions(&access).await,
            Vec::<String>::new(),
            "SIG{signal}"
        );
        assert!(
            processes_gone(&sleep, 5),
            "SIG{signal}: the remote process is gone"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signal_ends_a_run_its_session_and_the_remote_command() {
    let sandbox = sandbox().await;
    let env = role_env(&sandbox).await;
    let target = instance("payments");
    let start = |sleep: &str| {
        spawn_postern(
            &env,
            &["run", &target, "--", &format!("echo ready; exec {sleep}")],
        )
    };
    every_signal_ends(&sandbox, 0, start, "ready").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signal_ends_a_piped_shell_its_session_and_the_remote_shell() {
    let sandbox = sandbox().await;
    let env = role_env(&sandbox).await;
    let target = instance("search");
    let start = |sleep: &str| {
        let mut child = spawn_postern(&env, &["shell", &target]);
        // The terminal echoes the line; `re''ady` is only `ready` once the shell ran it. Stdin
        // stays open (the shell would end at the end of input).
        let line = format!("echo re''ady; {sleep}\n");
        let mut stdin = child.stdin.take().expect("stdin");
        tokio::spawn(async move {
            stdin.write_all(line.as_bytes()).await.expect("write");
            std::future::pending::<()>().await;
        });
        child
    };
    every_signal_ends(&sandbox, 10, start, "ready\r\n").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_the_terminal_window_ends_an_interactive_shell_on_aws() {
    let sandbox = sandbox().await;
    let env = role_env(&sandbox).await;
    let access = developer_access(&sandbox).await;
    let sleep = unique_sleep(20);
    let mut terminal = OnTerminal::spawn(
        &workspace_binary("postern"),
        &["shell", &instance("payments")],
        &env,
    );
    terminal.wait_for("sandbox$ ", 20);
    terminal.type_text(&format!("echo re''ady; {sleep}\r"));
    terminal.wait_for("ready\r\n", 20);
    assert!(postern_e2e::process_appears(&sleep, 10));
    // The window closes: the terminal hangs up, and the kernel sends Postern SIGHUP.
    let exit = terminal.hang_up(15);
    assert_eq!(exit, 129);
    assert_eq!(active_sessions(&access).await, Vec::<String>::new());
    assert!(processes_gone(&sleep, 5), "the remote shell is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signal_closes_a_pool_of_four_tunnel_sessions_on_aws() {
    let sandbox = sandbox().await;
    let env = role_env(&sandbox).await;
    let access = developer_access(&sandbox).await;
    let echo = postern_e2e::echo_server().await;
    let target = instance("payments");
    for (signal, _) in SIGNALS {
        let mut child = spawn_postern(
            &env,
            &["tunnel", &target, &format!("0:{echo}"), "--pool", "4"],
        );
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let address = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the tunnel printed its address")
            .expect("read")
            .expect("a line");
        let mut socket = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        socket.write_all(b"knock").await.expect("write");
        let mut back = [0u8; 5];
        socket.read_exact(&mut back).await.expect("echo");
        assert_eq!(active_sessions(&access).await.len(), 4, "the pool is open");
        kill(child.id().expect("pid"), signal);
        let (exit, stderr) = finish(child).await;
        assert_eq!(
            exit,
            Some(0),
            "SIG{signal}: a tunnel is meant to be stopped: {stderr}"
        );
        assert!(
            stderr.contains("Closed: 1 connections"),
            "SIG{signal}: {stderr}"
        );
        assert_eq!(
            active_sessions(&access).await,
            Vec::<String>::new(),
            "SIG{signal}: all four sessions are over"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_piped_shell_waits_for_a_slow_remote_shell_and_ends_when_it_exits() {
    let sandbox = sandbox().await;
    let env = role_env(&sandbox).await;
    let access = developer_access(&sandbox).await;
    // Nothing at all is printed for 3 s after the end of input (once 1.5 s of quiet was enough
    // to end the session and lose the output); the last line has no newline.
    let started = std::time::Instant::now();
    let out = postern_e2e::postern(
        &env,
        &["shell", &instance("search")],
        b"sleep 3; echo slow $((40+2))",
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("slow 42"),
        "{out:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(active_sessions(&access).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signal_ends_an_ssh_proxy_session_on_aws() {
    let sandbox = sandbox().await;
    let env = role_env(&sandbox).await;
    let access = developer_access(&sandbox).await;
    // The SSH document reaches this port of the instance (here, an echo server on loopback).
    let echo = postern_e2e::echo_server().await;
    let target = instance("payments");
    for (signal, code) in SIGNALS {
        let mut child = spawn_postern(&env, &["ssh-proxy", &target, &echo.to_string()]);
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"SSH-2.0-test\r\n").await.expect("write");
        let mut stdout = child.stdout.take().expect("stdout");
        read_until(&mut stdout, "SSH-2.0-test").await;
        assert_eq!(active_sessions(&access).await.len(), 1);
        kill(child.id().expect("pid"), signal);
        let (exit, stderr) = finish(child).await;
        assert_eq!(exit, Some(code), "SIG{signal}: {stderr}");
        if signal == "HUP" {
            assert_eq!(stderr, "", "ssh sends SIGHUP on every exit: nothing to say");
        } else {
            assert!(stderr.contains(" terminated."), "SIG{signal}: {stderr}");
        }
        assert_eq!(
            active_sessions(&access).await,
            Vec::<String>::new(),
            "SIG{signal}"
        );
        drop(stdin);
    }
}
