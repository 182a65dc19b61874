//! The sandbox inside the app: `postern-sandbox`, shipped beside the app's binary, started as a
//! child with `serve --json --exit-with-stdin --no-admin`. It says where it answers on its
//! first line, runs with its admin API off, and exits when the app's end of its stdin closes
//! (when the app quits, or crashes: the OS closes the pipe). Its demo keys stay in memory and
//! its state in a folder of its own, removed when sandbox mode ends.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use postern_core::sandbox_mode::{SandboxDemo, SandboxStart};

/// How long the sandbox may take to print its start line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The binary is not beside the app.
    #[error(
        "the sandbox program is not installed beside Postern (looked for {0}); reinstall Postern, or build it with `cargo build -p postern-sandbox`"
    )]
    Missing(String),
    /// It could not be started.
    #[error("the sandbox could not be started: {0}")]
    Spawn(std::io::Error),
    /// It stopped, or said nothing, before it was ready.
    #[error("the sandbox stopped while starting (its log, {log}, says why)")]
    Stopped {
        /// Its log.
        log: String,
    },
    /// It did not say it was ready in time.
    #[error("the sandbox did not start within {} s (its log, {log}, may say why)", START_TIMEOUT.as_secs())]
    Slow {
        /// Its log.
        log: String,
    },
    /// Its start line was not usable.
    #[error(transparent)]
    Mode(#[from] postern_core::sandbox_mode::SandboxError),
    /// Its folder could not be made.
    #[error("cannot make sandbox mode's folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A running sandbox; dropping it closes its stdin (it exits) and removes its folder.
pub struct Sandbox {
    child: Child,
    start: SandboxStart,
    folder: PathBuf,
    /// Held while the app lives: a folder whose lock can be taken is abandoned.
    _alive: std::fs::File,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("endpoint", &self.start.endpoint)
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

/// Where the sandbox program is: beside this program.
pub fn program() -> Result<PathBuf, StartError> {
    let name = format!("postern-sandbox{}", std::env::consts::EXE_SUFFIX);
    let path = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .unwrap_or_else(|| PathBuf::from(&name));
    if path.is_file() {
        Ok(path)
    } else {
        Err(StartError::Missing(path.display().to_string()))
    }
}

impl Sandbox {
    /// Start the sandbox, with sandbox mode's state under a new folder in `parent`; blocks until
    /// it is ready (call it off the async runtime's threads).
    pub fn start(parent: &Path) -> Result<Self, StartError> {
        let program = program()?;
        remove_abandoned_folders(parent);
        let folder = private_folder(parent)?;
        let alive = hold_lock(&folder.join(LOCK)).map_err(|source| StartError::Folder {
            path: folder.display().to_string(),
            source,
        })?;
        let log_path = folder.join("sandbox.log");
        let log = std::fs::File::create_new(&log_path).map_err(|source| StartError::Folder {
            path: log_path.display().to_string(),
            source,
        })?;
        let mut child = Command::new(program)
            .args(["serve", "--json", "--exit-with-stdin", "--no-admin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(StartError::Spawn)?;
        let log = log_path.display().to_string();
        let Some(stdout) = child.stdout.take() else {
            return Err(StartError::Stopped { log });
        };
        // Read the start line on a thread, so a sandbox that hangs cannot hang the app.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            Ok(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartError::Stopped { log });
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartError::Slow { log });
            }
        };
        let start = match SandboxStart::parse(&line) {
            Ok(start) => start,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error.into());
            }
        };
        Ok(Self {
            child,
            start,
            folder,
            _alive: alive,
        })
    }

    /// What it printed when it was ready.
    pub fn start_line(&self) -> &SandboxStart {
        &self.start
    }

    /// Its demo identity.
    pub fn demo(&self) -> Option<&SandboxDemo> {
        self.start.demo.as_ref()
    }

    /// Sandbox mode's state folder (Postern's, inside the sandbox's folder).
    pub fn state_folder(&self) -> PathBuf {
        self.folder.join("state")
    }
}

/// The lock file a running app holds in its sandbox folder.
const LOCK: &str = "app.lock";

