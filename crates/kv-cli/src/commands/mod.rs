//! One module per command (or per small family of commands).

pub mod bench;
pub mod collections;
pub mod copy;
pub mod export;
pub mod import;
pub mod info;
pub mod keys;
pub mod put_get;
pub mod search;

use std::io::Write;

use crate::error::{CliResult, stdout_error};

/// Where commands write their results: stdout, buffered (flushed by `main`).
pub type Out = std::io::BufWriter<std::io::Stdout>;

/// Writes one line to the output.
pub fn write_line(out: &mut Out, line: &str) -> CliResult<()> {
    out.write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(stdout_error)
}

/// `one` or `many` by count, for summaries (`1 entry`, `2 entries`).
pub fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}
