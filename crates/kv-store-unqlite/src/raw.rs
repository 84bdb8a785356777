//! A small safe wrapper over UnQLite's C API (`unqlite::ffi`), with exactly what the store
//! needs: open a file, fetch / store / delete a key, transactions, and a walk over every entry.
//!
//! Why not the unqlite crate's own wrapper: its `UnQLite::open` (behind `UnQLite::create`)
//! starts from `MaybeUninit::uninit().assume_init()` for the handle pointer, which is undefined
//! behaviour, and release builds turn it into a broken open (the store's conformance suite
//! aborted with "memory allocation of 7959317830182073524 bytes failed"). Its cursor does the
//! same, it panics on some C errors, and it takes every error during a walk for the end of the
//! walk. The crate still compiles and links UnQLite's C amalgamation; this module calls it
//! directly and is the only place in the crate with `unsafe` code.
//!
//! Every C call is made through `&mut Db`, so the borrow checker guarantees that one call at a
//! time uses a handle, that no fetch or write happens while a walk holds a cursor, and that a
//! cursor never outlives its database. [`Db`] holds a raw pointer and so is neither `Send` nor
//! `Sync`: the store creates it on its worker thread and never lets it leave.
//!
//! Public so that programs (and kv's benchmarks) can use UnQLite's key-value API soundly
//! without the crate's wrapper:
//!
//! ```
//! use kv_store_unqlite::raw::Db;
//!
//! let dir = tempfile::tempdir()?;
//! let mut db = Db::open(dir.path().join("kv.db").to_str().unwrap())?;
//! db.begin()?;
//! db.store(b"k", b"v")?;
//! db.commit()?;
//! assert_eq!(db.fetch(b"k")?, Some(b"v".to_vec()));
//! let mut seen = Vec::new();
//! db.walk::<kv_store_unqlite::raw::Error>(|_| true, |k, v| {
//!     seen.push((k.to_vec(), v.to_vec()));
//!     Ok(true)
//! })?;
//! assert_eq!(seen, [(b"k".to_vec(), b"v".to_vec())]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::{CString, c_char, c_int, c_uint, c_void};
use std::fmt;
use std::ptr::{self, NonNull};

use unqlite::ffi;

// bindgen types some of these as `u32`; the C functions return and take `int`.
const OK: c_int = ffi::UNQLITE_OK as c_int;
const NOTFOUND: c_int = ffi::UNQLITE_NOTFOUND as c_int;
const DONE: c_int = ffi::UNQLITE_DONE as c_int;
const CORRUPT: c_int = ffi::UNQLITE_CORRUPT as c_int;
const INVALID: c_int = ffi::UNQLITE_INVALID as c_int;
const CONFIG_ERR_LOG: c_int = ffi::UNQLITE_CONFIG_ERR_LOG as c_int;
const OPEN_CREATE: c_uint = ffi::UNQLITE_OPEN_CREATE as c_uint;

/// A failed UnQLite call: the operation, UnQLite's result code and the text UnQLite logged
/// for it, if any. Never contains keys or values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    op: &'static str,
    code: c_int,
    log: Option<String>,
}

impl Error {
    fn new(op: &'static str, code: c_int, log: Option<String>) -> Self {
        Error { op, code, log }
    }

    /// An argument UnQLite cannot take, refused before calling it.
    fn invalid(op: &'static str, why: &str) -> Self {
        Error::new(op, INVALID, Some(why.to_owned()))
    }

