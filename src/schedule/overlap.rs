//! What to do with a fire time while the pipeline's previous run still runs (`overlap`), and
//! the fire times waiting for their turn.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::spec::model::Overlap;

/// What became of a fire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireDecision {
    /// Start its run now.
    Start,
    /// It waits until the running run ends.
    Queued,
    /// Dropped, for this reason.
    Skipped(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiting {
    at: DateTime<Utc>,
    /// A missed fire time being caught up (rather than one that came while a run ran).
    catch_up: bool,
}

/// The fire times of one pipeline that wait to start: missed ones being caught up (oldest
/// first), then at most one queued by `overlap: queue`.
#[derive(Debug, Clone)]
pub struct FireQueue {
    overlap: Overlap,
    waiting: VecDeque<Waiting>,
}

impl FireQueue {
    pub fn new(overlap: Overlap) -> Self {
        FireQueue {
            overlap,
            waiting: VecDeque::new(),
        }
    }

    /// A reload changed the policy; fire times already waiting keep waiting.
    pub fn set_overlap(&mut self, overlap: Overlap) {
        self.overlap = overlap;
    }

    /// A fire time came; `running` tells whether a run of the pipeline is going on.
    pub fn on_fire(&mut self, at: DateTime<Utc>, running: bool) -> FireDecision {
        let busy = running || !self.waiting.is_empty();
        match self.overlap {
            Overlap::Allow => FireDecision::Start,
            _ if !busy => FireDecision::Start,
            Overlap::Skip if running => {
                FireDecision::Skipped("the previous run is still running (overlap: skip)")
            }
            Overlap::Skip => {
                FireDecision::Skipped("missed fire times are still being caught up (overlap: skip)")
            }
            Overlap::Queue if self.waiting.iter().any(|w| !w.catch_up) => {
                FireDecision::Skipped("another fire time is already queued (overlap: queue)")
            }
            Overlap::Queue => {
                self.waiting.push_back(Waiting {
                    at,
                    catch_up: false,
                });
                FireDecision::Queued
            }
        }
    }

    /// Missed fire times to run, oldest first: one after another, or all at once with
    /// `overlap: allow`.
    pub fn catch_up(&mut self, fires: impl IntoIterator<Item = DateTime<Utc>>) {
        self.waiting
            .extend(fires.into_iter().map(|at| Waiting { at, catch_up: true }));
    }

    /// The waiting fire times whose turn has come.
    pub fn take_ready(&mut self, running: bool) -> Vec<DateTime<Utc>> {
        match self.overlap {
            Overlap::Allow => self.waiting.drain(..).map(|w| w.at).collect(),
            _ if running => Vec::new(),
            _ => self.waiting.pop_front().map(|w| w.at).into_iter().collect(),
        }
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap() + Duration::minutes(minute)
    }

    #[test]
    fn skip_drops_a_fire_time_while_a_run_runs() {
        let mut queue = FireQueue::new(Overlap::Skip);
        assert_eq!(queue.on_fire(t(0), false), FireDecision::Start);
        assert!(matches!(
            queue.on_fire(t(1), true),
            FireDecision::Skipped(_)
        ));
        assert!(queue.take_ready(false).is_empty());
        assert_eq!(queue.on_fire(t(2), false), FireDecision::Start);
    }

    #[test]
    fn queue_keeps_one_fire_time_for_when_the_run_ends() {
        let mut queue = FireQueue::new(Overlap::Queue);
        assert_eq!(queue.on_fire(t(0), false), FireDecision::Start);
        assert_eq!(queue.on_fire(t(1), true), FireDecision::Queued);
        assert!(matches!(
            queue.on_fire(t(2), true),
            FireDecision::Skipped(_)
        ));
        assert!(queue.take_ready(true).is_empty(), "still running");
        assert_eq!(queue.take_ready(false), [t(1)]);
        assert_eq!(queue.waiting(), 0);
        assert_eq!(queue.on_fire(t(3), true), FireDecision::Queued);
    }

    #[test]
    fn allow_starts_every_fire_time_at_once() {
        let mut queue = FireQueue::new(Overlap::Allow);
        assert_eq!(queue.on_fire(t(0), false), FireDecision::Start);
        assert_eq!(queue.on_fire(t(1), true), FireDecision::Start);
        queue.catch_up([t(-2), t(-1)]);
        assert_eq!(queue.take_ready(true), [t(-2), t(-1)]);
    }

    #[test]
    fn caught_up_fire_times_run_one_after_another() {
        let mut queue = FireQueue::new(Overlap::Skip);
        queue.catch_up([t(-3), t(-2), t(-1)]);
        assert_eq!(queue.take_ready(false), [t(-3)]);
        assert!(queue.take_ready(true).is_empty());
        // A live fire time while catching up is dropped under skip...
        assert!(matches!(
            queue.on_fire(t(0), true),
            FireDecision::Skipped(_)
        ));
        assert_eq!(queue.take_ready(false), [t(-2)]);
        assert_eq!(queue.take_ready(false), [t(-1)]);
        assert!(queue.take_ready(false).is_empty());

        // ...and waits behind them under queue.
        let mut queue = FireQueue::new(Overlap::Queue);
        queue.catch_up([t(-2), t(-1)]);
        assert_eq!(queue.on_fire(t(0), false), FireDecision::Queued);
        assert_eq!(queue.take_ready(false), [t(-2)]);
        assert_eq!(queue.take_ready(false), [t(-1)]);
        assert_eq!(queue.take_ready(false), [t(0)]);
    }
}
