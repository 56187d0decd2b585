//! Threads that run TFTP transfers, each on its own single-threaded tokio
//! runtime.
//!
//! A windowed transfer is a ping-pong: a window out, an ACK back, the next
//! window out. On tokio's multi-threaded runtime the thread that wakes up on
//! the ACK often hands the transfer to another worker (a futex wake-up, and on
//! a virtual machine an inter-processor interrupt) before the next window
//! leaves. A transfer that lives on one single-threaded runtime is woken and
//! run by the same thread that saw its socket become readable.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A fixed set of worker threads; jobs are handed out round-robin.
#[derive(Debug)]
pub(crate) struct Workers {
    queues: Vec<mpsc::UnboundedSender<Job>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `n` threads named `<name>-<i>`. Each stops (dropping the jobs it
    /// still runs) once this value is dropped.
    pub(crate) fn start(n: usize, name: &str) -> std::io::Result<Self> {
        let mut queues = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        while let Some(job) = rx.recv().await {
                            tokio::spawn(job);
                        }
                    });
                })?;
            queues.push(tx);
        }
        Ok(Self {
            queues,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `job` on the next worker, or on the caller's runtime if there are
    /// no workers (or the chosen one is gone).
    pub(crate) fn spawn(&self, job: impl Future<Output = ()> + Send + 'static) {
        let job: Job = Box::pin(job);
        if self.queues.is_empty() {
            tokio::spawn(job);
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        if let Err(mpsc::error::SendError(job)) = self.queues[i].send(job) {
            tokio::spawn(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_worker_threads() {
        let w = Workers::start(2, "test-worker").unwrap();
        let mut names = Vec::new();
        for _ in 0..4 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            w.spawn(async move {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            });
            names.push(rx.await.unwrap().unwrap());
        }
        assert_eq!(
            names,
            [
                "test-worker-0",
                "test-worker-1",
                "test-worker-0",
                "test-worker-1"
            ]
        );

        let none = Workers::start(0, "unused").unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        none.spawn(async move {
            let _ = tx.send(());
        });
        rx.await.unwrap();
    }
}