    /// True for `UNQLITE_CORRUPT`: a damaged database. (UnQLite also returns it for a misused
    /// handle, which `Db` rules out.)
    pub fn is_corrupt(&self) -> bool {
        self.code == CORRUPT
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.op, describe(self.code), self.code)?;
        if let Some(log) = &self.log {
            write!(f, ": {log}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// What an UnQLite result code means (the comments of `unqlite.h`).
fn describe(code: c_int) -> &'static str {
    match code {
        ffi::UNQLITE_NOMEM => "out of memory",
        ffi::UNQLITE_ABORT => "another thread has released this instance",
        ffi::UNQLITE_IOERR => "I/O error",
        ffi::UNQLITE_CORRUPT => "corrupt database",
        ffi::UNQLITE_LOCKED => "forbidden operation",
        ffi::UNQLITE_BUSY => "the database file is locked",
        ffi::UNQLITE_DONE => "operation done",
        ffi::UNQLITE_PERM => "permission error",
        ffi::UNQLITE_NOTIMPLEMENTED => "not implemented by the storage engine",
        ffi::UNQLITE_NOTFOUND => "no such record",
        ffi::UNQLITE_NOOP => "no such method",
        ffi::UNQLITE_INVALID => "invalid parameter",
        ffi::UNQLITE_EOF => "end of input",
        ffi::UNQLITE_UNKNOWN => "unknown configuration option",
        ffi::UNQLITE_LIMIT => "database limit reached",
        ffi::UNQLITE_EXISTS => "record exists",
        ffi::UNQLITE_EMPTY => "empty record",
        ffi::UNQLITE_FULL => "full database",
        ffi::UNQLITE_CANTOPEN => "unable to open the database file",
        ffi::UNQLITE_READ_ONLY => "read-only storage engine",
        ffi::UNQLITE_LOCKERR => "locking protocol error",
        _ => "unknown error",
    }
}

/// An open UnQLite database (its default on-disk hash engine). Closed when dropped; a
/// transaction still open then is rolled back, never committed.
#[derive(Debug)]
pub struct Db {
    /// Valid from a successful `unqlite_open` until `unqlite_close` in `Drop`.
    handle: NonNull<ffi::unqlite>,
    /// How many bytes of UnQLite's error log (which only grows) were already reported.
    log_seen: usize,
    /// Inside `begin` … `commit`/`rollback`.
    in_transaction: bool,
}

impl Db {
    /// Opens the database file `path`, creating it if missing. UnQLite touches the file only
    /// on the first access, so most problems with the path (a directory, no permission) show up
    /// on the first read or write, which the store makes at once.
    pub fn open(path: &str) -> Result<Db, Error> {
        let name = c_path(path)?;
        let mut handle: *mut ffi::unqlite = ptr::null_mut();
        // SAFETY: `&mut handle` is a valid, initialised out-pointer for the new handle and
        // `name` a NUL-terminated string alive for the whole call (UnQLite copies the name into
        // its pager). On failure `unqlite_open` frees what it allocated and leaves `handle`
        // null; on success `handle` is a database handle owned by us alone.
        let rc = unsafe { ffi::unqlite_open(&mut handle, name.as_ptr(), OPEN_CREATE) };
        if rc != OK {
            return Err(Error::new("open", rc, None));
        }
        let handle = NonNull::new(handle).ok_or_else(|| {
            Error::new(
                "open",
                CORRUPT,
                Some("UnQLite returned no handle".to_owned()),
            )
        })?;
        Ok(Db {
            handle,
            log_seen: 0,
            in_transaction: false,
        })
    }

    /// The value of `key`, or `None` if there is none.
    pub fn fetch(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let key_len = key_len("fetch", key)?;
        let mut size: ffi::unqlite_int64 = 0;
        // SAFETY: the handle is valid (see `handle`); `key` is readable for `key_len` bytes;
        // a null buffer asks for the value's length only, written to `size`.
        let rc = unsafe {
            ffi::unqlite_kv_fetch(
                self.handle.as_ptr(),
                key.as_ptr().cast::<c_void>(),
                key_len,
                ptr::null_mut(),
                &mut size,
            )
        };
        match rc {
            OK => {}
            NOTFOUND => return Ok(None),
            rc => return Err(self.error("fetch", rc)),
        }
        let len = usize::try_from(size)
            .map_err(|_| Error::invalid("fetch", "UnQLite reported a negative value length"))?;
        if len == 0 {
            // A non-null buffer of capacity 0 would make UnQLite report a short buffer.
            return Ok(Some(Vec::new()));
        }
        // The value cannot change between the two calls: this `Db` is its handle's only owner,
        // `&mut self` keeps any other call on it out, and the store's lock file keeps every
        // other store (in this process or another) away from the file. Memory safety does not
        // depend on it: UnQLite never writes more than `size` bytes into the buffer.
        let mut buf = vec![0u8; len];
        let mut written = size;
        // SAFETY: as above; `buf` is writable for `size` bytes and `written` tells UnQLite so.
        // It copies at most that many bytes (a fixed-size blob over `buf`) and sets `written`
        // to the number copied.
        let rc = unsafe {
            ffi::unqlite_kv_fetch(
                self.handle.as_ptr(),
                key.as_ptr().cast::<c_void>(),
                key_len,
                buf.as_mut_ptr().cast::<c_void>(),
                &mut written,
            )
        };
        match rc {
            OK if written == size => Ok(Some(buf)),
            OK => Err(Error::invalid(
                "fetch",
                "the value changed size between two reads",
            )),
            rc => Err(self.error("fetch", rc)),
        }
    }

    /// Sets the value of `key` (an empty key is an UnQLite error).
    pub fn store(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let key_len = key_len("store", key)?;
        let value_len = ffi::unqlite_int64::try_from(value.len())
            .map_err(|_| Error::invalid("store", "the value is too long"))?;
        // SAFETY: the handle is valid; `key` and `value` are readable for `key_len` and
        // `value_len` bytes, which UnQLite copies before returning.
        let rc = unsafe {
            ffi::unqlite_kv_store(
                self.handle.as_ptr(),
                key.as_ptr().cast::<c_void>(),
                key_len,
                value.as_ptr().cast::<c_void>(),
                value_len,
            )
        };
        self.check("store", rc)
    }

    /// Removes `key`; a key that is not there is not an error.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), Error> {
        let key_len = key_len("delete", key)?;
        // SAFETY: the handle is valid; `key` is readable for `key_len` bytes.
        let rc = unsafe {
            ffi::unqlite_kv_delete(self.handle.as_ptr(), key.as_ptr().cast::<c_void>(), key_len)
        };
        match rc {
            NOTFOUND => Ok(()),
            rc => self.check("delete", rc),
        }
    }

    /// Starts a write transaction.
    pub fn begin(&mut self) -> Result<(), Error> {
        // SAFETY: the handle is valid.
        let rc = unsafe { ffi::unqlite_begin(self.handle.as_ptr()) };
        self.check("begin", rc)?;
        self.in_transaction = true;
        Ok(())
    }

    /// Commits the transaction (journal and file synced); without one, does nothing. If the
    /// commit fails, the transaction is rolled back.
    pub fn commit(&mut self) -> Result<(), Error> {
        // SAFETY: the handle is valid.
        let rc = unsafe { ffi::unqlite_commit(self.handle.as_ptr()) };
        if rc != OK {
            let err = self.error("commit", rc);
            let _ = self.rollback();
            return Err(err);
        }
        self.in_transaction = false;
        Ok(())
    }

    /// Discards the writes of the transaction.
    pub fn rollback(&mut self) -> Result<(), Error> {
        // SAFETY: the handle is valid.
        let rc = unsafe { ffi::unqlite_rollback(self.handle.as_ptr()) };
        self.in_transaction = false;
        self.check("rollback", rc)
    }

    /// Walks every entry, in UnQLite's (hash) order: for each key `wanted` accepts, reads the
    /// value and calls `visit(key, value)`, until `visit` returns `Ok(false)` or an error.
    /// Values of unwanted keys are never read.
    pub fn walk<E: From<Error>>(
        &mut self,
        mut wanted: impl FnMut(&[u8]) -> bool,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, E>,
    ) -> Result<(), E> {
        let mut cursor = Cursor::new(self)?;
        let mut more = cursor.first()?;
        while more {
            let key = cursor.key()?;
            if wanted(&key) {
                let value = cursor.value()?;
                if !visit(&key, &value)? {
                    break;
                }
            }
            more = cursor.next()?;
        }
        Ok(())
    }

    fn check(&mut self, op: &'static str, rc: c_int) -> Result<(), Error> {
        if rc == OK {
            Ok(())
        } else {
            Err(self.error(op, rc))
        }
    }

    /// The error for result `rc` of `op`, with what UnQLite logged since the last error.
    fn error(&mut self, op: &'static str, rc: c_int) -> Error {
        let log = self.new_log_text();
        Error::new(op, rc, log)
    }

    /// The part of UnQLite's error log not reported yet (the log only grows), one line per
    /// message joined with "; ".
    fn new_log_text(&mut self) -> Option<String> {
        let mut text: *const c_char = ptr::null();
        let mut len: c_int = 0;
        // SAFETY: the handle is valid; UNQLITE_CONFIG_ERR_LOG reads exactly two variadic
        // arguments, a `const char **` and an `int *`, and these are valid out-pointers of
        // those types.
        let rc = unsafe {
            ffi::unqlite_config(
                self.handle.as_ptr(),
                CONFIG_ERR_LOG,
                &mut text as *mut *const c_char,
                &mut len as *mut c_int,
            )
        };
        let len = usize::try_from(len).ok()?;
        if rc != OK || text.is_null() || len == 0 {
            return None;
        }
        // SAFETY: UnQLite pointed `text` at its error-log buffer, which holds `len` bytes
        // (plus a NUL) and stays unchanged until the next call on this handle; the bytes are
        // copied out before that (`&mut self` rules out any call in between).
        let log = unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len) };
        let fresh = log.get(self.log_seen..).unwrap_or(log);
        self.log_seen = len;
        let lines: Vec<String> = String::from_utf8_lossy(fresh)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if self.in_transaction {
            // `unqlite_close` would commit it.
            let _ = self.rollback();
        }
        // SAFETY: the handle is valid and this is its last use: `Db` owns it alone and is
        // being dropped, and no cursor can be alive (a cursor borrows the `Db` mutably). A
        // failure cannot be reported from `drop`; UnQLite frees the handle either way.
        let _ = unsafe { ffi::unqlite_close(self.handle.as_ptr()) };
    }
}

