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
        let per_sec = u32::try_from(bytes_per_sec / UNIT).unwrap_or(u32::MAX);
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        // The burst is one blob: no more than that arrives ahead of the rate.
        let burst = NonZeroU32::new(blob_units()).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst)),
        }
    }

    /// Wait until one blob may be fetched.
    pub async fn blob(&self) {
        let n = NonZeroU32::new(blob_units()).unwrap_or(NonZeroU32::MIN);
        // The burst is exactly one blob, so `n` always fits (the error cannot happen).
        let _ = self.limiter.until_n_ready(n).await;
    }
}

fn blob_units() -> u32 {
    (BLOB_LEN as u64).div_ceil(UNIT) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paces_blobs_at_the_rate() {
        let limit = RateLimit::new(8 * BLOB_LEN as u64);
        let start = std::time::Instant::now();
        for _ in 0..5 {
            limit.blob().await;
        }
        // One blob of burst, then 4 at 8 per second.
        let secs = start.elapsed().as_secs_f64();
        assert!((0.45..0.75).contains(&secs), "{secs}");
    }
}
