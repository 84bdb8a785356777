//! File-system pieces every file-backed store needs: an exclusive lock file (a second process
//! fails at once with "locked by another process"), atomic file replacement and directory
//! `fsync`.
//!
//! The functions return `std::io` errors (or [`LockError`] / [`AtomicWriteError`], which say
//! which step failed), so that each store keeps its own mapping of I/O failures onto
//! `kv_core::ErrorKind` and its own messages.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use kv_core::{Error, ErrorKind};

/// Why [`lock_file`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another handle (of this or another process) holds the lock.
    Locked,
    /// The lock file could not be created or opened.
    Open(io::Error),
    /// Locking failed for another reason than another holder.
    Lock(io::Error),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Locked => f.write_str("locked by another process"),
            LockError::Open(e) => write!(f, "cannot open the lock file: {e}"),
            LockError::Lock(e) => write!(f, "cannot lock: {e}"),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Locked => None,
            LockError::Open(e) | LockError::Lock(e) => Some(e),
        }
    }
}

/// Opens `path` (creating it, never truncating it) and takes an exclusive, advisory lock on
/// it (`flock`-style, [`File::try_lock`]) without waiting. The lock is held until the returned
/// [`FileLock`] is dropped (or explicitly unlocked).
///
/// The lock belongs to the open file, not to the process: a second `lock_file` on the same
/// path fails both in another process and in this one, so two open stores never share a file.
///
/// # Errors
///
/// [`LockError::Locked`] if the lock is held, [`LockError::Open`] or [`LockError::Lock`]
/// on I/O errors.
///
/// # Example
///
/// ```
/// use kv_engine::fs::{LockError, lock_file};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("data.lock");
/// let lock = lock_file(&path).unwrap();
/// assert!(matches!(lock_file(&path), Err(LockError::Locked)));
/// drop(lock);
/// assert!(lock_file(&path).is_ok());
/// ```
pub fn lock_file(path: impl AsRef<Path>) -> Result<FileLock, LockError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path.as_ref())
        .map_err(LockError::Open)?;
    match file.try_lock() {
        Ok(()) => Ok(FileLock { file }),
        Err(TryLockError::WouldBlock) => Err(LockError::Locked),
        Err(TryLockError::Error(e)) => Err(LockError::Lock(e)),
    }
}

/// An exclusive lock taken by [`lock_file`], released when dropped.
///
/// Dropping unlocks explicitly before the file is closed: an `flock` lock belongs to the open
/// file description, which a child process forked by another thread shares until it `exec`s
/// (std opens files close-on-exec, but the copy lives between fork and exec). Merely closing
/// our descriptor would leave the lock held by that copy for a moment, and a store reopened
/// right after being dropped would find its own file "locked by another process".
///
/// # Example
///
/// ```
/// use kv_engine::fs::lock_file;
///
/// let dir = tempfile::tempdir().unwrap();
/// let lock = lock_file(dir.path().join("data.lock")).unwrap();
/// assert!(lock.file().metadata().is_ok());
/// drop(lock); // unlocked here, even if a child process still holds a copy of the descriptor
/// ```
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// The locked file (to read or write a lock file's contents).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Releases the lock now; dropping does the same.
    ///
    /// # Errors
    ///
    /// The I/O error of the unlock call.
    pub fn unlock(&self) -> io::Result<()> {
        self.file.unlock()
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The error for a store whose lock is held: [`ErrorKind::Unavailable`], permanent
/// (`is_temporary() == false`, waiting does not help while the other owner keeps it open),
/// with the message "`WHAT` is locked by another process (or by another open store in this
/// process)", followed by `: DETAIL` if given.
///
/// # Example
///
/// ```
/// use std::path::Path;
///
/// let e = kv_engine::fs::locked(Path::new("/data/x.log"), Some("a log has one writer at a time"));
/// assert_eq!(e.kind(), kv_core::ErrorKind::Unavailable);
/// assert!(!e.is_temporary());
/// assert!(e.to_string().contains("/data/x.log is locked by another process"));
/// ```
pub fn locked(what: &Path, detail: Option<&str>) -> Error {
    let mut msg = format!(
        "{} is locked by another process (or by another open store in this process)",
        what.display()
    );
    if let Some(detail) = detail {
        msg.push_str(": ");
        msg.push_str(detail);
    }
    Error::new(ErrorKind::Unavailable, msg).temporary(false)
}

/// `PATH` + `suffix` (`x.db` → `x.db.lock`): names beside a file that keep its full name.
///
/// # Example
///
/// ```
/// use std::path::Path;
///
/// let p = kv_engine::fs::with_suffix(Path::new("dir/x.db"), ".lock");
/// assert_eq!(p, Path::new("dir/x.db.lock"));
/// ```
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Flushes a directory's entries (created, renamed, removed files) to disk with `fsync`.
/// A no-op on platforms other than Unix, where a directory cannot be opened for this.
///
/// # Errors
///
/// The I/O error of opening or syncing the directory.
///
/// # Example
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("new"), b"x").unwrap();
/// kv_engine::fs::sync_dir(dir.path()).unwrap();
/// ```
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Flushes the directory that holds `path` (see [`sync_dir`]); a bare file name means the
/// current directory.
///
/// # Errors
///
/// The I/O error of opening or syncing the directory.
///
/// # Example
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let file = dir.path().join("x.json");
/// std::fs::write(&file, b"{}").unwrap();
/// kv_engine::fs::sync_parent(&file).unwrap();
/// ```
pub fn sync_parent(path: &Path) -> io::Result<()> {
    sync_dir(parent_dir(path))
}

