//! Live counters shared by the connections, and the indicatif progress bar that shows them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters updated as requests go out and come back.
#[derive(Debug, Default)]
pub struct Live {
    pub scheduled: AtomicU64,
    pub completed: AtomicU64,
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    pub dropped: AtomicU64,
    pub late: AtomicU64,
}

impl Live {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Whether to draw progress bars (on stderr, and only when it is a terminal).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub enabled: bool,
}

impl Progress {
    pub const HIDDEN: Self = Self { enabled: false };

    /// Shows a bar for `total` scheduled requests until the guard is dropped.
    pub fn show(&self, label: &str, total: u64, live: Arc<Live>) -> ProgressGuard {
        let target = if self.enabled { ProgressDrawTarget::stderr_with_hz(4) } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix:.bold} {elapsed:>4} [{bar:28}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_owned());
        let ticker_bar = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            loop {
                interval.tick().await;
                ticker_bar.set_position(Live::get(&live.scheduled));
                ticker_bar.set_message(format!(
                    "ok {} err {} dropped {} late {}",
                    Live::get(&live.ok),
                    Live::get(&live.errors),
                    Live::get(&live.dropped),
                    Live::get(&live.late)
                ));
            }
        });
        ProgressGuard { bar, ticker }
    }
}

/// Clears the bar when dropped.
#[derive(Debug)]
pub struct ProgressGuard {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
