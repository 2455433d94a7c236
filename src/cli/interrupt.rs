//! Ctrl-C for every command. Work that is interrupted before it is done exits 130 (128 +
//! SIGINT, what shells expect) after cleaning up: temporary files are removed, blobs that
//! nobody can use any more are removed, the progress bar is cleared. Long-running commands
//! stopped in their steady state (`serve`, `dht node`, `publish` once published) exit 0.

use std::io::{self, Read};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

/// Exit status of a command stopped by SIGINT before its work was done.
pub const INTERRUPTED: u8 = 130;

/// The exit code of an interrupted command, after saying so on stderr.
pub fn interrupted() -> ExitCode {
    eprintln!("interrupted");
    ExitCode::from(INTERRUPTED)
}

/// A flag raised when SIGINT arrives, for synchronous work that polls it. Once this is
/// called SIGINT no longer kills the process: the work must look at the flag.
pub fn sigint_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal watcher")?;
    // Register now, on this thread, so that a SIGINT right after this returns is caught.
    let mut sigint = rt
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        })
        .context("cannot watch SIGINT")?;
    let raised = flag.clone();
    std::thread::spawn(move || {
        rt.block_on(async {
            if sigint.recv().await.is_some() {
                raised.store(true, Ordering::SeqCst);
            }
        })
    });
    Ok(flag)
}

/// A reader that fails once `stop` is raised and reports every byte read to `seen`: an
/// interruptible, observable input for ingesting.
pub struct WatchedReader<R, F> {
    inner: R,
    stop: Arc<AtomicBool>,
    seen: F,
}

impl<R, F: FnMut(u64)> WatchedReader<R, F> {
    /// Wrap `inner`.
    pub fn new(inner: R, stop: Arc<AtomicBool>, seen: F) -> Self {
        Self { inner, stop, seen }
    }
}

impl<R: Read, F: FnMut(u64)> Read for WatchedReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.load(Ordering::SeqCst) {
            // Not ErrorKind::Interrupted: readers retry that one.
            return Err(io::Error::other("interrupted"));
        }
        let n = self.inner.read(buf)?;
        (self.seen)(n as u64);
        Ok(n)
    }
}