/// The directory holding `path`: its parent, or `.` for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Which step of [`write_atomic`] failed.
#[derive(Debug)]
pub struct AtomicWriteError {
    /// The step, as a verb phrase for messages: `"create"`, `"write"`, `"sync"`,
    /// `"rename to"` or `"sync directory"`.
    pub step: &'static str,
    /// The path the step worked on (the temporary file, the target, or the directory).
    pub path: PathBuf,
    /// The I/O error.
    pub source: io::Error,
}

impl fmt::Display for AtomicWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.step,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for AtomicWriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Replaces `path` with `bytes` atomically: a reader (or a crash) sees the old or the new
/// contents, never a mix.
///
/// Writes the temporary file `tmp` (which must be in the same directory as `path`; a leftover
/// of a crash there is removed first, and `create_new` never follows a link planted there),
/// `fsync`s it if `sync`, renames it over `path`, then `fsync`s the directory if `sync`.
/// On failure before the rename the temporary file is removed.
///
/// # Errors
///
/// The failed step with its path and I/O error.
///
/// # Example
///
/// ```
/// use kv_engine::fs::{with_suffix, write_atomic};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("data.json");
/// write_atomic(&path, &with_suffix(&path, ".tmp"), b"{}", true).unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// ```
pub fn write_atomic(
    path: &Path,
    tmp: &Path,
    bytes: &[u8],
    sync: bool,
) -> Result<(), AtomicWriteError> {
    let fail = |step, path: &Path| {
        let path = path.to_path_buf();
        move |source| AtomicWriteError { step, path, source }
    };
    let _ = std::fs::remove_file(tmp);
    let r = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(fail("create", tmp))?;
        file.write_all(bytes).map_err(fail("write", tmp))?;
        if sync {
            file.sync_all().map_err(fail("sync", tmp))?;
        }
        drop(file);
        std::fs::rename(tmp, path).map_err(fail("rename to", path))
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    r?;
    if sync {
        let dir = parent_dir(path);
        sync_dir(dir).map_err(fail("sync directory", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let first = lock_file(&path).unwrap();
        assert!(matches!(lock_file(&path), Err(LockError::Locked)));
        drop(first);
        lock_file(&path).unwrap();
    }

    #[test]
    fn dropping_releases_the_lock_while_a_copy_of_the_descriptor_lives() {
        // A child forked by another thread holds such a copy until it execs.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let first = lock_file(&path).unwrap();
        let forked_copy = first.file.try_clone().unwrap();
        drop(first);
        lock_file(&path).expect("the lock is released although a copy is open");
        drop(forked_copy);
    }

    #[test]
    fn lock_in_a_missing_directory_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let r = lock_file(dir.path().join("no/such/l"));
        assert!(matches!(r, Err(LockError::Open(_))), "{r:?}");
    }

    #[test]
    fn write_atomic_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let tmp = with_suffix(&path, ".tmp");
        std::fs::write(&tmp, b"leftover").unwrap();
        write_atomic(&path, &tmp, b"one", true).unwrap();
        write_atomic(&path, &tmp, b"two", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!tmp.exists());
        let bad = dir.path().join("missing/f");
        let e = write_atomic(&bad, &with_suffix(&bad, ".tmp"), b"x", true).unwrap_err();
        assert_eq!(e.step, "create");
    }
}
