//! Runs the cases as libtest trials: one trial per case, skips reported with their reason.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_core::{BoxFuture, DynStore, ErrorKind, KvStore, KvStoreExt, Result};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::need::Hooks;
use crate::{Case, Fixture, Need};

/// Opens a fresh, isolated store.
pub type OpenFn = dyn Fn() -> BoxFuture<'static, Result<DynStore>> + Send + Sync;
/// Writes undecodable bytes under `(collection, key)` of the given store.
pub type CorruptFn =
    dyn Fn(DynStore, String, String) -> BoxFuture<'static, Result<()>> + Send + Sync;
/// Closes a store and opens the same data again.
pub type ReopenFn = dyn Fn(DynStore) -> BoxFuture<'static, Result<DynStore>> + Send + Sync;

pub(crate) struct Harness {
    pub(crate) open: Box<OpenFn>,
    /// Why every case is skipped: the test service is missing.
    pub(crate) missing_service: Option<String>,
    pub(crate) corrupt: Option<Box<CorruptFn>>,
    pub(crate) reopen: Option<Box<ReopenFn>>,
}

/// The conformance suite for one store.
///
/// ```no_run
/// use std::sync::Arc;
/// use kv_conformance::Suite;
/// use kv_core::{DynStore, KvStore, Result};
///
/// /// The body of `tests/conformance.rs` (`harness = false`); `open` makes a store whose data
/// /// is isolated from every other one it made (its own file, namespace or prefix).
/// fn run_suite<S: KvStore>(open: fn() -> Result<S>) -> ! {
///     Suite::new("my-store", move || async move { Ok(Arc::new(open()?) as DynStore) }).run()
/// }
/// ```
pub struct Suite {
    name: String,
    harness: Harness,
    timeout: Duration,
}