/// `path` as the C string `unqlite_open` takes. UnQLite reads "", ":mem:" and ":memory:" (any
/// case) as an in-memory database; a file of that name is meant here.
fn c_path(path: &str) -> Result<CString, Error> {
    let path = if path.is_empty() {
        return Err(Error::invalid("open", "the path is empty"));
    } else if [":mem:", ":memory:"]
        .iter()
        .any(|m| path.eq_ignore_ascii_case(m))
    {
        format!("./{path}")
    } else {
        path.to_owned()
    };
    CString::new(path).map_err(|_| Error::invalid("open", "the path contains a NUL byte"))
}

/// The length of `key` as UnQLite takes it (a C `int`).
fn key_len(op: &'static str, key: &[u8]) -> Result<c_int, Error> {
    c_int::try_from(key.len()).map_err(|_| Error::invalid(op, "the key is too long"))
}

/// A cursor of one [`Db`], released when dropped. It borrows the database mutably, so nothing
/// else uses the database while it exists and it cannot outlive it.
struct Cursor<'db> {
    db: &'db mut Db,
    /// Valid from a successful `unqlite_kv_cursor_init` until the release in `Drop`.
    raw: NonNull<ffi::unqlite_kv_cursor>,
}

impl<'db> Cursor<'db> {
    fn new(db: &'db mut Db) -> Result<Self, Error> {
        let mut raw: *mut ffi::unqlite_kv_cursor = ptr::null_mut();
        // SAFETY: the handle is valid; `&mut raw` is a valid, initialised out-pointer.
        let rc = unsafe { ffi::unqlite_kv_cursor_init(db.handle.as_ptr(), &mut raw) };
        db.check("open a cursor", rc)?;
        let raw = NonNull::new(raw).ok_or_else(|| {
            Error::new(
                "open a cursor",
                CORRUPT,
                Some("UnQLite returned no cursor".to_owned()),
            )
        })?;
        Ok(Cursor { db, raw })
    }

