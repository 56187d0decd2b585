//! The one tokio runtime the blocking Python calls run their futures on.

use std::future::Future;
use std::sync::OnceLock;

use pyo3::prelude::*;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("maas-rs")
            .enable_all()
            .build()
            // invariant: building a runtime only fails if the OS refuses threads.
            .expect("maas-rs: cannot start the tokio runtime")
    })
}

/// Builds a future with `make` and runs it to completion with the GIL
/// released, so other Python threads (and asyncio's default executor) keep
/// running meanwhile. The future is built on the releasing thread, so it
/// need not be `Send` itself.
pub(crate) fn block_on<M, F>(py: Python<'_>, make: M) -> F::Output
where
    M: FnOnce() -> F + Send,
    F: Future,
    F::Output: Send,
{
    py.allow_threads(move || runtime().block_on(make()))
}
