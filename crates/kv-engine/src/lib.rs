#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod blocking;
pub mod fs;
pub mod keys;
mod store_impl;
pub mod testing;
pub mod url;
mod worker;

pub use worker::{Core, Engine, Reader, Reply, State, Visit, WriteOp};