    /// Moves to the first entry; false if there is none.
    fn first(&mut self) -> Result<bool, Error> {
        // SAFETY: the cursor is valid (see `raw`).
        let rc = unsafe { ffi::unqlite_kv_cursor_first_entry(self.raw.as_ptr()) };
        self.landed("walk", rc)
    }

    /// Moves to the next entry; false at the end.
    fn next(&mut self) -> Result<bool, Error> {
        // SAFETY: the cursor is valid.
        let rc = unsafe { ffi::unqlite_kv_cursor_next_entry(self.raw.as_ptr()) };
        self.landed("walk", rc)
    }

    /// Whether a move with result `rc` reached an entry. UnQLite reports the end with
    /// UNQLITE_DONE; anything else but OK is an error (an I/O error must not pass for the end).
    fn landed(&mut self, op: &'static str, rc: c_int) -> Result<bool, Error> {
        match rc {
            DONE => Ok(false),
            OK => {
                // SAFETY: the cursor is valid.
                let valid = unsafe { ffi::unqlite_kv_cursor_valid_entry(self.raw.as_ptr()) };
                Ok(valid != 0)
            }
            rc => Err(self.db.error(op, rc)),
        }
    }

    /// The key of the current entry (the cursor must be on one).
    fn key(&mut self) -> Result<Vec<u8>, Error> {
        let mut size: c_int = 0;
        // SAFETY: the cursor is valid and on an entry; a null buffer asks for the key's
        // length only, written to `size`.
        let rc =
            unsafe { ffi::unqlite_kv_cursor_key(self.raw.as_ptr(), ptr::null_mut(), &mut size) };
        self.db.check("read a key", rc)?;
        let Some(mut buf) = buffer(size) else {
            return Ok(Vec::new());
        };
        let mut written = size;
        // SAFETY: `buf` is writable for `size` bytes and `written` tells UnQLite so; it copies
        // at most that many (a fixed-size blob over `buf`) and sets `written` to the number
        // copied. The entry cannot change in between: the cursor holds the `Db` mutably.
        let rc = unsafe {
            ffi::unqlite_kv_cursor_key(
                self.raw.as_ptr(),
                buf.as_mut_ptr().cast::<c_void>(),
                &mut written,
            )
        };
        self.db.check("read a key", rc)?;
        same_size("read a key", written, size)?;
        Ok(buf)
    }

