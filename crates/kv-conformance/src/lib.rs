#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cases;
mod fixture;
mod need;
mod runner;

pub use fixture::Fixture;
pub use need::{Need, TESTABLE_VALUE_LIMIT};
pub use runner::{CorruptFn, OpenFn, ReopenFn, Suite};

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
