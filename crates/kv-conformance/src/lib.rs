#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cases;
mod fixture;
mod need;
mod runner;

pub use fixture::Fixture;
pub use need::{Need, TESTABLE_VALUE_LIMIT};
pub use runner::{CorruptFn, OpenFn, ReopenFn, Suite};

/// The URL of a test service from the environment variable `var` (e.g. `KV_TEST_REDIS_URL`,
/// exported by `cargo xtask services up`), if it is set and not empty.
///
/// ```
/// assert_eq!(kv_conformance::service_url("KV_TEST_SURELY_UNSET_URL"), None);
/// ```
pub fn service_url(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// The result of one case: `?` works on kv errors, assertions panic.
pub type CaseResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// One conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// `group::name`, unique.
    pub name: &'static str,
    /// What the store must be able to do for the case to run.
    pub needs: &'static [Need],
    /// The case.
    pub run: fn(Fixture) -> kv_core::BoxFuture<'static, CaseResult>,
}

/// Every case of the suite, in a stable order.
pub fn cases() -> Vec<Case> {
    cases::all()
}
