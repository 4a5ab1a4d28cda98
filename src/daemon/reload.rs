//! Hot reload of the rules: on a change in the rules directories (debounced) or on SIGHUP.
//!
//! The directories are watched, not the files: a Kubernetes ConfigMap volume updates by
//! swapping its `..data` symlink, which a watch on a file never sees. A new set is loaded and
//! compiled in full off the runtime (`spawn_blocking`), then swapped in with one
//! `ArcSwap::store`; each message holds the snapshot it started with, so none is evaluated
//! by two sets. A set with any error (or no rules) is rejected, logged with every diagnostic
//! and counted; the last good set stays in force.

use crate::rules::RuleSet;
use crate::telemetry::Metrics;
use crate::telemetry::events::{ReloadTrigger, RulesRejected, RulesReloaded};
use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Loads rule sets and swaps them into the shared handle.
#[derive(Debug, Clone)]
pub struct Reloader {
    paths: Vec<PathBuf>,
    rules: Arc<ArcSwap<RuleSet>>,
    metrics: Arc<Metrics>,
}

impl Reloader {
    pub fn new(paths: Vec<PathBuf>, rules: Arc<ArcSwap<RuleSet>>, metrics: Arc<Metrics>) -> Self {
        Reloader {
            paths,
            rules,
            metrics,
        }
    }

    /// Loads the rules again; swaps them in if they are valid. Returns whether it did.
    pub async fn reload(&self, trigger: ReloadTrigger) -> bool {
        let paths = self.paths.clone();
        let loaded = tokio::task::spawn_blocking(move || RuleSet::load(&paths)).await;
        match loaded {
            Ok(Ok(rule_set)) => {
                let n_rules = rule_set.len();
                self.rules.store(Arc::new(rule_set));
                RulesReloaded { n_rules, trigger }.emit(&self.metrics);
                true
            }
            Ok(Err(error)) => {
                RulesRejected {
                    error: &error,
                    trigger,
                }
                .emit(&self.metrics);
                false
            }
            Err(error) => {
                tracing::error!(error = %error, "Rule loading task failed; the previous rules stay in force.");
                false
            }
        }
    }
}

/// The directories to watch for `paths`: a directory itself, a file's parent.
fn watched_directories(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut directories: Vec<PathBuf> = paths
        .iter()
        .map(|path| {
            if path.is_dir() {
                path.clone()
            } else {
                path.parent()
                    .filter(|parent| !parent.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_owned()
            }
        })
        .collect();
    directories.sort();
    directories.dedup();
    directories
}

/// Whether a file-system event may change what a load reads (not our own reads).
fn is_change(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Reloads on SIGHUP and, with `watch`, on changes in the rules directories, until
/// `shutdown` fires. A watcher that cannot start is logged; SIGHUP still works.
pub async fn run(reloader: Reloader, watch: bool, debounce: Duration, shutdown: CancellationToken) {
    // Capacity 1: one pending "something changed" is all the debounce needs to know.
    let (changes_tx, mut changes) = mpsc::channel::<()>(1);
    let _watcher = if watch {
        start_watcher(&reloader.paths, changes_tx)
    } else {
        None
    };
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(error) => {
            tracing::warn!(error = %error, "Cannot listen for SIGHUP; reload on signal is off.");
            None
        }
    };
    loop {
        let trigger = tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(()) = changes.recv() => {
                // Debounce: wait until the directory has been quiet for `debounce`.
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(debounce) => break,
                        Some(()) = changes.recv() => {}
                    }
                }
                ReloadTrigger::Watch
            }
            Some(()) = recv_hangup(&mut hangups) => ReloadTrigger::Sighup,
        };
        reloader.reload(trigger).await;
    }
}

async fn recv_hangup(hangups: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangups {
        Some(hangups) => hangups.recv().await,
        None => std::future::pending().await,
    }
}

fn start_watcher(
    paths: &[PathBuf],
    changes: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    let handler = move |result: notify::Result<notify::Event>| match result {
        Ok(event) if is_change(&event.kind) => {
            // Full means a change is already pending: this one is covered by it.
            let _ = changes.try_send(());
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(error = %error, "Rules watcher error."),
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(error = %error, "Cannot watch the rules; reload with SIGHUP.");
            return None;
        }
    };
    for directory in watched_directories(paths) {
        match watcher.watch(&directory, RecursiveMode::NonRecursive) {
            Ok(()) => tracing::info!(directory = %directory.display(), "Watching rules directory."),
            Err(error) => tracing::warn!(
                directory = %directory.display(),
                error = %error,
                "Cannot watch rules directory; reload with SIGHUP."
            ),
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::pipeline::tests::FAILING_RULE;

    #[tokio::test]
    async fn invalid_set_is_rejected_and_the_old_one_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("rules.toml");
        std::fs::write(&file, FAILING_RULE).expect("write");
        let initial = RuleSet::load(&[&file]).expect("valid");
        let rules = Arc::new(ArcSwap::from_pointee(initial));
        let metrics = Arc::new(Metrics::default());
        let reloader = Reloader::new(
            vec![dir.path().to_owned()],
            Arc::clone(&rules),
            Arc::clone(&metrics),
        );

        std::fs::write(&file, "[[rule]]\nid = \"broken\"\n").expect("write");
        assert!(!reloader.reload(ReloadTrigger::Sighup).await);
        assert_eq!(rules.load().rules()[0].id.as_ref(), "call-failed");

        // An emptied directory, or one left with lists alone, is no rule set either.
        std::fs::remove_file(&file).expect("remove");
        assert!(!reloader.reload(ReloadTrigger::Sighup).await);
        std::fs::write(dir.path().join("lists.toml"), "[lists]\nl = [\"a\"]\n").expect("write");
        assert!(!reloader.reload(ReloadTrigger::Sighup).await);
        assert_eq!(rules.load().rules()[0].id.as_ref(), "call-failed");

        std::fs::write(&file, FAILING_RULE.replace("call-failed", "renamed")).expect("write");
        assert!(reloader.reload(ReloadTrigger::Sighup).await);
        assert_eq!(rules.load().rules()[0].id.as_ref(), "renamed");
        let text = metrics.encode();
        assert!(
            text.contains("meterwatch_rules_reload_total{result=\"failed\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("meterwatch_rules_reload_total{result=\"ok\"} 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn directory_change_reloads_after_debounce() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("rules.toml");
        std::fs::write(&file, FAILING_RULE).expect("write");
        let rules = Arc::new(ArcSwap::from_pointee(
            RuleSet::load(&[&file]).expect("valid"),
        ));
        let metrics = Arc::new(Metrics::default());
        let reloader = Reloader::new(vec![dir.path().to_owned()], Arc::clone(&rules), metrics);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            reloader,
            true,
            Duration::from_millis(50),
            shutdown.clone(),
        ));
        // Give the watcher time to register before changing the directory.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut n = 0;
        while rules.load().rules()[0].id.as_ref() != "edited" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no reload within 10 s"
            );
            n += 1;
            std::fs::write(&file, FAILING_RULE.replace("call-failed", "edited")).expect("write");
            tokio::time::sleep(Duration::from_millis(100 * n.min(5))).await;
        }
        shutdown.cancel();
        task.await.expect("joins");
    }

    #[test]
    fn watches_directories_and_files_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "").expect("write");
        let watched = watched_directories(&[dir.path().to_owned(), file]);
        assert_eq!(watched, vec![dir.path().to_owned()]);
    }
}