    /// The value of the current entry (the cursor must be on one).
    fn value(&mut self) -> Result<Vec<u8>, Error> {
        let mut size: ffi::unqlite_int64 = 0;
        // SAFETY: as in `key`, for the value.
        let rc =
            unsafe { ffi::unqlite_kv_cursor_data(self.raw.as_ptr(), ptr::null_mut(), &mut size) };
        self.db.check("read a value", rc)?;
        let Some(mut buf) = buffer(size) else {
            return Ok(Vec::new());
        };
        let mut written = size;
        // SAFETY: as in `key`: `buf` is writable for `size` bytes, UnQLite copies at most
        // `written` = `size` bytes and reports the number copied.
        let rc = unsafe {
            ffi::unqlite_kv_cursor_data(
                self.raw.as_ptr(),
                buf.as_mut_ptr().cast::<c_void>(),
                &mut written,
            )
        };
        self.db.check("read a value", rc)?;
        same_size("read a value", written, size)?;
        Ok(buf)
    }
}

impl Drop for Cursor<'_> {
    fn drop(&mut self) {
        // SAFETY: handle and cursor are valid, the cursor belongs to this handle and is not
        // used after this call. Releasing only frees memory; there is nothing to report.
        let _ =
            unsafe { ffi::unqlite_kv_cursor_release(self.db.handle.as_ptr(), self.raw.as_ptr()) };
    }
}

/// A zeroed buffer of `size` bytes, or `None` for no bytes (or a negative size, which UnQLite
/// never reports): UnQLite fails a copy into a buffer of capacity 0.
fn buffer<N: TryInto<usize>>(size: N) -> Option<Vec<u8>> {
    let len: usize = size.try_into().ok()?;
    (len > 0).then(|| vec![0u8; len])
}

