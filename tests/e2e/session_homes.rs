//! The folder each shell or command session runs in on the sandbox goes when the session ends,
//! however it ends (the shell or command exits, TerminateSession, the client loses its socket and
//! never comes back, the sandbox stops or is dropped), and no process of the session stays
//! behind in it.

use postern_e2e::developer_access;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_core::session::{self, SessionEnd, SessionEvent, SessionOptions, SessionRequest};
use postern_e2e::{DEVELOPER, TempDir, instance, output_until, role_credentials, ssm_access};
use postern_sandbox::{Sandbox, Scenario};
use tokio::sync::mpsc::Receiver;

/// A sandbox on the default world whose sessions' folders go under `homes`.
async fn sandbox_in(homes: &TempDir, idle: Option<Duration>) -> Sandbox {
    let mut builder = Sandbox::builder(Scenario::default_world()).session_homes(&homes.0);
    if let Some(idle) = idle {
        builder = builder.idle_timeout(idle);
    }
    builder.start().await.expect("the sandbox starts")
}

/// The processes whose working directory is `folder` (or was, before it was removed).
pub(crate) fn processes_in(folder: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let wanted = folder.to_string_lossy().into_owned();
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
            let cwd = cwd.to_string_lossy();
            let cwd = cwd.strip_suffix(" (deleted)").unwrap_or(&cwd);
            (cwd == wanted).then_some(pid)
        })
        .collect()
}

/// Wait until `folder` is gone and no process works in it; fail after `limit`.
pub(crate) async fn gone(folder: &Path, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = processes_in(folder);
        if !folder.exists() && left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} still there ({}), processes in it: {:?}",
            folder.display(),
            if folder.exists() { "exists" } else { "removed" },
            left.iter()
                .map(|pid| {
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    format!(
                        "{pid} {}",
                        String::from_utf8_lossy(&cmdline).replace('\0', " ")
                    )
                })
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_end(events: &mut Receiver<SessionEvent>) -> SessionEnd {
    session::wait_for_end(events, Duration::from_secs(15))
        .await
        .expect("the session ended in time")
}

/// Open a shell, wait for its prompt, and check its folder is there with the shell in it.
async fn a_shell(
    sandbox: &Sandbox,
) -> (
    Receiver<SessionEvent>,
    session::SessionWriter,
    String,
    PathBuf,
) {
    let access = ssm_access(sandbox, role_credentials(sandbox, DEVELOPER, "demo").await);
    let shell = session::open(
        &access,
        SessionRequest::shell(&instance("payments")),
        SessionOptions::default(),
    )
    .await
    .expect("opens");
    let (mut events, writer, id) = shell.split();
    output_until(&mut events, "sandbox$ ").await;
    let folder = sandbox.session_home(&id);
    // Something for the removal to get past: a file, and the history bash writes on its way out.
    writer
        .send(b"touch made-here; pwd\r".to_vec())
        .await
        .expect("the session takes input");
    output_until(&mut events, &folder.display().to_string()).await;
    assert!(
        folder.join("made-here").exists(),
        "the shell works in its folder"
    );
    assert!(!processes_in(&folder).is_empty(), "the shell runs in it");
    (events, writer, id.to_string(), folder)
}

