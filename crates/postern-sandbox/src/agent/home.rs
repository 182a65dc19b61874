//! The folder each shell or command session runs in (its `HOME` and working directory), removed
//! when the session ends, however it ends.
//!
//! A [`SessionHome`] removes its folder when the last holder drops it: the agent task holds it
//! while the session lives (its end, or the task being dropped with the runtime), and the
//! process watchers hold it until the shell or command has exited, so a process that is still
//! writing (bash saves its history when it is hung up on) cannot leave the folder behind.
//! [`Homes`] counts the folders that exist, so a stopping sandbox can wait for them to go.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

/// Where a sandbox makes its sessions' folders, and how many exist.
#[derive(Debug)]
pub struct Homes {
    root: PathBuf,
    live: Arc<watch::Sender<usize>>,
}

impl Homes {
    /// Folders go under `root` (the system's temporary directory for `serve`).
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            live: Arc::new(watch::Sender::new(0)),
        }
    }

    /// The folder of session `session_id`, whether or not it exists.
    pub fn path_for(&self, session_id: &str) -> PathBuf {
        // Session ids are the sandbox's own (`<name>-<hex>`); keep them one path component
        // whatever a role session name holds.
        let name: String = session_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '=' | '+') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.root.join(format!("postern-sandbox-{name}"))
    }

    /// Make the folder of session `session_id`.
    pub fn create(&self, session_id: &str) -> std::io::Result<Arc<SessionHome>> {
        let path = self.path_for(session_id);
        std::fs::create_dir_all(&path)?;
        self.live.send_modify(|n| *n += 1);
        Ok(Arc::new(SessionHome {
            path,
            live: self.live.clone(),
        }))
    }

    /// How many sessions' folders exist now.
    pub fn live(&self) -> usize {
        *self.live.borrow()
    }

    /// Wait until no session's folder exists.
    pub async fn all_removed(&self) {
        let mut live = self.live.subscribe();
        let _ = live.wait_for(|n| *n == 0).await;
    }
}

/// One session's folder; removed when the last holder drops it.
#[derive(Debug)]
pub struct SessionHome {
    path: PathBuf,
    live: Arc<watch::Sender<usize>>,
}

impl SessionHome {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SessionHome {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(folder = %self.path.display(), %error, "could not remove a session's folder");
        }
        self.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_goes_with_its_last_holder() {
        let root = std::env::temp_dir().join(format!("postern-homes-test-{}", std::process::id()));
        let homes = Homes::new(root.clone());
        let home = homes.create("demo-0123").expect("created");
        assert!(home.path().is_dir());
        assert_eq!(homes.live(), 1);
        std::fs::write(home.path().join(".bash_history"), "ls\n").expect("a file inside");
        let watcher = home.clone();
        drop(home);
        assert!(watcher.path().is_dir(), "still held by the watcher");
        let path = watcher.path().to_owned();
        drop(watcher);
        assert!(!path.exists());
        assert_eq!(homes.live(), 0);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn session_ids_stay_one_path_component() {
        let homes = Homes::new(PathBuf::from("/tmp/x"));
        assert_eq!(
            homes.path_for("../../etc/demo-1"),
            PathBuf::from("/tmp/x/postern-sandbox-.._.._etc_demo-1")
        );
    }
}
