//! The suppression list: `userId`s and `anonymousId`s whose events the edge drops (an erasure
//! or opt-out request), read from a file and reloaded when it changes or on SIGHUP.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use clickstream_schema::Event;

/// The identities one file names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SuppressedIds {
    pub user_ids: HashSet<String>,
    pub anonymous_ids: HashSet<String>,
}

impl SuppressedIds {
    /// One identity per line: `userId:ID`, `anonymousId:ID`, or a bare `ID` for either.
    /// Blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Self {
        let mut ids = Self::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let Some(id) = line.strip_prefix("userId:") {
                ids.user_ids.insert(id.trim().to_owned());
            } else if let Some(id) = line.strip_prefix("anonymousId:") {
                ids.anonymous_ids.insert(id.trim().to_owned());
            } else {
                ids.user_ids.insert(line.to_owned());
                ids.anonymous_ids.insert(line.to_owned());
            }
        }
        ids
    }

    pub fn len(&self) -> usize {
        self.user_ids.len() + self.anonymous_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user_ids.is_empty() && self.anonymous_ids.is_empty()
    }
}

/// The live list. With no file, or an empty one, a check is one atomic load.
#[derive(Debug, Default)]
pub struct Suppression {
    path: Option<PathBuf>,
    active: AtomicBool,
    ids: RwLock<Arc<SuppressedIds>>,
    loaded_mtime: RwLock<Option<SystemTime>>,
}

impl Suppression {
    /// Loads `path` (empty: no suppression). An unreadable file is logged and treated as
    /// empty until a reload succeeds, so a typo cannot stop ingestion.
    pub fn open(path: &str) -> Self {
        let suppression = Self { path: (!path.is_empty()).then(|| PathBuf::from(path)), ..Self::default() };
        suppression.reload();
        suppression
    }

    /// Whether the event names a suppressed identity.
    pub fn is_suppressed(&self, event: &Event) -> bool {
        self.names(event.user_id.as_deref(), event.anonymous_id.as_deref())
    }

    /// Whether a `userId` or `anonymousId` (as text) is suppressed.
    pub fn names(&self, user_id: Option<&str>, anonymous_id: Option<&str>) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        let ids = self.ids.read().unwrap_or_else(|p| p.into_inner()).clone();
        user_id.is_some_and(|id| ids.user_ids.contains(id))
            || anonymous_id.is_some_and(|id| ids.anonymous_ids.contains(id))
    }

    /// How many identities are suppressed now.
    pub fn len(&self) -> usize {
        self.ids.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the file again; true when it was read.
    pub fn reload(&self) -> bool {
        let Some(path) = &self.path else { return false };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let ids = SuppressedIds::parse(&text);
                tracing::info!(path = %path.display(), identities = ids.len(), "suppression list loaded");
                self.active.store(!ids.is_empty(), Ordering::Relaxed);
                *self.ids.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ids);
                *self.loaded_mtime.write().unwrap_or_else(|p| p.into_inner()) = mtime;
                true
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "cannot read the suppression list; keeping the previous one");
                false
            }
        }
    }

    fn changed_on_disk(&self) -> bool {
        let Some(path) = &self.path else { return false };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        mtime.is_some() && mtime != *self.loaded_mtime.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Reloads when the file's modification time changes (checked every `every`) or on
    /// SIGHUP; ends when the list is dropped.
    pub async fn watch(list: Weak<Self>, every: Duration) {
        if list.upgrade().is_none_or(|l| l.path.is_none()) {
            return;
        }
        let mut hangup = hangup_signal();
        loop {
            let by_signal = tokio::select! {
                () = tokio::time::sleep(every) => false,
                () = next_hangup(&mut hangup) => true,
            };
            let Some(list) = list.upgrade() else { return };
            if by_signal || list.changed_on_disk() {
                list.reload();
            }
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    match hangup {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: Option<&str>, anonymous: Option<&str>) -> Event {
        let mut value = serde_json::json!({"type": "track", "event": "E"});
        if let Some(u) = user {
            value["userId"] = u.into();
        }
        if let Some(a) = anonymous {
            value["anonymousId"] = a.into();
        }
        serde_json::from_value(value).expect("event")
    }

    #[test]
    fn parses_prefixed_and_bare_ids() {
        let ids = SuppressedIds::parse("# erasure 2026-11\nuserId:u1\nanonymousId: a1 \n\nboth\n");
        assert!(ids.user_ids.contains("u1") && !ids.anonymous_ids.contains("u1"));
        assert!(ids.anonymous_ids.contains("a1") && !ids.user_ids.contains("a1"));
        assert!(ids.user_ids.contains("both") && ids.anonymous_ids.contains("both"));
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn matches_either_identity_and_reloads() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("suppressed.txt");
        std::fs::write(&path, "userId:u1\n").expect("write");
        let list = Suppression::open(&path.display().to_string());
        assert!(list.is_suppressed(&event(Some("u1"), Some("anything"))));
        assert!(!list.is_suppressed(&event(None, Some("u1"))), "a userId entry does not match anonymousId");
        assert!(!list.is_suppressed(&event(Some("u2"), Some("a2"))));
        std::fs::write(&path, "anonymousId:a2\n").expect("rewrite");
        assert!(list.reload());
        assert!(list.is_suppressed(&event(Some("u2"), Some("a2"))));
        assert!(!list.is_suppressed(&event(Some("u1"), None)), "the reload replaced the list");
    }

    async fn wait_until(list: &Suppression, event: &Event, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !list.is_suppressed(event) {
            assert!(tokio::time::Instant::now() < deadline, "{what} did not reload the list within 5 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn watch_reloads_on_a_changed_file_and_on_sighup() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("suppressed.txt");
        std::fs::write(&path, "userId:u1\n").expect("write");
        let polled = Arc::new(Suppression::open(&path.display().to_string()));
        let signalled = Arc::new(Suppression::open(&path.display().to_string()));
        tokio::spawn(Suppression::watch(Arc::downgrade(&polled), Duration::from_millis(20)));
        // Polling once an hour: only the signal can make this one reload.
        tokio::spawn(Suppression::watch(Arc::downgrade(&signalled), Duration::from_secs(3600)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(&path, "userId:u1\nanonymousId:a9\n").expect("rewrite");
        let newcomer = event(None, Some("a9"));
        wait_until(&polled, &newcomer, "a modification time change").await;
        assert!(!signalled.is_suppressed(&newcomer), "reloaded without a signal");
        let status = std::process::Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
        wait_until(&signalled, &newcomer, "SIGHUP").await;
    }

    #[test]
    fn no_file_suppresses_nothing() {
        let list = Suppression::open("");
        assert!(!list.is_suppressed(&event(Some("u1"), None)));
        assert!(list.is_empty());
    }
}