/// Checks that UnQLite copied the whole entry it announced.
fn same_size<N: PartialEq>(op: &'static str, written: N, size: N) -> Result<(), Error> {
    if written == size {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            "the entry changed size between two reads",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.db");
        let db = Db::open(path.to_str().unwrap()).unwrap();
        (dir, db)
    }

    #[test]
    fn put_get_delete_missing() {
        let (_dir, mut db) = temp_db();
        assert_eq!(db.fetch(b"k").unwrap(), None);
        db.store(b"k", b"value").unwrap();
        db.store(b"empty", b"").unwrap();
        assert_eq!(db.fetch(b"k").unwrap().as_deref(), Some(&b"value"[..]));
        assert_eq!(db.fetch(b"empty").unwrap().as_deref(), Some(&b""[..]));
        db.store(b"k", b"longer value").unwrap();
        assert_eq!(
            db.fetch(b"k").unwrap().as_deref(),
            Some(&b"longer value"[..])
        );
        db.delete(b"k").unwrap();
        assert_eq!(db.fetch(b"k").unwrap(), None);
        db.delete(b"k").unwrap(); // not there: fine
        db.delete(b"never").unwrap();
    }

    #[test]
    fn large_value_round_trips() {
        let (_dir, mut db) = temp_db();
        let value: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        db.begin().unwrap();
        db.store(b"big", &value).unwrap();
        db.commit().unwrap();
        assert_eq!(db.fetch(b"big").unwrap(), Some(value));
    }

    #[test]
    fn empty_key_is_an_error() {
        let (_dir, mut db) = temp_db();
        let e = db.store(b"", b"v").unwrap_err();
        assert_eq!(e.code, ffi::UNQLITE_EMPTY);
        assert!(e.to_string().contains("Empty key"), "{e}");
        assert!(db.fetch(b"").is_err());
    }

    #[test]
    fn committed_writes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.db");
        let path = path.to_str().unwrap();
        let mut db = Db::open(path).unwrap();
        db.begin().unwrap();
        db.store(b"a", b"1").unwrap();
        db.commit().unwrap();
        drop(db);
        let mut db = Db::open(path).unwrap();
        assert_eq!(db.fetch(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn rollback_discards() {
        let (_dir, mut db) = temp_db();
        db.begin().unwrap();
        db.store(b"kept", b"1").unwrap();
        db.commit().unwrap();
        db.begin().unwrap();
        db.store(b"gone", b"2").unwrap();
        db.delete(b"kept").unwrap();
        db.rollback().unwrap();
        assert_eq!(db.fetch(b"gone").unwrap(), None);
        assert_eq!(db.fetch(b"kept").unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn an_open_transaction_is_rolled_back_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.db");
        let path = path.to_str().unwrap();
        let mut db = Db::open(path).unwrap();
        db.begin().unwrap();
        db.store(b"kept", b"1").unwrap();
        db.commit().unwrap();
        db.begin().unwrap();
        db.store(b"gone", b"2").unwrap();
        drop(db);
        let mut db = Db::open(path).unwrap();
        assert_eq!(db.fetch(b"gone").unwrap(), None);
        assert_eq!(db.fetch(b"kept").unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn walk_sees_every_entry() {
        let (_dir, mut db) = temp_db();
        let mut want: Vec<(Vec<u8>, Vec<u8>)> = (0..500u32)
            .map(|i| (format!("key{i}").into_bytes(), vec![i as u8; i as usize]))
            .collect();
        db.begin().unwrap();
        for (k, v) in &want {
            db.store(k, v).unwrap();
        }
        db.commit().unwrap();
        let mut seen = Vec::new();
        db.walk::<Error>(
            |_| true,
            |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                Ok(true)
            },
        )
        .unwrap();
        seen.sort();
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn walk_filters_and_stops() {
        let (_dir, mut db) = temp_db();
        for k in [&b"a1"[..], b"a2", b"b1", b"b2", b"b3"] {
            db.store(k, b"v").unwrap();
        }
        let mut seen = Vec::new();
        db.walk::<Error>(
            |k| k.starts_with(b"b"),
            |k, _| {
                seen.push(k.to_vec());
                Ok(seen.len() < 2)
            },
        )
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|k| k.starts_with(b"b")));
        // The visitor's error ends the walk and comes back unchanged.
        let e = db
            .walk(|_| true, |_, _| Err(Error::invalid("test", "stop")))
            .unwrap_err();
        assert_eq!(e, Error::invalid("test", "stop"));
        // Usable after the walks: their cursors were released.
        db.store(b"c", b"v").unwrap();
    }

    #[test]
    fn walk_of_an_empty_database() {
        let (_dir, mut db) = temp_db();
        let mut n = 0;
        db.walk::<Error>(
            |_| true,
            |_, _| {
                n += 1;
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn a_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        // UnQLite opens the file on first use, so the error may come from open or from the
        // first access; either way it is an error.
        let failed = match Db::open(path) {
            Err(_) => true,
            Ok(mut db) => db.fetch(b"k").is_err() && db.store(b"k", b"v").is_err(),
        };
        assert!(failed);
    }

    #[test]
    fn bad_paths_are_errors() {
        assert!(Db::open("").is_err());
        assert!(Db::open("a\0b").is_err());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing/child.db");
        let failed = match Db::open(missing.to_str().unwrap()) {
            Err(_) => true,
            Ok(mut db) => db.store(b"k", b"v").is_err(),
        };
        assert!(failed);
    }

    #[test]
    fn memory_names_are_file_names() {
        for name in [":mem:", ":MEMORY:"] {
            assert_eq!(c_path(name).unwrap().to_str().unwrap(), format!("./{name}"));
        }
        assert_eq!(
            c_path("data/kv.db").unwrap().to_str().unwrap(),
            "data/kv.db"
        );
        assert!(c_path("").is_err());
    }
}
