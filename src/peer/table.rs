//! The table that ANNOUNCE fills and FIND_PEERS reads: bounded in size, entries expire.
//!
//! It takes the current time as an argument (no clock inside), so tests drive it directly.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::id::BlobId;

/// Announced `host:port` addresses per blob, bounded and expiring.
#[derive(Debug)]
pub struct PeerTable {
    entries: HashMap<BlobId, Vec<(String, Instant)>>,
    total: usize,
    max_total: usize,
    max_per_blob: usize,
    ttl: Duration,
}

impl PeerTable {
    /// A table of at most `max_total` addresses, `max_per_blob` per blob, each kept for `ttl`.
    pub fn new(max_total: usize, max_per_blob: usize, ttl: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            total: 0,
            max_total,
            max_per_blob: max_per_blob.max(1),
            ttl,
        }
    }

    /// Number of addresses held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.total
    }

    /// True when no address is held.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn sweep(&mut self, now: Instant) {
        let ttl = self.ttl;
        let mut total = 0;
        self.entries.retain(|_, list| {
            list.retain(|(_, t)| now.saturating_duration_since(*t) < ttl);
            total += list.len();
            !list.is_empty()
        });
        self.total = total;
    }

    /// Record that `addr` holds `id`. Refreshes a known entry; when the blob's list is full the
    /// oldest entry makes room; when the table is full (after dropping expired entries) the
    /// announce is ignored and `false` returned.
    pub fn insert(&mut self, id: BlobId, addr: &str, now: Instant) -> bool {
        if let Some(list) = self.entries.get_mut(&id) {
            if let Some(e) = list.iter_mut().find(|(a, _)| a == addr) {
                e.1 = now;
                return true;
            }
            if list.len() >= self.max_per_blob {
                if let Some(oldest) = list.iter_mut().min_by_key(|(_, t)| *t) {
                    *oldest = (addr.to_owned(), now);
                }
                return true;
            }
        }
        if self.total >= self.max_total {
            self.sweep(now);
            if self.total >= self.max_total {
                return false;
            }
        }
        self.entries
            .entry(id)
            .or_default()
            .push((addr.to_owned(), now));
        self.total += 1;
        true
    }

    /// Up to `max` fresh addresses for `id`, most recent first.
    pub fn lookup(&self, id: &BlobId, now: Instant, max: usize) -> Vec<String> {
        let Some(list) = self.entries.get(id) else {
            return Vec::new();
        };
        let mut fresh: Vec<&(String, Instant)> = list
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(*t) < self.ttl)
            .collect();
        fresh.sort_by_key(|e| std::cmp::Reverse(e.1));
        fresh
            .into_iter()
            .take(max)
            .map(|(a, _)| a.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_expiring_and_refreshing() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = PeerTable::new(3, 2, s(10));
        let a = BlobId::of(b"a");
        let b = BlobId::of(b"b");
        assert!(t.insert(a, "h1:1", t0));
        assert!(t.insert(a, "h2:1", t0 + s(1)));
        // Per-blob limit: the oldest (h1) makes room.
        assert!(t.insert(a, "h3:1", t0 + s(2)));
        assert_eq!(t.lookup(&a, t0 + s(2), 10), vec!["h3:1", "h2:1"]);
        assert!(t.insert(b, "h4:1", t0 + s(3)));
        assert_eq!(t.len(), 3);
        // Table full and nothing expired: refused.
        assert!(!t.insert(BlobId::of(b"c"), "h5:1", t0 + s(4)));
        // Refresh keeps h2 alive past its first expiry.
        assert!(t.insert(a, "h2:1", t0 + s(9)));
        assert_eq!(t.lookup(&a, t0 + s(12), 10), vec!["h2:1"]);
        assert_eq!(t.lookup(&a, t0 + s(12), 0), Vec::<String>::new());
        // Once entries expire, a full table accepts again after a sweep.
        assert!(t.insert(BlobId::of(b"c"), "h5:1", t0 + s(14)));
        assert_eq!(t.len(), 2);
        assert!(t.lookup(&b, t0 + s(14), 10).is_empty());
    }
}