/// Create `path` and hold an exclusive lock on it (released when the file is dropped, or the
/// process ends however it ends).
fn hold_lock(path: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::File::create_new(path)?;
    file.try_lock().map_err(std::io::Error::other)?;
    Ok(file)
}

/// Whether the app that made `folder` is gone: nobody holds its lock (a lock works across PID
/// namespaces, where another app's process id means nothing here). A folder without one (made
/// before there were locks) is gone when its process id runs no process.
#[cfg(target_os = "linux")]
fn abandoned(folder: &Path, pid: u32) -> bool {
    match std::fs::File::open(folder.join(LOCK)) {
        Ok(file) => file.try_lock().is_ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        }
        Err(_) => false,
    }
}

/// Remove the folders of sandbox modes whose app is gone without cleaning up (killed, crashed):
/// ours by name and owner, whose app no longer holds its lock. Linux only; elsewhere they stay
/// until the OS clears its temporary folder.
fn remove_abandoned_folders(parent: &Path) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(entries) = std::fs::read_dir(parent) else {
            return;
        };
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name
                .to_str()
                .and_then(|n| n.strip_prefix("postern-sandbox-mode-"))
            else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let path = entry.path();
            // A real folder (never a link) of this user, whose process is gone.
            let ours =
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && Some(m.uid()) == me);
            if ours && abandoned(&path, pid) {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
}

/// A new folder in `parent` that only this user can enter. Its name is not guessable and it
/// must not exist yet (in a shared temporary folder, a folder or link someone else planted under
/// an expected name is never used).
fn private_folder(parent: &Path) -> Result<PathBuf, StartError> {
    let mut last = None;
    for _ in 0..8 {
        let folder = parent.join(format!(
            "postern-sandbox-mode-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&folder) {
            Ok(()) => return Ok(folder),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(source) => {
                return Err(StartError::Folder {
                    path: folder.display().to_string(),
                    source,
                });
            }
        }
    }
    Err(StartError::Folder {
        path: parent.display().to_string(),
        source: last.unwrap_or_else(|| std::io::Error::other("no free name")),
    })
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Closing its stdin is how it is told to stop.
        drop(self.child.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

#[cfg(test)]
mod tests {
    use super::private_folder;

    #[test]
    fn sandbox_mode_s_folder_is_new_and_private() {
        let parent =
            std::env::temp_dir().join(format!("postern-private-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&parent).expect("parent");
        let first = private_folder(&parent).expect("a folder");
        let second = private_folder(&parent).expect("another");
        assert_ne!(first, second, "never the same folder twice");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&first)
                .expect("made")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "only its user may enter");
        }
        let _ = std::fs::remove_dir_all(parent);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn folders_of_apps_that_are_gone_are_removed_and_no_other() {
        let parent =
            std::env::temp_dir().join(format!("postern-abandoned-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&parent).expect("parent");
        let gone = parent.join(format!("postern-sandbox-mode-{}-1", u32::MAX));
        let mine = parent.join(format!("postern-sandbox-mode-{}-2", std::process::id()));
        let file = parent.join(format!("postern-sandbox-mode-{}-3", u32::MAX - 1));
        let other = parent.join("something-else");
        let held = parent.join(format!("postern-sandbox-mode-{}-4", u32::MAX));
        let released = parent.join(format!("postern-sandbox-mode-{}-5", std::process::id()));
        for dir in [&gone, &mine, &other, &held, &released] {
            std::fs::create_dir_all(dir.join("state")).expect("folder");
        }
        // Another namespace's live app: its process id means nothing here, its lock does.
        let _alive = super::hold_lock(&held.join(super::LOCK)).expect("lock");
        drop(super::hold_lock(&released.join(super::LOCK)).expect("lock"));
        std::fs::write(&file, "not a folder").expect("file");
        super::remove_abandoned_folders(&parent);
        assert!(!gone.exists(), "its process is gone");
        assert!(!released.exists(), "nobody holds its lock");
        assert!(mine.exists() && other.exists() && file.exists() && held.exists());
        let _ = std::fs::remove_dir_all(parent);
    }
}
