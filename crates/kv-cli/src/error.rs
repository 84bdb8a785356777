//! The CLI's error type: what went wrong, as one line for the user and one exit code.
//!
//! Exit codes are part of the interface scripts rely on: 0 success, 1 "not found" (only from
//! `get`, `del` and `ttl`), 2 any other error (and 130 after Ctrl-C, as shells report it). Nothing here prints a backtrace or `Debug`
//! output: the message is written for the person at the terminal.

use std::fmt;
use std::io;
use std::path::Path;
use std::process::ExitCode;

/// The exit status of a failed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The entry does not exist (exit 1).
    NotFound,
    /// Bad input, a store error, an I/O error ... (exit 2).
    Failed,
    /// Ctrl-C (exit 130, as a shell reports a process killed by SIGINT).
    Interrupted,
    /// stdout was closed by the reader (`kv keys c | head`): stop quietly, successfully,
    /// like other Unix tools whose reader has all it wanted.
    BrokenPipe,
}

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    status: Status,
    message: String,
}

/// The result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    /// An error with exit status 2.
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            status: Status::Failed,
            message: message.into(),
        }
    }

    /// A missing entry (exit status 1).
    pub fn not_found(collection: &str, key: &str) -> Self {
        CliError {
            status: Status::NotFound,
            message: format!("not found: key {key:?} in collection {collection:?}"),
        }
    }

    /// A store error, in an operation the message does not already name.
    pub fn kv(err: kv::Error) -> Self {
        CliError::new(err.to_string())
    }

    /// A store that could not be opened (`what`: "store URL", "the default store at PATH").
    /// Only kind, message and cause are shown: the error's context (`op: open`) would repeat
    /// what `cannot open` already says.
    pub fn open(what: impl fmt::Display, err: &kv::Error) -> Self {
        CliError::new(format!("cannot open {what}: {}", describe_open_error(err)))
    }

    /// An error of a snapshot operation (`kv::snapshot`): one on its file or stream is shown
    /// like [`CliError::file`] (a closed stdout ends quietly), any other as a store error.
    pub fn snapshot(err: kv::Error) -> Self {
        let io = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<io::Error>());
        match io {
            Some(io) if io.kind() == io::ErrorKind::BrokenPipe => CliError::broken_pipe(),
            Some(io) => CliError::new(format!("{}: {}", err.message(), io_message(io))),
            None => CliError::kv(err),
        }
    }

    /// An I/O error on a file (`what` says what the file is for).
    pub fn file(what: &str, path: &Path, err: &io::Error) -> Self {
        if err.kind() == io::ErrorKind::BrokenPipe {
            return CliError::broken_pipe();
        }
        CliError::new(format!("{what} {}: {}", path.display(), io_message(err)))
    }

    /// An I/O error on stdin, stdout or stderr.
    pub fn stdio(what: &str, err: &io::Error) -> Self {
        if err.kind() == io::ErrorKind::BrokenPipe {
            return CliError::broken_pipe();
        }
        CliError::new(format!("{what}: {}", io_message(err)))
    }

    /// The user pressed Ctrl-C.
    pub fn interrupted() -> Self {
        CliError {
            status: Status::Interrupted,
            message: "interrupted".to_owned(),
        }
    }

    fn broken_pipe() -> Self {
        CliError {
            status: Status::BrokenPipe,
            message: String::new(),
        }
    }

    /// The exit status.
    #[cfg(test)]
    pub fn status(&self) -> Status {
        self.status
    }

    /// Adds context in front of the message (`line 7: ...`).
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        if self.status == Status::Failed {
            self.message = format!("{prefix}: {}", self.message);
        }
        self
    }

    /// Prints the error on stderr (one line) and returns the exit code.
    pub fn report(&self) -> ExitCode {
        match self.status {
            Status::BrokenPipe => ExitCode::SUCCESS,
            Status::NotFound => {
                eprintln!("kv: {}", self.message);
                ExitCode::from(1)
            }
            Status::Interrupted => {
                eprintln!("kv: {}", self.message);
                ExitCode::from(130)
            }
            Status::Failed => {
                eprintln!("kv: error: {}", self.message);
                ExitCode::from(2)
            }
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<kv::Error> for CliError {
    fn from(err: kv::Error) -> Self {
        CliError::kv(err)
    }
}

/// `kind: message: cause`, without the operation context.
fn describe_open_error(err: &kv::Error) -> String {
    let mut s = format!("{}: {}", err.kind(), strip_os_error(err.message()));
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = strip_os_error(&cause.to_string()).to_owned();
        // Causes often repeat themselves (an io::Error wrapped in a backend error).
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// The text of an I/O error without the `(os error N)` suffix, which means nothing to users.
fn io_message(err: &io::Error) -> String {
    strip_os_error(&err.to_string()).to_owned()
}

fn strip_os_error(text: &str) -> &str {
    match text.find(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text,
    }
}

/// Maps a write error on stdout: a closed pipe ends the command quietly.
pub fn stdout_error(err: io::Error) -> CliError {
    CliError::stdio("cannot write to stdout", &err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_hide_secrets_and_context() {
        let err = kv::Error::new(kv::ErrorKind::Config, "unknown store scheme `x://`")
            .with_operation(kv::Operation::Open);
        let e = CliError::open(kv::url::redact("x://user:hunter2@host"), &err);
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("op: open"), "{text}");
        assert!(text.contains("unknown store scheme"), "{text}");
    }

    #[test]
    fn os_error_numbers_are_dropped() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&err), "No such file or directory");
    }

    #[test]
    fn broken_pipes_are_quiet() {
        let e = stdout_error(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(e.status(), Status::BrokenPipe);
        let e = CliError::snapshot(
            kv::Error::new(kv::ErrorKind::Backend, "cannot write the snapshot")
                .with_source(io::Error::from(io::ErrorKind::BrokenPipe)),
        );
        assert_eq!(e.status(), Status::BrokenPipe);
    }

    #[test]
    fn snapshot_file_errors_read_like_file_errors() {
        let err = kv::Error::new(kv::ErrorKind::Backend, "cannot write /x/out.jsonl")
            .with_source(io::Error::from_raw_os_error(28));
        assert_eq!(
            CliError::snapshot(err).to_string(),
            "cannot write /x/out.jsonl: No space left on device"
        );
        let err = kv::Error::new(kv::ErrorKind::Unavailable, "down").with_store("redis");
        assert_eq!(
            CliError::snapshot(err).to_string(),
            "unavailable: down (store: redis)"
        );
    }
}