/// Start a command that runs until it is stopped; its folder, once the command is in it.
async fn a_long_command(
    sandbox: &Sandbox,
) -> (
    Receiver<SessionEvent>,
    session::SessionWriter,
    String,
    PathBuf,
) {
    let access = ssm_access(sandbox, role_credentials(sandbox, DEVELOPER, "demo").await);
    let command = session::open(
        &access,
        SessionRequest::command(
            &instance("search"),
            "touch made-here; echo started; sleep 600",
        ),
        SessionOptions::default(),
    )
    .await
    .expect("opens");
    let (mut events, writer, id) = command.split();
    output_until(&mut events, "started").await;
    let folder = sandbox.session_home(&id);
    assert!(folder.join("made-here").exists());
    assert!(!processes_in(&folder).is_empty(), "sleep runs in it");
    (events, writer, id.to_string(), folder)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_or_command_that_exits_leaves_no_folder() {
    let homes = TempDir::new("homes-exit");
    let sandbox = sandbox_in(&homes, None).await;
    let (mut events, writer, _, folder) = a_shell(&sandbox).await;
    writer
        .send(b"exit\r".to_vec())
        .await
        .expect("the session takes input");
    assert_eq!(
        the_end(&mut events).await,
        SessionEnd::Closed { reason: None }
    );
    gone(&folder, Duration::from_secs(10)).await;

    let access = developer_access(&sandbox).await;
    let command = session::open(
        &access,
        SessionRequest::command(&instance("search"), "touch made-here; pwd"),
        SessionOptions::default(),
    )
    .await
    .expect("opens");
    let id = command.id().to_owned();
    let (mut events, _writer, _) = command.split();
    let folder = sandbox.session_home(&id);
    output_until(&mut events, &folder.display().to_string()).await;
    the_end(&mut events).await;
    gone(&folder, Duration::from_secs(10)).await;
    assert_eq!(sandbox.session_homes_in_use(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn terminate_session_ends_the_processes_and_removes_the_folders() {
    let homes = TempDir::new("homes-terminate");
    let sandbox = sandbox_in(&homes, None).await;
    let access = developer_access(&sandbox).await;
    let (mut shell_events, shell_writer, shell_id, shell_folder) = a_shell(&sandbox).await;
    // A shell that ignores hang-ups is ended all the same, with the jobs it started (which
    // inherit that), in the background and in the foreground.
    shell_writer
        .send(b"trap '' HUP; sleep 600 & echo hangups-ignored; sleep 600\r".to_vec())
        .await
        .expect("the session takes input");
    output_until(&mut shell_events, "hangups-ignored\r\n").await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while processes_in(&shell_folder).len() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("bash and both sleeps run in the folder");
    let (_command_events, _command_writer, command_id, command_folder) =
        a_long_command(&sandbox).await;
    for id in [&shell_id, &command_id] {
        access
            .sdk()
            .terminate_session()
            .session_id(id)
            .send()
            .await
            .expect("TerminateSession");
    }
    gone(&shell_folder, Duration::from_secs(10)).await;
    gone(&command_folder, Duration::from_secs(10)).await;
    assert_eq!(sandbox.session_homes_in_use(), 0);
}

/// Open a session's data channel by hand, as a client would, and wait for the agent's first
/// frame: the shell's prompt.
pub(crate) async fn attach_raw(stream_url: &str, token: &str) -> crate::session::RawChannel {
    let (socket, admitted) = crate::session::dial_raw(stream_url, token).await;
    assert_eq!(admitted, Ok(()), "the agent admits the token");
    socket
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_loses_its_socket_and_gives_up_leaves_no_folder() {
    let homes = TempDir::new("homes-lost");
    // The session ends after 2 s without activity (AWS's idle timeout, 20 min by default).
    let sandbox = sandbox_in(&homes, Some(Duration::from_secs(2))).await;
    let access = developer_access(&sandbox).await;
    let started = access
        .sdk()
        .start_session()
        .target(instance("payments"))
        .send()
        .await
        .expect("StartSession");
    let id = started.session_id().expect("id").to_owned();
    let socket = attach_raw(
        started.stream_url().expect("url"),
        started.token_value().expect("token"),
    )
    .await;
    let folder = sandbox.session_home(&id);
    assert!(folder.is_dir(), "the shell's folder exists while it runs");
    // The socket dies without a close, and the client never calls ResumeSession (the official
    // plugin gives up silently, spec §1.6).
    drop(socket);
    let status = || async {
        access
            .sdk()
            .describe_sessions()
            .state(aws_sdk_ssm::types::SessionState::Active)
            .send()
            .await
            .expect("DescribeSessions")
            .sessions()
            .iter()
            .find(|s| s.session_id() == Some(id.as_str()))
            .and_then(|s| s.status().map(|status| status.as_str().to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        while status().await.as_deref() != Some("Disconnected") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the session is Disconnected once its socket is gone");
    gone(&folder, Duration::from_secs(15)).await;
    assert_eq!(status().await, None, "timed out and no longer active");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_the_sandbox_ends_every_session_and_removes_their_folders() {
    let homes = TempDir::new("homes-stop");
    let sandbox = sandbox_in(&homes, None).await;
    let (mut shell_events, _shell_writer, _, shell_folder) = a_shell(&sandbox).await;
    let (mut command_events, _command_writer, _, command_folder) = a_long_command(&sandbox).await;
    assert_eq!(sandbox.session_homes_in_use(), 2);
    assert!(
        sandbox.stop(Duration::from_secs(10)).await,
        "every folder removed in time"
    );
    for folder in [&shell_folder, &command_folder] {
        assert!(!folder.exists(), "{} removed", folder.display());
        gone(folder, Duration::from_secs(5)).await;
    }
    // The clients heard why.
    for events in [&mut shell_events, &mut command_events] {
        assert_eq!(
            the_end(events).await,
            SessionEnd::Closed {
                reason: Some("The sandbox stopped.".into())
            }
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_sandbox_removes_the_folders() {
    let homes = TempDir::new("homes-drop");
    let sandbox = sandbox_in(&homes, None).await;
    let (_events, _writer, _, shell_folder) = a_shell(&sandbox).await;
    let (_c_events, _c_writer, _, command_folder) = a_long_command(&sandbox).await;
    drop(sandbox);
    gone(&shell_folder, Duration::from_secs(10)).await;
    gone(&command_folder, Duration::from_secs(10)).await;
}
