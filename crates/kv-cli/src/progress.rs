//! Progress bars on stderr, drawn only when stderr is a terminal.
//!
//! indicatif hides bars on a non-terminal by itself; checking here as well makes the rule
//! explicit and skips building styles for output nobody sees (pipes, CI logs, tests).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use kv::snapshot::Progress;

/// True if progress bars are drawn.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar over `len` units, labelled `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{bar:30}] {human_pos}/{human_len} {rate} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key("rate", rate)
    .progress_chars("=> ");
    let pb = ProgressBar::new(len)
        .with_style(style)
        .with_prefix(what.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A bar over the bytes of an input of `len` bytes, labelled `what`.
pub fn bytes_bar(len: u64, what: &str) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let pb = ProgressBar::new(len)
        .with_style(style)
        .with_prefix(what.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A spinner with a counter, for work of unknown size.
pub fn counter(what: &str) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{prefix:>10} {spinner} {human_pos} {rate} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("rate", rate);
    let pb = ProgressBar::new_spinner()
        .with_style(style)
        .with_prefix(what.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A snapshot progress callback that moves `pb`: its position, its length once the total is
/// known, and the current collection as its message. `None` for a hidden bar, so that
/// nothing is called per entry for output nobody sees.
pub fn follow(pb: &ProgressBar) -> Option<impl Fn(&Progress<'_>) + Send + Sync + 'static> {
    if pb.is_hidden() {
        return None;
    }
    let pb = pb.clone();
    // Set the message only when the collection changes: it allocates.
    let shown = Mutex::new(String::new());
    Some(move |p: &Progress<'_>| {
        if let Some(total) = p.total.filter(|&t| pb.length() != Some(t)) {
            pb.set_length(total);
        }
        pb.set_position(p.done);
        if let Ok(mut shown) = shown.lock()
            && *shown != p.collection
        {
            p.collection.clone_into(&mut shown);
            pb.set_message(p.collection.to_owned());
        }
    })
}

/// Items per second without indicatif's four decimals.
fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0}/s", state.per_sec());
}
