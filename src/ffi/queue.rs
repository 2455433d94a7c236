//! The engine's event queue: how finished asynchronous work reaches the Qt thread.
//!
//! Modelled on libtorrent's alert queue as qBittorrent uses it (`set_alert_notify`): a worker
//! pushes an event; if the queue was empty it calls the registered waker exactly once; the waker
//! (the Qt shim) only posts a queued call, and the owning thread later drains everything that is
//! pending. The consumer is never blocked and nothing polls.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Something that can be told, from any thread, that events are waiting.
pub(crate) trait Wake: Send + Sync {
    /// Must not block and must not call back into the queue.
    fn wake(&self);
}

/// A multi-producer queue drained by one consumer, waking it on the empty -> non-empty edge.
pub(crate) struct EventQueue<E, W> {
    events: Mutex<VecDeque<E>>,
    waker: Mutex<Option<W>>,
}

/// A poisoned lock only means another thread panicked while holding it; the data (a queue or an
/// optional waker) is always in a consistent state, so keep going.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<E, W: Wake> EventQueue<E, W> {
    /// A queue that wakes `waker` (if any).
    pub(crate) fn new(waker: Option<W>) -> Self {
        Self {
            events: Mutex::new(VecDeque::new()),
            waker: Mutex::new(waker),
        }
    }

    /// Appends `event`; wakes the consumer if the queue was empty.
    ///
    /// The wake happens after the event is visible, so a consumer that drains on wake always
    /// finds it. A drain racing with a push may see the event early and then get an extra wake
    /// that finds nothing: harmless, and cheaper than a lost wake-up.
    pub(crate) fn push(&self, event: E) {
        let was_empty = {
            let mut events = lock(&self.events);
            let was_empty = events.is_empty();
            events.push_back(event);
            was_empty
        };
        if was_empty {
            // Holding this lock while waking is what lets `detach` guarantee that no wake runs
            // after it returns (the shim frees the notify target right after).
            if let Some(waker) = lock(&self.waker).as_ref() {
                waker.wake();
            }
        }
    }

    /// Removes and returns every pending event, oldest first.
    pub(crate) fn drain(&self) -> Vec<E> {
        lock(&self.events).drain(..).collect()
    }

    /// Drops the waker; once this returns, no wake is running or will ever run again.
    pub(crate) fn detach(&self) {
        let waker = lock(&self.waker).take();
        drop(waker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Counter(Arc<AtomicUsize>);
    impl Wake for Counter {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn wakes_once_per_empty_to_non_empty_edge() {
        let counter = Counter::default();
        let queue = EventQueue::new(Some(counter.clone()));
        queue.push(1);
        queue.push(2);
        queue.push(3);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(queue.drain(), vec![1, 2, 3]);
        assert!(queue.drain().is_empty());
        queue.push(4);
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert_eq!(queue.drain(), vec![4]);
    }

    #[test]
    fn no_wake_after_detach() {
        let counter = Counter::default();
        let queue = EventQueue::new(Some(counter.clone()));
        queue.detach();
        queue.push(1);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        assert_eq!(queue.drain(), vec![1]);
    }

    #[test]
    fn concurrent_producers_lose_nothing() {
        let counter = Counter::default();
        let queue = Arc::new(EventQueue::new(Some(counter.clone())));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || (0..1000).for_each(|i| queue.push(t * 1000 + i)))
            })
            .collect();
        let mut seen = Vec::new();
        for thread in threads {
            thread.join().unwrap();
        }
        seen.extend(queue.drain());
        seen.sort_unstable();
        assert_eq!(seen, (0..4000).collect::<Vec<_>>());
        assert!(counter.0.load(Ordering::SeqCst) >= 1);
    }
}
