//! Running blocking store work from async code: on tokio's blocking pool inside a tokio
//! runtime, inline on the calling thread outside one.
//!
//! Stores over synchronous engines (files, redb, SQLite, LMDB, ...) do their I/O in plain
//! functions. [`run_blocking`] turns such a function into the body of a `KvStore` future that
//! never blocks a tokio worker thread, and still completes under any other executor (or
//! through `kv_core::SyncStore`), where it simply runs the function in place.

use kv_core::{Error, ErrorKind, Operation, Result};

/// Runs `f` on tokio's blocking pool when called inside a tokio runtime, or on this thread
/// outside one (so the store also works under other executors and through
/// `kv_core::SyncStore`).
///
/// If the blocking task cannot complete, the error carries `store` and `op` as context:
/// a panic in `f` becomes [`ErrorKind::Backend`] ("the operation panicked"), a task cancelled
/// because the runtime shuts down becomes [`ErrorKind::Unavailable`].
///
/// # Example
///
/// ```
/// use kv_core::Operation;
///
/// async fn file_len(path: std::path::PathBuf) -> kv_core::Result<u64> {
///     kv_engine::blocking::run_blocking("mystore", Operation::Get, move || {
///         Ok(std::fs::metadata(&path)?.len())
///     })
///     .await
/// }
///
/// let dir = std::env::temp_dir();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// // Inside a runtime: on the blocking pool.
/// let n = runtime.block_on(file_len(dir.clone())).unwrap();
/// // The same future also completes outside of tokio, where it runs inline.
/// use kv_core::sync::{BlockOn, Park};
/// let m = Park.block_on(file_len(dir));
/// assert_eq!(n, m.unwrap());
/// ```
pub async fn run_blocking<T, F>(store: &'static str, op: Operation, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return f();
    };
    match runtime.spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => {
            let err = if e.is_panic() {
                Error::new(ErrorKind::Backend, "the operation panicked")
            } else {
                Error::new(
                    ErrorKind::Unavailable,
                    "the operation was cancelled (the runtime is shutting down)",
                )
            };
            Err(err.with_store(store).with_operation(op))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_inline_outside_a_runtime() {
        let here = std::thread::current().id();
        use kv_core::sync::{BlockOn, Park};
        let r = Park.block_on(run_blocking("t", Operation::Put, move || {
            Ok(std::thread::current().id() == here)
        }));
        assert!(r.unwrap());
    }

    #[test]
    fn panics_become_backend_errors() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r: Result<()> = runtime.block_on(run_blocking("t", Operation::Put, || panic!("boom")));
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert_eq!(e.store(), Some("t"));
        assert_eq!(e.operation(), Some(Operation::Put));
    }
}
