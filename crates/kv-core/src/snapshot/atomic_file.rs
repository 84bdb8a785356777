//! Replacing a file atomically while it is written as a stream: the data goes to a temporary
//! file next to the target, which is renamed over the target at the end. A reader (or a
//! crash) sees the old file or the complete new one, never half of one; a failed or dropped
//! write removes the temporary file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::io_error;
use crate::Result;

/// How many names are tried before giving up: names are unique per process, so only
/// leftovers of crashed processes with the same id can take them.
const ATTEMPTS: u32 = 100;

/// A file being written that replaces `target` on [`AtomicFile::commit`].
pub(super) struct AtomicFile {
    target: PathBuf,
    file: File,
    tmp: TempPath,
}

/// Removes the temporary file when dropped, unless it was renamed.
struct TempPath {
    path: PathBuf,
    renamed: bool,
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl AtomicFile {
    /// Creates the temporary file in the target's directory (the same file system, so the
    /// rename is atomic). It is readable by its owner only: values may be secrets.
    pub(super) fn create(target: &Path) -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = parent(target);
        let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
        for _ in 0..ATTEMPTS {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".kv-export-{}-{n}.tmp", std::process::id()));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&path) {
                Ok(file) => {
                    return Ok(AtomicFile {
                        target: target.to_owned(),
                        file,
                        tmp: TempPath {
                            path,
                            renamed: false,
                        },
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(create_error(dir, e)),
            }
        }
        Err(create_error(dir, last))
    }

    /// The file to write to.
    pub(super) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Makes the written data durable and puts it in place of the target. A target being
    /// replaced keeps its permissions.
    pub(super) fn commit(self) -> Result<()> {
        let AtomicFile {
            target,
            file,
            mut tmp,
        } = self;
        let fail = |e| io_error(format!("cannot write {}", target.display()), e);
        if let Ok(meta) = std::fs::metadata(&target) {
            // Best effort: if it fails, the file stays private, which is the safe side.
            let _ = file.set_permissions(meta.permissions());
        }
        file.sync_all().map_err(fail)?;
        // Closed before the rename: Windows cannot rename a file that is open.
        drop(file);
        std::fs::rename(&tmp.path, &target).map_err(fail)?;
        tmp.renamed = true;
        sync_dir(parent(&target)).map_err(fail)
    }
}

/// The directory holding `path`: its parent, or `.` for a bare file name.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Makes a rename in `dir` durable. Only Unix can open a directory to `fsync` it.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn create_error(dir: &Path, e: io::Error) -> crate::Error {
    io_error(
        format!("cannot create a temporary file in {}", dir.display()),
        e,
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn commit_replaces_the_target_and_drop_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        std::fs::write(&target, b"old").unwrap();

        let mut file = AtomicFile::create(&target).unwrap();
        file.file().write_all(b"half").unwrap();
        assert_eq!(names(dir.path()).len(), 2);
        drop(file);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out.jsonl"]);

        let mut file = AtomicFile::create(&target).unwrap();
        file.file().write_all(b"new").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["out.jsonl"]);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_private_and_replaced_files_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fresh = dir.path().join("fresh");
        AtomicFile::create(&fresh).unwrap().commit().unwrap();
        assert_eq!(mode(&fresh), 0o600);

        let shared = dir.path().join("shared");
        std::fs::write(&shared, b"").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
        AtomicFile::create(&shared).unwrap().commit().unwrap();
        assert_eq!(mode(&shared), 0o644);
    }

    #[test]
    fn a_missing_directory_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("no/such/dir/out.jsonl");
        let err = AtomicFile::create(&target).err().unwrap();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }
}
