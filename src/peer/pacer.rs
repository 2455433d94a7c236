//! [`Pacer`]: holds the bytes a server sends to a rate, across all its connections.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Paces sends to `bytes_per_sec` on average: each send reserves its share of time after the
/// previous reservations and waits for its turn. Sends go out whole (a blob is never split),
/// so the first one of an idle pacer leaves at once.
#[derive(Debug)]
pub struct Pacer {
    bytes_per_sec: u64,
    next: Mutex<Instant>,
}

impl Pacer {
    /// A pacer of `bytes_per_sec` (at least 1).
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            bytes_per_sec: bytes_per_sec.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Wait until `bytes` may be sent.
    pub async fn acquire(&self, bytes: usize) {
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
        let start = {
            // A poisoned instant is still an instant.
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + cost;
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused clock: virtual time, not a timed assertion on a busy machine.
    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_across_callers() {
        let pacer = std::sync::Arc::new(Pacer::new(1000));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let p = pacer.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    p.acquire(100).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 2000 bytes at 1000 B/s: the last 100 leave at 1.9 s.
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(1900), "{took:?}");
        assert!(took < Duration::from_millis(2000), "{took:?}");
    }
}
