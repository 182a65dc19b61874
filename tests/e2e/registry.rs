//! Core's registry of live sessions and tunnels: what the window relies on so that reloading it
//! ends nothing. A terminal that detaches and reattaches gets the output it missed; closing
//! goes through the registry; quitting closes everything and says what ended.

use std::time::Duration;

use postern_core::registry::{About, Registry, SessionState, TunnelAbout};
use postern_core::session::{self, SessionEnd, SessionEvent, SessionOptions};
use postern_core::tunnel;
use postern_e2e::{developer_access, echo_server, instance, open_shell, output_until, sandbox};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn about(target: &str) -> About {
    About {
        target: target.to_owned(),
        profile: Some("developer".into()),
        region: "us-east-1".into(),
        kind: "shell".into(),
    }
}

/// Wait until the kept output contains `needle` (looked at without listening).
async fn kept_until(registry: &Registry, id: &session::SessionId, needle: &str) -> String {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let kept = registry.recent(id).expect("listed");
            let text = String::from_utf8_lossy(&kept).into_owned();
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{needle:?} kept in time"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_that_reattaches_gets_what_it_missed_and_the_session_goes_on() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let target = instance("payments");
    let shell = open_shell(&access, &target).await;
    let registry = Registry::new();
    let id = registry.adopt(shell, about(&target));
    let (_, mut events) = registry.listen(&id).expect("listed");
    let writer = registry.writer(&id).expect("a writer");
    writer
        .send(b"echo first-$((6*7))\r".to_vec())
        .await
        .expect("input");
    output_until(&mut events, "first-42").await;
    assert_eq!(registry.sessions()[0].state, SessionState::Live);
    // The window reloads: its listener is gone. The session goes on, its output is kept.
    drop(events);
    writer
        .send(b"echo while-away-$((2*3))\r".to_vec())
        .await
        .expect("input");
    let kept = kept_until(&registry, &id, "while-away-6").await;
    assert!(kept.contains("first-42"), "what came before is kept too");
    // The new listener gets what follows, once.
    let (_, mut events) = registry.listen(&id).expect("listed");
    writer
        .send(b"echo back-$((5+5))\r".to_vec())
        .await
        .expect("input");
    output_until(&mut events, "back-10").await;
    // A second listener replaces the first, whose stream ends.
    let (_, mut second) = registry.listen(&id).expect("listed");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("the replaced stream ends"),
        None
    );
    assert_eq!(
        registry.close(&id).await,
        Some(SessionEnd::ClosedByUser),
        "closed and confirmed"
    );
    loop {
        match tokio::time::timeout(Duration::from_secs(5), second.recv())
            .await
            .expect("the end is told")
        {
            Some(SessionEvent::Ended(end)) => {
                assert_eq!(end, SessionEnd::ClosedByUser);
                assert_eq!(
                    tokio::time::timeout(Duration::from_secs(5), second.recv())
                        .await
                        .expect("the stream ends after the end"),
                    None
                );
                break;
            }
            Some(_) => {}
            None => panic!("the stream ended without the end"),
        }
    }
    let listed = registry.sessions();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, SessionState::Ended);
    assert_eq!(listed[0].end, Some(SessionEnd::ClosedByUser));
    // Listening to an ended session says so at once.
    let (_, mut late) = registry.listen(&id).expect("still listed");
    assert_eq!(
        late.recv().await,
        Some(SessionEvent::Ended(SessionEnd::ClosedByUser))
    );
    registry.forget(&id).await;
    assert!(registry.sessions().is_empty());
    assert!(registry.listen(&id).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn quitting_closes_every_session_and_tunnel_and_says_what_ended() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let target = instance("payments");
    let registry = Registry::new();
    for _ in 0..2 {
        let shell = open_shell(&access, &target).await;
        registry.adopt(shell, about(&target));
    }
    let port = echo_server().await;
    let opened = tunnel::open(
        &access,
        postern_e2e::tunnel_spec(&target, port, 1),
        SessionOptions::default(),
    )
    .await
    .expect("tunnel");
    let local = opened.local_addr();
    let tunnel_id = registry.adopt_tunnel(
        opened,
        TunnelAbout {
            target: target.clone(),
            remote_port: port,
            host: None,
            profile: Some("developer".into()),
            region: "us-east-1".into(),
        },
    );
    let mut socket = tokio::net::TcpStream::connect(local)
        .await
        .expect("connect");
    socket.write_all(b"ping").await.expect("write");
    let mut echo = [0u8; 4];
    socket.read_exact(&mut echo).await.expect("echo");
    assert_eq!(&echo, b"ping");
    drop(socket);
    let tunnels = registry.tunnels();
    assert_eq!(tunnels.len(), 1);
    assert_eq!(tunnels[0].id, tunnel_id);
    assert_eq!(tunnels[0].local, local.to_string());
    assert_eq!(tunnels[0].connections, 1);
    assert!(tunnels[0].bytes_up >= 4 && tunnels[0].bytes_down >= 4);
    let closed = registry.close_all().await;
    assert_eq!(closed.sessions, 2);
    assert_eq!(closed.tunnels, 1);
    assert_eq!(closed.unconfirmed, 0);
    assert!(registry.tunnels().is_empty());
    assert!(
        registry
            .sessions()
            .iter()
            .all(|s| s.state == SessionState::Ended),
        "{:?}",
        registry.sessions()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_that_stops_reading_is_let_go_and_holds_nothing_up() {
    let sandbox = sandbox().await;
    let access = developer_access(&sandbox).await;
    let target = instance("payments");
    let registry = Registry::new();
    let id = registry.adopt(open_shell(&access, &target).await, about(&target));
    // A window that went away without saying so: it listens and never reads.
    let (_, stalled) = registry.listen(&id).expect("listed");
    let writer = registry.writer(&id).expect("a writer");
    writer
        .send(
            b"for i in $(seq 150); do echo tick-$i; sleep 0.03; done; echo done-$((4*4))\r"
                .to_vec(),
        )
        .await
        .expect("input");
    // More events than its queue holds: after a few seconds it is let go, and the session
    // went on all the while (the output is kept for the next listener).
    let kept = kept_until(&registry, &id, "done-16").await;
    assert!(kept.contains("tick-150"), "every line kept");
    drop(stalled);
    let (_, mut events) = registry.listen(&id).expect("listed");
    writer
        .send(b"echo after-$((3*3))\r".to_vec())
        .await
        .expect("input");
    output_until(&mut events, "after-9").await;
    registry.close_all().await;
}
