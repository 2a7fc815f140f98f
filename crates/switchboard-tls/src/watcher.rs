use std::future::pending;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::error::TlsError;
use crate::reload::{ReloadOutcome, ReloadableAcceptor};

/// When a [`ReloadWatcher`] reloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadWatcherConfig {
    /// How often the files' modification time and length are checked; `None` (or zero)
    /// disables polling. Default: every 30 seconds.
    pub poll_interval: Option<Duration>,
    /// Reload on `SIGHUP` (Unix only; ignored elsewhere). Default: `true`.
    pub reload_on_sighup: bool,
}

impl Default for ReloadWatcherConfig {
    fn default() -> Self {
        Self {
            poll_interval: Some(Duration::from_secs(30)),
            reload_on_sighup: true,
        }
    }
}

impl ReloadWatcherConfig {
    /// Sets how often the files are checked for changes; `None` (or zero) disables polling.
    #[must_use]
    pub fn poll_interval(mut self, interval: Option<Duration>) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets whether `SIGHUP` triggers a reload.
    #[must_use]
    pub fn reload_on_sighup(mut self, enabled: bool) -> Self {
        self.reload_on_sighup = enabled;
        self
    }
}

/// What set off a reload attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadTrigger {
    /// The process received `SIGHUP`.
    Signal,
    /// A poll found a file changed.
    FileChange,
}

/// A reload attempt made by a [`ReloadWatcher`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReloadEvent {
    /// What set it off.
    pub trigger: ReloadTrigger,
    /// The new certificate, or why the previous one is still serving.
    pub result: Result<ReloadOutcome, Arc<TlsError>>,
}

/// A task reloading a [`ReloadableAcceptor`] on `SIGHUP` and when its files change. Dropping
/// the handle stops the task.
#[derive(Debug)]
pub struct ReloadWatcher {
    task: JoinHandle<()>,
    events: watch::Receiver<Option<ReloadEvent>>,
}

impl ReloadableAcceptor {
    /// Spawns a task on the current tokio runtime that reloads this acceptor on `SIGHUP` and
    /// whenever a poll finds the certificate, key or CA file changed. Reloads run on the
    /// blocking pool; a failed one is logged and leaves the previous certificate serving.
    ///
    /// Listening for `SIGHUP` replaces its default action (terminating the process) for the
    /// rest of the process's life.
    ///
    /// # Errors
    ///
    /// The error from registering the `SIGHUP` handler, for instance when the runtime was
    /// built without its I/O driver.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn_reload_watcher(&self, config: ReloadWatcherConfig) -> io::Result<ReloadWatcher> {
        let hangups = Hangups::new(config.reload_on_sighup)?;
        let (sender, events) = watch::channel(None);
        let task = tokio::spawn(watch_files(
            self.clone(),
            config.poll_interval,
            hangups,
            sender,
        ));
        Ok(ReloadWatcher { task, events })
    }
}

impl ReloadWatcher {
    /// Waits for the next reload attempt and returns it; `None` once the task has ended. Only
    /// attempts are reported: a poll that finds nothing changed is not. If several attempts
    /// happen between two calls, the latest is returned.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an attempt made while the future was pending is returned by the next call.
    pub async fn next_event(&mut self) -> Option<ReloadEvent> {
        self.events.changed().await.ok()?;
        self.events.borrow_and_update().clone()
    }

    /// Stops the watcher (as dropping it does).
    pub fn stop(self) {}
}

impl Drop for ReloadWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_files(
    acceptor: ReloadableAcceptor,
    poll_interval: Option<Duration>,
    mut hangups: Hangups,
    events: watch::Sender<Option<ReloadEvent>>,
) {
    let mut polls = poll_interval
        .filter(|period| !period.is_zero())
        .map(|period| {
            let mut polls = tokio::time::interval_at(Instant::now() + period, period);
            polls.set_missed_tick_behavior(MissedTickBehavior::Delay);
            polls
        });
    loop {
        let trigger = tokio::select! {
            () = next_poll(&mut polls) => ReloadTrigger::FileChange,
            () = hangups.recv() => ReloadTrigger::Signal,
        };
        let reloading = acceptor.clone();
        let attempt = tokio::task::spawn_blocking(move || match trigger {
            ReloadTrigger::Signal => reloading.reload().map(Some),
            ReloadTrigger::FileChange => reloading.reload_if_changed(),
        })
        .await;
        let result = match attempt {
            Ok(Ok(None)) => continue,
            Ok(Ok(Some(outcome))) => Ok(outcome),
            // Already logged by the acceptor.
            Ok(Err(error)) => Err(Arc::new(error)),
            Err(join_error) => {
                tracing::error!(error = %join_error, "TLS certificate reload task failed");
                continue;
            }
        };
        events.send_replace(Some(ReloadEvent { trigger, result }));
    }
}

async fn next_poll(polls: &mut Option<Interval>) {
    match polls {
        Some(polls) => {
            polls.tick().await;
        }
        None => pending().await,
    }
}

/// `SIGHUP`s, or nothing when disabled or not on Unix.
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    #[cfg(unix)]
    fn new(enabled: bool) -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let signal = enabled.then(|| signal(SignalKind::hangup())).transpose()?;
        Ok(Self { signal })
    }

    #[cfg(not(unix))]
    fn new(_enabled: bool) -> io::Result<Self> {
        Ok(Self {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
            // The signal driver is gone with the runtime: nothing will arrive again.
            self.signal = None;
        }
        pending().await
    }
}
