//! The engine behind the Qt classes that do asynchronous work: its own tokio runtime, and the
//! event queue through which results reach the Qt thread.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cxx::UniquePtr;
use futures_lite::FutureExt;

use super::bridge::{Event, Notifier, Operation};
use super::dht::{DhtSlot, ServerSlot};
use super::panic::panic_error;
use super::queue::{EventQueue, Wake};
use super::FfiError;

/// Worker threads per engine: the work is network-bound (DHT lookups, a few sockets), and
/// qBittorrent already runs libtorrent's threads on the same machine.
const WORKER_THREADS: usize = 2;

impl Wake for UniquePtr<Notifier> {
    fn wake(&self) {
        if let Some(notifier) = self.as_ref() {
            notifier.notify();
        }
    }
}

/// Shared with every task the engine runs, so tasks can report without borrowing the engine.
pub(crate) type Queue = Arc<EventQueue<Event, UniquePtr<Notifier>>>;

/// One runtime plus one event queue; owned by a C++ object through `rust::Box<Engine>`.
pub struct Engine {
    runtime: Option<tokio::runtime::Runtime>,
    queue: Queue,
    next_request: AtomicU64,
    /// The DHT node, once `dht_start` finished.
    pub(crate) dht: Arc<DhtSlot>,
    /// The blob server, once `serve_blobs` finished.
    pub(crate) server: Arc<ServerSlot>,
}

impl Engine {
    /// Starts the runtime. `notifier` is told (from a worker thread) whenever events become
    /// pending; a null notifier is allowed (the owner then drains when it likes).
    pub(crate) fn new(notifier: UniquePtr<Notifier>) -> Result<Self, FfiError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("megatorrent-engine")
            .enable_all()
            .build()
            .map_err(|e| FfiError::Runtime(e.to_string()))?;
        let waker = (!notifier.is_null()).then_some(notifier);
        Ok(Self {
            runtime: Some(runtime),
            queue: Arc::new(EventQueue::new(waker)),
            next_request: AtomicU64::new(1),
            dht: Arc::default(),
            server: Arc::default(),
        })
    }

    /// The runtime handle, for work that needs one outside [`Engine::submit`].
    pub(crate) fn handle(&self) -> Result<tokio::runtime::Handle, FfiError> {
        self.runtime
            .as_ref()
            .map(|rt| rt.handle().clone())
            .ok_or(FfiError::Runtime("engine is shut down".into()))
    }

    /// Runs `work` on the runtime and queues the event it produces. Returns the request id that
    /// event will carry. A panic inside `work` is caught and queued as a failed event of
    /// `operation`, so a bug in one request never takes the host down.
    pub(crate) fn submit<F, Fut>(
        &self,
        operation: Operation,
        subject: String,
        work: F,
    ) -> Result<u64, FfiError>
    where
        F: FnOnce(u64) -> Fut,
        Fut: Future<Output = Event> + Send + 'static,
    {
        let handle = self.handle()?;
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let future = work(request);
        let queue = Arc::clone(&self.queue);
        handle.spawn(async move {
            let event = match AssertUnwindSafe(future).catch_unwind().await {
                Ok(event) => event,
                Err(payload) => Event::failed(operation, request, subject, &panic_error(&*payload)),
            };
            queue.push(event);
        });
        Ok(request)
    }

    /// Runs `start`, which checks its arguments and submits work; if it fails, its error is
    /// queued as a failed event of `operation` instead, so that every failure reaches C++ the same
    /// way (an event with a kind) and only a panic throws.
    pub(crate) fn report(
        &self,
        operation: Operation,
        start: impl FnOnce() -> Result<u64, FfiError>,
    ) -> Result<u64, FfiError> {
        Ok(start().unwrap_or_else(|error| {
            let request = self.next_request.fetch_add(1, Ordering::Relaxed);
            self.queue
                .push(Event::failed(operation, request, String::new(), &error));
            request
        }))
    }

    /// Every pending event, oldest first. Called on the owner's thread after a notify.
    pub(crate) fn take_events(&self) -> Vec<Event> {
        self.queue.drain()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // First make sure no worker can call into the (about to be freed) C++ notifier, then stop
        // the runtime without waiting for in-flight network operations: the GUI thread that
        // frees the engine must not block on them.
        self.queue.detach();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_events(engine: &Engine, n: usize) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Vec::new();
        while events.len() < n && Instant::now() < deadline {
            events.extend(engine.take_events());
            std::thread::sleep(Duration::from_millis(5));
        }
        events
    }

    #[test]
    fn submitted_work_is_queued_with_its_request_id() {
        let engine = Engine::new(UniquePtr::null()).unwrap();
        let a = engine
            .submit(Operation::SelfTest, "a".into(), |r| async move {
                Event::succeeded(Operation::SelfTest, r, "a".into())
            })
            .unwrap();
        let b = engine
            .submit(Operation::SelfTest, "b".into(), |r| async move {
                Event::succeeded(Operation::SelfTest, r, "b".into())
            })
            .unwrap();
        assert_ne!(a, b);
        let mut events = wait_events(&engine, 2);
        events.sort_by_key(|e| e.request);
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].request, events[0].subject.as_str()), (a, "a"));
        assert_eq!((events[1].request, events[1].subject.as_str()), (b, "b"));
        assert!(events.iter().all(|e| e.ok));
    }

    #[test]
    fn a_panicking_task_becomes_a_failed_event() {
        let engine = Engine::new(UniquePtr::null()).unwrap();
        let request = engine
            .submit(Operation::SelfTest, "s".into(), |_| async move {
                panic!("task exploded")
            })
            .unwrap();
        let events = wait_events(&engine, 1);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].request, request);
        assert!(!events[0].ok);
        assert_eq!(events[0].operation, Operation::SelfTest);
        assert!(
            events[0].message.contains("task exploded"),
            "{}",
            events[0].message
        );
    }
}
