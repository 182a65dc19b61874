//! What every request handler and agent task shares: the world, the running agents, the
//! sessions' folders, and whether the sandbox is stopping. A leaf: it knows the world and the
//! agents' types, nothing of HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::world::World;

/// What every request handler and agent shares.
pub struct Shared {
    world: Mutex<World>,
    agents: Mutex<HashMap<String, tokio::sync::mpsc::Sender<crate::agent::Attachment>>>,
    homes: crate::agent::home::Homes,
    stopping: tokio::sync::watch::Sender<bool>,
    admin: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Wrap a world for serving; sessions' folders go under the system's temporary directory.
    pub fn new(world: World) -> Arc<Self> {
        Self::with_homes(world, std::env::temp_dir())
    }

    /// Wrap a world for serving; sessions' folders go under `homes`.
    pub fn with_homes(world: World, homes: std::path::PathBuf) -> Arc<Self> {
        Arc::new(Self {
            world: Mutex::new(world),
            agents: Mutex::new(HashMap::new()),
            homes: crate::agent::home::Homes::new(homes),
            stopping: tokio::sync::watch::Sender::new(false),
            admin: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Whether the admin API under `/_sandbox/` is served.
    pub fn admin(&self) -> bool {
        self.admin.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Serve the admin API or not.
    pub fn set_admin(&self, on: bool) {
        self.admin.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The sessions' folders.
    pub fn homes(&self) -> &crate::agent::home::Homes {
        &self.homes
    }

    /// Tell every agent task to end its session now (the sandbox is stopping).
    pub fn stop_agents(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether the sandbox is stopping, to watch.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The running agent tasks, by session id.
    pub fn agents(
        &self,
    ) -> MutexGuard<'_, HashMap<String, tokio::sync::mpsc::Sender<crate::agent::Attachment>>> {
        self.agents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The world, locked. Handlers hold the lock only while they compute an answer.
    pub fn world(&self) -> MutexGuard<'_, World> {
        // Every mutation of the world completes before the lock is released or fails without
        // side effects, so a poisoned lock still guards a consistent world.
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