impl Suite {
    /// A suite whose `open` returns a new store with data isolated from every other store it
    /// returned (its own file, namespace or key prefix).
    pub fn new<F, Fut>(name: impl Into<String>, open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<DynStore>> + Send + 'static,
    {
        let timeout = std::env::var("KV_CONFORMANCE_TIMEOUT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(120), Duration::from_secs);
        Suite {
            name: name.into(),
            harness: Harness {
                open: Box::new(move || Box::pin(open())),
                missing_service: None,
                corrupt: None,
                reopen: None,
            },
            timeout,
        }
    }

    /// Adds a hook that writes bytes the store cannot decode under `(collection, key)`.
    pub fn corrupt<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(DynStore, String, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.harness.corrupt = Some(Box::new(move |s, c, k| Box::pin(f(s, c, k))));
        self
    }

    /// Adds a hook that closes a store and opens the same data again.
    pub fn reopen<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(DynStore) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<DynStore>> + Send + 'static,
    {
        self.harness.reopen = Some(Box::new(move |s| Box::pin(f(s))));
        self
    }

    /// Declares that the store under test needs a server whose URL is in the environment
    /// variable `var` (e.g. `KV_TEST_REDIS_URL`, exported by `cargo xtask services up`).
    ///
    /// When it is unset, every case is reported as skipped with the reason (naming the
    /// variable and `hint`, the command that starts the service); under `CI=true` the run fails
    /// instead, so a missing service can never pass unseen. Read the URL with
    /// [`service_url`](crate::service_url) in `open`.
    ///
    /// ```no_run
    /// use std::future::Future;
    /// use kv_conformance::{Suite, service_url};
    /// use kv_core::{DynStore, Result};
    ///
    /// /// `connect` opens the store under test at the URL (a store crate's own constructor).
    /// fn run_suite<F>(connect: fn(String) -> F) -> !
    /// where
    ///     F: Future<Output = Result<DynStore>> + Send + 'static,
    /// {
    ///     Suite::new("redis", move || connect(service_url("KV_TEST_REDIS_URL").unwrap_or_default()))
    ///         .needs_service("KV_TEST_REDIS_URL", "cargo xtask services up redis")
    ///         .run()
    /// }
    /// ```
    pub fn needs_service(mut self, var: &str, hint: &str) -> Self {
        if crate::service_url(var).is_none() {
            self.harness.missing_service = Some(format!(
                "service missing: {var} is not set (start it: {hint})"
            ));
        }
        self
    }

    /// Runs the suite with the process's test arguments and exits with the test status.
    pub fn run(self) -> ! {
        let missing = self.harness.missing_service.as_ref().filter(|_| strict());
        if let Some(why) = missing {
            eprintln!(
                "conformance[{}]: FAILED: {why}; under CI=true every service must be present",
                self.name
            );
            std::process::exit(1);
        }
        let mut args = Arguments::from_args();
        // Cases are skipped at run time (the store's capabilities are only known once it is
        // open), so libtest's own `--ignored` would select nothing. Here it means: run the
        // skipped cases too, to show whether a capability is under-declared.
        let force = args.ignored || args.include_ignored;
        args.ignored = false;
        args.include_ignored = false;
        let name = self.name.clone();
        let skipped = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
        let trials = self.trials(skipped.clone(), force);
        let conclusion = libtest_mimic::run(&args, trials);
        let skipped = skipped.lock().unwrap_or_else(|e| e.into_inner());
        if !args.list {
            println!(
                "conformance[{name}]: {} passed, {} failed, {} skipped",
                conclusion.num_passed, conclusion.num_failed, conclusion.num_ignored
            );
            let mut skipped = skipped.clone();
            skipped.sort();
            for (case, why) in skipped.iter() {
                println!("  skipped {case}: {why}");
            }
        }
        conclusion.exit()
    }

    fn trials(self, skipped: Arc<Mutex<Vec<(String, String)>>>, force: bool) -> Vec<Trial> {
        let harness = Arc::new(self.harness);
        let hooks = Hooks {
            corrupt: harness.corrupt.is_some(),
            reopen: harness.reopen.is_some(),
        };
        let timeout = self.timeout;
        let store_name = self.name;
        crate::cases()
            .into_iter()
            .map(|case| {
                let harness = harness.clone();
                let skipped = skipped.clone();
                let kind = store_name.clone();
                let store_name = store_name.clone();
                Trial::ignorable_test(case.name, move || {
                    run_case(case, harness, hooks, timeout, &store_name, &skipped, force)
                })
                .with_kind(kind)
            })
            .collect()
    }
}

fn run_case(
    case: Case,
    harness: Arc<Harness>,
    hooks: Hooks,
    timeout: Duration,
    store_name: &str,
    skipped: &Mutex<Vec<(String, String)>>,
    force: bool,
) -> std::result::Result<Completion, Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("cannot start a tokio runtime: {e}")))?;
    if let Some(why) = &harness.missing_service {
        skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((case.name.to_owned(), why.clone()));
        return Ok(Completion::ignored_with(why.clone()));
    }
    rt.block_on(async move {
        let store = (harness.open)()
            .await
            .map_err(|e| Failed::from(format!("cannot open the {store_name} store: {e}")))?;
        let cap = store.info().capability;
        let writes = !case
            .needs
            .iter()
            .any(|n| matches!(n, Need::ReadOnlySafe | Need::ReadOnly));
        let unmet = if cap.read_only && writes {
            Some("store is read-only (the case writes)")
        } else {
            case.needs.iter().find_map(|n| n.unmet(&cap, hooks))
        };
        if let Some(why) = unmet.filter(|_| !force) {
            skipped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((case.name.to_owned(), why.to_owned()));
            // Skipped cases still clean up: a server store may have created a table or a
            // namespace on open.
            if cap.destroy {
                let _ = store.destroy().await;
            }
            let _ = store.close().await;
            return Ok(Completion::ignored_with(why));
        }
        let latest = Arc::new(Mutex::new(store.clone()));
        let fixture = Fixture::new(store, harness.clone(), latest.clone());
        let outcome = tokio::time::timeout(timeout, (case.run)(fixture)).await;
        let store = latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Clean up whatever store the case ended with (it may have reopened it); the case's
        // own verdict matters, not cleanup errors (destroy and close have their own cases).
        // A case that closed its store cannot destroy it: with a reopen hook, the data is
        // opened again and destroyed, so server stores leave no tables or namespaces behind.
        // (Nested `if`s: this crate keeps Rust 1.85, before let-chains.)
        if cap.destroy {
            if let Err(e) = store.destroy().await {
                if e.kind() == ErrorKind::Closed {
                    if let Some(reopen) = &harness.reopen {
                        if let Ok(again) = reopen(store.clone()).await {
                            let _ = again.destroy().await;
                            let _ = again.close().await;
                        }
                    }
                }
            }
        }
        let _ = store.close().await;
        match outcome {
            Err(_) => Err(Failed::from(format!("timed out after {timeout:?}"))),
            Ok(Err(e)) => Err(Failed::from(e.to_string())),
            Ok(Ok(())) => Ok(Completion::Completed),
        }
    })
}

/// True under `CI=true` (or `CI=1`): what would be skipped locally fails there.
fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
