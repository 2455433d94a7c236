//! A small bounded pipeline: one thread produces jobs in order (reading a file), a few worker
//! threads do the heavy part (AEAD + SHA-256 + blob I/O) in parallel, and results are consumed
//! back in job order (writing a file, collecting chunks).
//!
//! Memory stays bounded: every job carries one chunk-sized buffer and at most
//! `2 * workers + 2` buffers exist at once, whether queued, being worked on, or finished and
//! waiting for an earlier job. Buffers are recycled, so a long file costs no allocation per
//! chunk.

use crate::manifest::BLOB_LEN;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Mutex};
use std::thread;

/// More workers than this would only add buffers: the disk and memory bandwidth run out first.
const MAX_WORKERS: usize = 4;

/// Number of worker threads used by [`run_ordered`].
pub(crate) fn worker_count() -> usize {
    thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS)
}

type Outcome<R, E> = thread::Result<Result<R, E>>;

/// Run `produce` on the calling thread until it returns `Ok(None)`, `work` on each job on
/// worker threads, and `consume` on each result in the order the jobs were produced.
///
/// `produce` fills an empty recycled buffer (capacity [`BLOB_LEN`]) and returns the job that
/// goes with it; `work` transforms the buffer; `consume` sees the result and the buffer.
/// The first failure in job order is returned; after any failure no new job is produced and
/// nothing more is consumed. A panicking worker is re-raised on the caller after the others
/// stopped.
pub(crate) fn run_ordered<J, R, E, P, W, C>(
    mut produce: P,
    work: W,
    mut consume: C,
) -> Result<(), E>
where
    J: Send,
    R: Send,
    E: Send,
    P: FnMut(&mut Vec<u8>) -> Result<Option<J>, E>,
    W: Fn(J, &mut Vec<u8>) -> Result<R, E> + Sync,
    C: FnMut(R, &[u8]) -> Result<(), E>,
{
    let workers = worker_count();
    // Enough queued work to keep every worker busy while the caller reads or writes.
    let max_buffers = 2 * workers + 2;
    let (job_tx, job_rx) = mpsc::channel::<(u64, J, Vec<u8>)>();
    let job_rx = Mutex::new(job_rx);
    let (res_tx, res_rx) = mpsc::channel::<(u64, Outcome<R, E>, Vec<u8>)>();
    thread::scope(|scope| {
        for _ in 0..workers {
            let res_tx = res_tx.clone();
            let (job_rx, work) = (&job_rx, &work);
            scope.spawn(move || loop {
                // Hold the lock only while taking a job, never while working on it.
                let next = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok((seq, job, mut buf)) = next else {
                    return;
                };
                let outcome = catch_unwind(AssertUnwindSafe(|| work(job, &mut buf)));
                if res_tx.send((seq, outcome, buf)).is_err() {
                    return;
                }
            });
        }
        drop(res_tx);

        let mut job_tx = Some(job_tx);
        let mut free: Vec<Vec<u8>> = Vec::new();
        let mut pending: BTreeMap<u64, (Result<R, E>, Vec<u8>)> = BTreeMap::new();
        let (mut produced, mut consumed, mut in_flight) = (0u64, 0u64, 0usize);
        let mut failure: Option<(u64, E)> = None;
        let mut panicked = None;

        loop {
            // Results parked behind a slow earlier job hold buffers too: count them, or one
            // stalled job would let the others run ahead without limit.
            while failure.is_none() && panicked.is_none() && in_flight + pending.len() < max_buffers
            {
                let Some(tx) = &job_tx else { break };
                let mut buf = free.pop().unwrap_or_else(|| Vec::with_capacity(BLOB_LEN));
                buf.clear();
                match produce(&mut buf) {
                    Ok(Some(job)) => {
                        // Workers only stop early by panicking, which is handled below.
                        if tx.send((produced, job, buf)).is_err() {
                            break;
                        }
                        produced += 1;
                        in_flight += 1;
                    }
                    Ok(None) => job_tx = None,
                    Err(e) => failure = Some((produced, e)),
                }
            }
            if failure.is_some() || panicked.is_some() {
                // Let idle workers exit; queued jobs still finish and are drained below.
                job_tx = None;
            }
            if in_flight == 0 {
                break;
            }
            let Ok((seq, outcome, buf)) = res_rx.recv() else {
                break;
            };
            in_flight -= 1;
            match outcome {
                Ok(result) => {
                    pending.insert(seq, (result, buf));
                }
                Err(payload) => {
                    panicked.get_or_insert(payload);
                }
            }
            while let Some((result, buf)) = pending.remove(&consumed) {
                let result = match result {
                    Ok(r) if failure.is_none() && panicked.is_none() => consume(r, &buf),
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    // Results can arrive out of order: keep the failure of the earliest job.
                    if failure.as_ref().is_none_or(|(at, _)| consumed < *at) {
                        failure = Some((consumed, e));
                    }
                }
                free.push(buf);
                consumed += 1;
            }
            // Failures queued behind a gap (an earlier job still running) count too.
            if let Some((&seq, _)) = pending.iter().find(|(_, (r, _))| r.is_err()) {
                if failure.as_ref().is_none_or(|(at, _)| seq < *at) {
                    if let Some((Err(e), _)) = pending.remove(&seq) {
                        failure = Some((seq, e));
                    }
                }
            }
        }
        drop(job_tx);
        if let Some(payload) = panicked {
            resume_unwind(payload);
        }
        match failure {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumes_in_order() {
        let mut next = 0u32;
        let mut seen = Vec::new();
        let r: Result<(), String> = run_ordered(
            |buf| {
                if next == 50 {
                    return Ok(None);
                }
                buf.push(next as u8);
                next += 1;
                Ok(Some(next - 1))
            },
            |n, buf| {
                // Uneven work so results come back out of order.
                thread::sleep(std::time::Duration::from_micros(u64::from(n % 7) * 200));
                buf.push(1);
                Ok(n * 2)
            },
            |r, buf| {
                assert_eq!(buf, [(r / 2) as u8, 1]);
                seen.push(r);
                Ok(())
            },
        );
        r.unwrap();
        assert_eq!(seen, (0..50).map(|n| n * 2).collect::<Vec<_>>());
    }

    #[test]
    fn a_stalled_job_does_not_let_buffers_pile_up() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let live = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let mut next = 0u32;
        let r: Result<(), String> = run_ordered(
            |buf| {
                next += 1;
                buf.push(0);
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                Ok((next <= 40).then_some(next))
            },
            |n, _| {
                if n == 2 {
                    thread::sleep(std::time::Duration::from_millis(100));
                }
                Ok(())
            },
            |(), _| {
                live.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            },
        );
        r.unwrap();
        // Buffers produced but not yet consumed never exceed the pool (+1: the end marker).
        assert!(peak.into_inner() <= 2 * worker_count() + 2 + 1);
    }

    #[test]
    fn earliest_failure_wins_and_stops_production() {
        let mut next = 0u32;
        let mut consumed = Vec::new();
        let r: Result<(), String> = run_ordered(
            |_| {
                next += 1;
                Ok(Some(next - 1))
            },
            |n, _| {
                if n == 3 {
                    thread::sleep(std::time::Duration::from_millis(20));
                    Err(format!("job {n}"))
                } else if n == 5 {
                    Err(format!("job {n}"))
                } else {
                    Ok(n)
                }
            },
            |n, _| {
                consumed.push(n);
                Ok(())
            },
        );
        assert_eq!(r.unwrap_err(), "job 3");
        assert_eq!(consumed, [0, 1, 2]);
        // Production stopped soon after the failure instead of running forever.
        assert!(next < 20, "produced {next} jobs");
    }

    #[test]
    fn producer_and_consumer_failures() {
        let mut next = 0u32;
        let r: Result<(), String> = run_ordered(
            |_| {
                next += 1;
                if next == 4 {
                    Err("read".into())
                } else {
                    Ok(Some(next))
                }
            },
            |n, _| Ok(n),
            |_, _| Ok(()),
        );
        assert_eq!(r.unwrap_err(), "read");
        let mut next = 0u32;
        let r: Result<(), String> = run_ordered(
            |_| {
                next += 1;
                Ok((next < 10).then_some(next))
            },
            |n, _| Ok(n),
            |n, _| if n == 2 { Err("write".into()) } else { Ok(()) },
        );
        assert_eq!(r.unwrap_err(), "write");
    }

    #[test]
    fn worker_panic_is_reraised_not_deadlocked() {
        let outcome = std::panic::catch_unwind(|| {
            let mut next = 0u32;
            let _: Result<(), String> = run_ordered(
                |_| {
                    next += 1;
                    Ok((next < 10).then_some(next))
                },
                |n, _| if n == 3 { panic!("boom") } else { Ok(n) },
                |_, _| Ok(()),
            );
        });
        assert!(outcome.is_err());
    }
}
