//! The time the scheduler reads and waits on: the system clock in `segflow serve`, a clock a
//! test moves by hand so the scheduler loop is tested without waiting.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Returns once `now()` has reached `at`.
    async fn sleep_until(&self, at: DateTime<Utc>);
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// Timers run on the monotonic clock; waking at least this often notices a wall clock that was
/// stepped (NTP) or a machine that slept.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        loop {
            let left = at - Utc::now();
            if left <= Duration::zero() {
                return;
            }
            let left = left.to_std().unwrap_or(RECHECK).min(RECHECK);
            tokio::time::sleep(left).await;
        }
    }
}

/// A clock that only moves when told to.
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
    sleepers: Mutex<usize>,
    sleeps: AtomicUsize,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: watch::Sender::new(start),
            sleepers: Mutex::new(0),
            sleeps: AtomicUsize::new(0),
        }
    }

    pub fn set(&self, now: DateTime<Utc>) {
        self.now.send_replace(now);
    }

    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }

    /// How many tasks are waiting on the clock now.
    pub fn sleepers(&self) -> usize {
        *self.sleepers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many sleeps were ever begun: a test tells by it that a sleeper went round again.
    pub fn sleeps(&self) -> usize {
        self.sleeps.load(Ordering::SeqCst)
    }

    fn count(&self, change: isize) {
        let mut sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        *sleepers = sleepers.saturating_add_signed(change);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        let mut now = self.now.subscribe();
        self.sleeps.fetch_add(1, Ordering::SeqCst);
        self.count(1);
        // Counted down even when the sleep is dropped half-way (a `select!` took another arm).
        struct Awake<'a>(&'a ManualClock);
        impl Drop for Awake<'_> {
            fn drop(&mut self) {
                self.0.count(-1);
            }
        }
        let _awake = Awake(self);
        let _ = now.wait_for(|now| *now >= at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_moved_past_their_time() {
        let start = Utc::now();
        let clock = Arc::new(ManualClock::new(start));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(start + Duration::minutes(5)).await })
        };
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::minutes(4));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::minutes(1));
        sleeper.await.unwrap();
        assert_eq!(clock.sleepers(), 0);
        assert_eq!(clock.now(), start + Duration::minutes(5));
    }

    #[tokio::test]
    async fn the_system_clock_returns_at_once_for_a_past_time() {
        SystemClock
            .sleep_until(Utc::now() - Duration::seconds(1))
            .await;
    }
}
