//! The one retry backoff of the pipeline: truncated exponential backoff with full jitter
//! (Google's client libraries' policy, from `google-cloud-gax`), so retrying writers and
//! reopening streams de-synchronise instead of hammering a recovering service together.

use google_cloud_gax::backoff_policy::BackoffPolicy;
use google_cloud_gax::exponential_backoff::{ExponentialBackoff, ExponentialBackoffBuilder};
use google_cloud_gax::retry_state::RetryState;
use std::time::Duration;

/// Delays between attempts: the n-th failure waits a random time up to
/// `min(initial × 2ⁿ⁻¹, maximum)`.
#[derive(Debug)]
pub struct Backoff {
    policy: ExponentialBackoff,
}

impl Backoff {
    pub fn new(initial: Duration, maximum: Duration) -> Self {
        Backoff {
            policy: ExponentialBackoffBuilder::new()
                .with_initial_delay(initial)
                .with_maximum_delay(maximum)
                .with_scaling(2.0)
                .clamp(),
        }
    }

    /// How long to wait after the `failures`-th failure in a row (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        self.policy
            .on_failure(&RetryState::new(true).set_attempt_count(failures.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_a_cap_that_doubles_up_to_the_maximum() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        for _ in 0..200 {
            assert!(b.delay(1) <= Duration::from_millis(100));
            assert!(b.delay(3) <= Duration::from_millis(400));
            assert!(b.delay(40) <= Duration::from_secs(10));
        }
        // Full jitter: late delays spread over the whole capped range, not just its top.
        let late: Vec<Duration> = (0..200).map(|_| b.delay(40)).collect();
        assert!(late.iter().any(|d| *d > Duration::from_secs(5)));
        assert!(late.iter().any(|d| *d < Duration::from_secs(5)));
    }
}
