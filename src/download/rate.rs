//! The download rate limit: one token bucket (`governor`, GCRA) shared by every peer of a
//! download, counted in KiB so any rate fits its 32-bit quota.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::manifest::BLOB_LEN;

const UNIT: u64 = 1024;

/// Bytes per second across a whole download. Each blob received is paid for before its peer's
/// next reply is read, so beyond one blob of burst only what socket buffers hold can run ahead
/// of the rate.
#[derive(Debug)]
pub(super) struct RateLimit {
    limiter: DefaultDirectRateLimiter,
}

impl RateLimit {
    /// A limit of `bytes_per_sec` (at least 1 KiB/s).
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            limiter: RateLimiter::direct(quota(bytes_per_sec)),
        }
    }

    /// Wait until one blob may be fetched.
    pub async fn blob(&self) {
        let n = NonZeroU32::new(blob_units()).unwrap_or(NonZeroU32::MIN);
        // The burst is exactly one blob, so `n` always fits (the error cannot happen).
        let _ = self.limiter.until_n_ready(n).await;
    }
}

/// `bytes_per_sec` in KiB per second, with a burst of one blob: no more than that arrives
/// ahead of the rate.
fn quota(bytes_per_sec: u64) -> Quota {
    let per_sec = u32::try_from(bytes_per_sec / UNIT).unwrap_or(u32::MAX);
    let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(blob_units()).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_sec).allow_burst(burst)
}

fn blob_units() -> u32 {
    (BLOB_LEN as u64).div_ceil(UNIT) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // The quota, not the wall clock: a timed assertion would fail on a loaded machine.
    #[test]
    fn quota_is_the_rate_in_kib_with_one_blob_of_burst() {
        let q = quota(4 << 20);
        assert_eq!(q.burst_size().get(), blob_units());
        assert_eq!(q.replenish_interval(), Duration::from_secs(1) / 4096);
        // So after the burst, one blob (1025 KiB) every 1025/4096 s: 4 MiB/s.
        let per_blob = q.replenish_interval() * blob_units();
        let want = f64::from(blob_units()) / 4096.0;
        assert!((per_blob.as_secs_f64() - want).abs() < 1e-6, "{per_blob:?}");
        // Tiny and huge rates stay valid quotas.
        assert_eq!(quota(10).replenish_interval(), Duration::from_secs(1));
        assert_eq!(quota(u64::MAX).burst_size().get(), blob_units());
    }

    #[tokio::test]
    async fn the_burst_is_one_blob() {
        let limit = RateLimit::new(1024);
        // The first blob passes at once; the second would wait about 17 minutes.
        limit.blob().await;
        let n = NonZeroU32::new(blob_units()).unwrap();
        assert!(limit.limiter.check_n(n).unwrap().is_err());
    }
}
