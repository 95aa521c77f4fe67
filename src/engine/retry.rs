//! How long to wait before the next try.

use std::time::Duration;

use rand::Rng;

use crate::spec::model::{Backoff, RetryPolicy};

/// The wait before try `next_attempt` (2 for the first retry): `delay`, doubled per retry for
/// exponential backoff, capped at `max_delay`, then with jitter taken between half and all of it.
pub fn delay_before(policy: &RetryPolicy, next_attempt: u32) -> Duration {
    let base = policy.delay.0;
    let retries_so_far = next_attempt.saturating_sub(2);
    let mut delay = match policy.backoff {
        Backoff::Constant => base,
        Backoff::Exponential => base.saturating_mul(2u32.saturating_pow(retries_so_far.min(30))),
    };
    if let Some(max) = policy.max_delay {
        delay = delay.min(max.0);
    }
    if policy.jitter && !delay.is_zero() {
        let factor = rand::rng().random_range(0.5..=1.0);
        delay = delay.mul_f64(factor);
    }
    delay
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::duration::HumanDuration;

    #[test]
    fn doubles_and_caps() {
        let policy = RetryPolicy {
            attempts: 6,
            backoff: Backoff::Exponential,
            delay: HumanDuration(Duration::from_secs(2)),
            max_delay: Some(HumanDuration(Duration::from_secs(10))),
            jitter: false,
        };
        let waits: Vec<u64> = (2..=6)
            .map(|n| delay_before(&policy, n).as_secs())
            .collect();
        assert_eq!(waits, [2, 4, 8, 10, 10]);
        let jittered = RetryPolicy {
            jitter: true,
            ..policy
        };
        for _ in 0..100 {
            let d = delay_before(&jittered, 3);
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }
}
