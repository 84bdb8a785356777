#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod keys;
mod worker;

pub use worker::{Core, Engine, Reply, State, Visit, WriteOp};
