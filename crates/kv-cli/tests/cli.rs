//! End-to-end tests of the `kv` binary: every command, on the embedded default store (a redb
//! file under a temporary `KV_HOME`) and on `memory://`, every error path and its exit code.
//!
//! `memory://` lives as long as one process, so flows of several commands use the default
//! store or a `redb://` file in the temporary directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// A temporary home for the default store, and a runner for the binary.
struct Kv {
    home: tempfile::TempDir,
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    fn lines(&self) -> Vec<String> {
        self.out().lines().map(str::to_owned).collect()
    }

    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }

    /// Exit status 2 with one `kv: error:` line that contains `says`.
    #[track_caller]
    fn fails_with(self, says: &str) -> Self {
        assert_eq!(self.code, 2, "expected exit 2: {self:?}");
        assert!(
            self.stderr.starts_with("kv: error: "),
            "stderr: {}",
            self.stderr
        );
        assert_eq!(self.stderr.lines().count(), 1, "one line: {}", self.stderr);
        assert!(
            self.stderr.contains(says),
            "{says:?} not in {}",
            self.stderr
        );
        self
    }

    #[track_caller]
    fn not_found(self) -> Self {
        assert_eq!(self.code, 1, "expected exit 1: {self:?}");
        assert!(self.stderr.contains("not found"), "stderr: {}", self.stderr);
        assert!(self.stdout.is_empty(), "{self:?}");
        self
    }
}

impl Kv {
    fn new() -> Self {
        Kv {
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn dir(&self) -> &Path {
        self.home.path()
    }

    /// A `redb://` URL of a new file in the temporary directory.
    fn redb(&self, name: &str) -> String {
        format!("redb://{}", self.dir().join(name).display())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kv"));
        cmd.args(args)
            .env("KV_HOME", self.dir())
            .env_remove("KV_STORE")
            // A backtrace, if anything ever printed one, must show up in the checks below.
            .env("RUST_BACKTRACE", "1");
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, b"")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.run_cmd(self.command(args), stdin)
    }

    fn run_cmd(&self, mut cmd: Command, stdin: &[u8]) -> Run {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kv");
        let mut input = child.stdin.take().expect("stdin");
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            // The command may exit without reading stdin.
            let _ = input.write_all(&stdin);
        });
        let output = child.wait_with_output().expect("run kv");
        writer.join().expect("stdin writer");
        let run = Run {
            code: output.status.code().expect("exit code, not a signal"),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
            "{run:?}"
        );
        run
    }
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// put / get / del / ttl

#[test]
fn put_get_del_on_the_default_store() {
    let kv = Kv::new();
    kv.run(&["put", "users", "alice", r#"{"age":30}"#]).ok();
    assert_eq!(
        kv.run(&["get", "users", "alice"]).ok().out(),
        "{\"age\":30}\n"
    );
    // The default store is a redb file in KV_HOME.
    assert!(kv.dir().join("default.redb").exists());
    kv.run(&["del", "users", "alice"]).ok();
    kv.run(&["get", "users", "alice"]).not_found();
    kv.run(&["del", "users", "alice"]).not_found();
    kv.run(&["ttl", "users", "alice"]).not_found();
}

#[test]
fn values_are_stored_exactly_as_given() {
    let kv = Kv::new();
    let big = "  {\"n\": 123456789012345678901234567890, \"f\": 1.50}\n ";
    kv.run(&["put", "c", "big", big]).ok();
    assert_eq!(
        kv.run(&["get", "c", "big"]).ok().out(),
        "{\"n\": 123456789012345678901234567890, \"f\": 1.50}\n"
    );
    // Negative numbers are values, not options.
    kv.run(&["put", "c", "neg", "-5"]).ok();
    assert_eq!(kv.run(&["get", "c", "neg"]).ok().out(), "-5\n");
    // Keys and collections starting with '-' after `--`.
    kv.run(&["put", "--", "-c", "-k", "true"]).ok();
    assert_eq!(kv.run(&["get", "--", "-c", "-k"]).ok().out(), "true\n");
}

#[test]
fn put_reads_stdin() {
    let kv = Kv::new();
    kv.run_with_stdin(&["put", "c", "k", "-"], b"\n[1, \"two\",\n 3]\n\n")
        .ok();
    assert_eq!(kv.run(&["get", "c", "k"]).ok().out(), "[1, \"two\",\n 3]\n");
    kv.run_with_stdin(&["put", "c", "k", "-"], b"")
        .fails_with("invalid JSON value");
    kv.run_with_stdin(&["put", "c", "k", "-"], b"\xff\xfe")
        .fails_with("not UTF-8");
}

#[test]
fn invalid_json_is_rejected() {
    let kv = Kv::new();
    kv.run(&["put", "c", "k", "hello"])
        .fails_with("invalid JSON value")
        .fails_with("quote it");
    kv.run(&["put", "c", "k", "{\"a\":"])
        .fails_with("invalid JSON value: EOF");
    kv.run(&["put", "c", "k", "1 2"])
        .fails_with("invalid JSON value");
    kv.run(&["get", "c", "k"]).not_found();
}

#[test]
fn bad_ttls_are_rejected() {
    let kv = Kv::new();
    for bad in [
        "0", "-1", "-0.5", "nan", "inf", "-inf", "abc", "", "10s", "1e999",
    ] {
        kv.run(&["put", "c", "k", "1", "--ttl", bad])
            .fails_with("invalid --ttl");
        kv.run(&["put", "c", "k", "1", &format!("--ttl={bad}")])
            .fails_with("invalid --ttl");
    }
    kv.run(&["get", "c", "k"]).not_found();
}

#[test]
fn ttl_reports_remaining_seconds_or_none() {
    let kv = Kv::new();
    kv.run(&["put", "c", "forever", "1"]).ok();
    assert_eq!(kv.run(&["ttl", "c", "forever"]).ok().out(), "none\n");
    kv.run(&["put", "c", "hour", "1", "--ttl", "3600"]).ok();
    let secs: f64 = kv
        .run(&["ttl", "c", "hour"])
        .ok()
        .out()
        .trim()
        .parse()
        .unwrap();
    assert!(secs > 3590.0 && secs <= 3600.0, "{secs}");
    // Millisecond precision, no trailing zeros.
    let text = kv.run(&["ttl", "c", "hour"]).ok().out();
    let frac = text.trim().split('.').nth(1).unwrap_or("");
    assert!(frac.len() <= 3 && !frac.ends_with('0'), "{text}");

    kv.run(&["put", "c", "short", "1", "--ttl", "0.3"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    kv.run(&["get", "c", "short"]).not_found();
    kv.run(&["ttl", "c", "short"]).not_found();
}

#[test]
fn empty_collection_is_the_default_collection() {
    let kv = Kv::new();
    kv.run(&["put", "", "k", "\"v\""]).ok();
    assert_eq!(kv.run(&["get", "", "k"]).ok().out(), "\"v\"\n");
    assert_eq!(
        kv.run(&["get", "default_collection", "k"]).ok().out(),
        "\"v\"\n"
    );
}

#[test]
fn single_commands_on_memory() {
    let kv = Kv::new();
    fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--store", "memory://"][..], args].concat()
    }
    kv.run(&with(&["put", "c", "k", "1", "--ttl", "5"])).ok();
    kv.run(&with(&["get", "c", "k"])).not_found();
    kv.run(&with(&["del", "c", "k"])).not_found();
    kv.run(&with(&["ttl", "c", "k"])).not_found();
    assert_eq!(kv.run(&with(&["keys", "c"])).ok().out(), "");
    assert_eq!(kv.run(&with(&["collections"])).ok().out(), "");
    assert_eq!(kv.run(&with(&["clear", "c"])).ok().out(), "0\n");
    assert_eq!(kv.run(&with(&["export"])).ok().out(), "");
    kv.run(&with(&["put", "c", "k", "nope"]))
        .fails_with("invalid JSON");
    // A memory store never touches the default store.
    assert!(!kv.dir().join("default.redb").exists());
    // import + export in one process would need one store: import alone works.
    let line = br#"{"collection":"c","key":"k","value":1,"expires_at":null}"#;
    let r = kv.run_with_stdin(&with(&["import"]), line).ok();
    assert!(r.stderr.contains("imported 1 entry"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------
// store selection and info

#[test]
fn store_errors_exit_2_with_one_line() {
    let kv = Kv::new();
    kv.run(&["--store", "nosuch://x", "get", "c", "k"])
        .fails_with("unknown store scheme `nosuch://`");
    kv.run(&["--store", "just-a-path", "get", "c", "k"])
        .fails_with("not a store URL");
    kv.run(&["--store", "redb:///proc/nope/x.redb", "put", "c", "k", "1"])
        .fails_with("/proc/nope/x.redb");
    kv.run(&["--store", "memory://?max_entries=zero", "info"])
        .fails_with("max_entries");
    // Secrets in URLs never reach the terminal.
    let r = kv
        .run(&[
            "--store",
            "nosuch://user:hunter2@host/?token=hunter2",
            "info",
        ])
        .fails_with("cannot open store");
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
}

#[test]
fn unusable_default_store_names_its_path() {
    let kv = Kv::new();
    // KV_HOME is a file, so its directory cannot be created.
    let file = kv.dir().join("file");
    std::fs::write(&file, b"x").unwrap();
    let mut cmd = kv.command(&["get", "c", "k"]);
    cmd.env("KV_HOME", &file);
    let r = kv.run_cmd(cmd, b"");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("kv: error: "), "{}", r.stderr);
    assert!(
        r.stderr.contains(&file.display().to_string()),
        "{}",
        r.stderr
    );
}

#[test]
fn info_shows_kind_location_source_and_capabilities() {
    let kv = Kv::new();
    let text = kv.run(&["info"]).ok().out();
    let path = kv.dir().join("default.redb");
    assert!(text.contains("redb"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("source:") && text.contains("default"),
        "{text}"
    );
    assert!(text.contains("default collection:"), "{text}");
    for cap in ["ttl", "scan_ordered", "durable", "max_value_len"] {
        assert!(text.contains(cap), "{cap} in {text}");
    }

    let json: Value = serde_json::from_slice(&kv.run(&["info", "--json"]).ok().stdout).unwrap();
    assert_eq!(json["source"], "default");
    assert_eq!(json["capabilities"]["durable"], true);
    assert_eq!(json["default_collection"], "default_collection");

    let json: Value = serde_json::from_slice(
        &kv.run(&["--store", "memory://", "info", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["kind"], "memory");
    assert_eq!(json["source"], "--store");
    assert_eq!(json["capabilities"]["durable"], false);

    // KV_STORE is used when --store is absent; --store wins over it.
    let mut cmd = kv.command(&["info", "--json"]);
    cmd.env("KV_STORE", "memory://?max_entries=5");
    let json: Value = serde_json::from_slice(&kv.run_cmd(cmd, b"").ok().stdout).unwrap();
    assert_eq!(json["source"], "KV_STORE");
    assert_eq!(json["kind"], "memory");
    let mut cmd = kv.command(&["--store", "null://", "info", "--json"]);
    cmd.env("KV_STORE", "memory://");
    let r = kv.run_cmd(cmd, b"");
    if r.code == 0 {
        let json: Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(json["source"], "--store");
    } else {
        // A build without the null store says so.
        r.fails_with("null");
    }
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let kv = Kv::new();
    let r = kv.run(&["nosuch"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = kv.run(&["get", "only-collection"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = kv.run(&["bench", "--ops", "0"]);
    assert_eq!(r.code, 2, "{r:?}");
    let help = kv.run(&["--help"]).ok().out();
    assert!(help.contains("kv put users alice"), "{help}");
    let help = kv.run(&["keys", "--help"]).ok().out();
    assert!(help.contains("JSON string"), "{help}");
    kv.run(&["--version"]).ok();
}

// ---------------------------------------------------------------------------------------
// keys, collections, clear

#[test]
fn keys_prefix_limit_and_awkward_names() {
    let kv = Kv::new();
    for k in [
        "b",
        "a2",
        "a1",
        "a\nnewline",
        "\"quoted",
        "ключ 😀",
        "-dash",
    ] {
        kv.run(&["put", "--", "c", k, "1"]).ok();
    }
    let keys = kv.run(&["keys", "c"]).ok().lines();
    assert_eq!(
        keys,
        [
            "\"\\\"quoted\"",
            "-dash",
            "\"a\\nnewline\"",
            "a1",
            "a2",
            "b",
            "ключ 😀"
        ]
    );
    assert_eq!(
        kv.run(&["keys", "c", "--prefix", "a"]).ok().lines(),
        ["\"a\\nnewline\"", "a1", "a2"]
    );
    assert_eq!(
        kv.run(&["keys", "c", "--prefix", "a", "--limit", "2"])
            .ok()
            .lines(),
        ["\"a\\nnewline\"", "a1"]
    );
    assert_eq!(kv.run(&["keys", "c", "--limit", "0"]).ok().out(), "");
    let json = kv.run(&["keys", "c", "--json"]).ok();
    let decoded: Vec<String> = parse_lines(&json.out())
        .into_iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(decoded.contains(&"a\nnewline".to_owned()), "{decoded:?}");
    assert_eq!(decoded.len(), 7);
    assert_eq!(kv.run(&["keys", "empty"]).ok().out(), "");
}

#[test]
fn collections_and_clear() {
    let kv = Kv::new();
    kv.run(&["put", "users", "a", "1"]).ok();
    kv.run(&["put", "users", "b", "2"]).ok();
    kv.run(&["put", "cache", "x", "3"]).ok();
    kv.run(&["put", "line\nbreak", "x", "3"]).ok();
    assert_eq!(
        kv.run(&["collections"]).ok().lines(),
        ["cache", "\"line\\nbreak\"", "users"]
    );
    assert_eq!(kv.run(&["clear", "users"]).ok().out(), "2\n");
    assert_eq!(kv.run(&["keys", "users"]).ok().out(), "");
    assert_eq!(kv.run(&["clear", "users"]).ok().out(), "0\n");
    assert!(
        !kv.run(&["collections"])
            .ok()
            .lines()
            .contains(&"users".to_owned())
    );
}

#[test]
fn closed_stdout_ends_quietly() {
    let kv = Kv::new();
    let mut lines = String::new();
    for i in 0..20_000 {
        lines.push_str(&format!(
            "{{\"collection\":\"c\",\"key\":\"key-{i:06}\",\"value\":{i},\"expires_at\":null}}\n"
        ));
    }
    kv.run_with_stdin(&["import"], lines.as_bytes()).ok();
    let mut child = kv
        .command(&["keys", "c"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe is closed now: kv must stop without an error message or a panic.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(&first, b"key-000000");
}

// ---------------------------------------------------------------------------------------
// export / import / copy

/// Fills the default store with: plain JSON, a TTL entry, unicode and newline keys, a value
/// with a big integer, and a binary value (only a program or an import can write those).
fn fill(kv: &Kv) {
    kv.run(&["put", "users", "alice", r#"{"age": 30}"#]).ok();
    kv.run(&["put", "users", "bob", "[1,2]", "--ttl", "3600"])
        .ok();
    kv.run(&["put", "unicode", "ключ 😀", "\"значение\""]).ok();
    kv.run(&["put", "unicode", "line\nbreak", "null"]).ok();
    kv.run(&["put", "", "big", "123456789012345678901234567890"])
        .ok();
    let binary =
        br#"{"collection":"bin","key":"blob","value_base64":"AP/+gA==","expires_at":null}"#;
    kv.run_with_stdin(&["import"], binary).ok();
}

/// Export lines without `expires_at` (which moves by microseconds when re-imported),
/// sorted, and the expiring keys.
fn comparable(export: &str) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut expiring = Vec::new();
    for mut v in parse_lines(export) {
        let obj = v.as_object_mut().unwrap();
        let expires = obj.remove("expires_at").unwrap();
        if !expires.is_null() {
            expiring.push(obj["key"].as_str().unwrap().to_owned());
        }
        lines.push(Value::Object(obj.clone()).to_string());
    }
    lines.sort();
    (lines, expiring)
}

#[test]
fn export_format() {
    let kv = Kv::new();
    fill(&kv);
    let out = kv.run(&["export"]).ok();
    assert!(out.stderr.contains("exported 6 entries"), "{}", out.stderr);
    let text = out.out();
    assert_eq!(text.lines().count(), 6, "{text}");
    // Field order and minified values.
    assert!(
        text.contains(
            r#"{"collection":"users","key":"alice","value":{"age":30},"expires_at":null}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#""key":"big","value":123456789012345678901234567890,"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"{"collection":"bin","key":"blob","value_base64":"AP/+gA==","expires_at":null}"#
        ),
        "{text}"
    );
    for v in parse_lines(&text) {
        if v["key"] == "bob" {
            let t = v["expires_at"].as_str().unwrap();
            // RFC 3339 UTC with microseconds.
            assert_eq!(t.len(), "2026-11-22T02:56:14.569741Z".len(), "{t}");
            assert!(t.ends_with('Z'), "{t}");
        }
    }
    // One collection only.
    let users = kv.run(&["export", "--collection", "users"]).ok().out();
    assert_eq!(users.lines().count(), 2);
    // The default collection by its empty name.
    let default = kv.run(&["export", "-c", ""]).ok().out();
    assert!(
        default.contains("\"collection\":\"default_collection\""),
        "{default}"
    );
}

#[test]
fn get_of_a_binary_value_points_to_raw() {
    let kv = Kv::new();
    fill(&kv);
    kv.run(&["get", "bin", "blob"]).fails_with("--raw");
    let raw = kv.run(&["get", "--raw", "bin", "blob"]).ok();
    assert_eq!(raw.stdout, [0x00, 0xff, 0xfe, 0x80]);
}

#[test]
fn export_import_round_trip() {
    let kv = Kv::new();
    fill(&kv);
    let file = kv.dir().join("backup.jsonl");
    let file_arg = file.to_str().unwrap();
    let r = kv.run(&["export", "-o", file_arg]).ok();
    assert!(r.stdout.is_empty());
    let exported = std::fs::read_to_string(&file).unwrap();
    // No temporary file is left next to the export.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(kv.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".kv-export-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let other = kv.redb("other.redb");
    let r = kv.run(&["--store", &other, "import", "-i", file_arg]).ok();
    // Exactly the summary: no progress bar is drawn when stderr is not a terminal.
    assert_eq!(r.stderr, "kv: imported 6 entries, skipped 0 expired\n");
    let again = kv.run(&["--store", &other, "export"]).ok().out();
    let (a, a_exp) = comparable(&exported);
    let (b, b_exp) = comparable(&again);
    assert_eq!(a, b);
    assert_eq!(a_exp, ["bob"]);
    assert_eq!(b_exp, ["bob"]);
    // The TTL survived as remaining time.
    let secs: f64 = kv
        .run(&["--store", &other, "ttl", "users", "bob"])
        .ok()
        .out()
        .trim()
        .parse()
        .unwrap();
    assert!(secs > 3500.0 && secs <= 3600.0, "{secs}");
    // Values are byte for byte the same.
    assert_eq!(
        kv.run(&["--store", &other, "get", "", "big"]).ok().out(),
        "123456789012345678901234567890\n"
    );
    assert_eq!(
        kv.run(&["--store", &other, "get", "unicode", "line\nbreak"])
            .ok()
            .out(),
        "null\n"
    );

    // Importing from stdin with `-` works the same.
    let third = kv.redb("third.redb");
    kv.run_with_stdin(
        &["--store", &third, "import", "-i", "-"],
        exported.as_bytes(),
    )
    .ok();
    let (c, _) = comparable(&kv.run(&["--store", &third, "export"]).ok().out());
    assert_eq!(a, c);
}

#[test]
fn import_skips_expired_entries_and_reports_bad_lines() {
    let kv = Kv::new();
    let input = concat!(
        r#"{"collection":"c","key":"old","value":1,"expires_at":"2001-01-01T00:00:00.000000Z"}"#,
        "\n\n",
        r#"{"collection":"c","key":"new","value":2,"expires_at":"2999-01-01T00:00:00Z"}"#,
        "\n",
        r#"{"collection":"c","key":"plain","value":{"x":[1,2]},"expires_at":null,"created_at":"ignored"}"#,
        "\r\n"
    );
    let r = kv.run_with_stdin(&["import"], input.as_bytes()).ok();
    assert!(
        r.stderr.contains("imported 2 entries, skipped 1 expired"),
        "{}",
        r.stderr
    );
    kv.run(&["get", "c", "old"]).not_found();
    assert_eq!(kv.run(&["get", "c", "plain"]).ok().out(), "{\"x\":[1,2]}\n");

    let bad = concat!(
        r#"{"collection":"d","key":"a","value":1,"expires_at":null}"#,
        "\n",
        r#"{"collection":"d","key":"b","value":2,"expires_at":null}"#,
        "\n",
        r#"{"collection":"d","key":"c","value":}"#,
        "\n",
        r#"{"collection":"d","key":"e","value":4,"expires_at":null}"#,
        "\n"
    );
    kv.run_with_stdin(&["import"], bad.as_bytes())
        .fails_with("line 3")
        .fails_with("2 entries before it imported");
    assert_eq!(kv.run(&["keys", "d"]).ok().lines(), ["a", "b"]);

    for (line, says) in [
        ("not json", "invalid JSON"),
        (
            r#"{"collection":"d","key":"k"}"#,
            "neither value nor value_base64",
        ),
        (
            r#"{"collection":"d","key":"k","value_base64":"@@"}"#,
            "base64",
        ),
        (
            r#"{"collection":"d","key":"k","value":1,"expires_at":"tomorrow"}"#,
            "expires_at",
        ),
    ] {
        kv.run_with_stdin(&["import"], line.as_bytes())
            .fails_with("line 1")
            .fails_with(says);
    }
    let missing = kv.dir().join("missing.jsonl");
    kv.run(&["import", "-i", missing.to_str().unwrap()])
        .fails_with("cannot open");
}

#[test]
fn export_to_an_unwritable_place_fails_cleanly() {
    let kv = Kv::new();
    kv.run(&["put", "c", "k", "1"]).ok();
    kv.run(&["export", "-o", "/proc/nope/out.jsonl"])
        .fails_with("/proc/nope");
}

#[test]
fn copy_between_stores() {
    let kv = Kv::new();
    fill(&kv);
    let src = kv.redb("default.redb");
    let dst = kv.redb("copy.redb");
    let r = kv.run(&["copy", &src, &dst]).ok();
    assert!(
        r.stderr.contains("copied 6 entries in 4 collections"),
        "{}",
        r.stderr
    );
    let (a, _) = comparable(&kv.run(&["export"]).ok().out());
    let (b, b_exp) = comparable(&kv.run(&["--store", &dst, "export"]).ok().out());
    assert_eq!(a, b);
    assert_eq!(b_exp, ["bob"]);

    // memory:// → a redb file (a memory store starts empty in every process).
    let from_memory = kv.redb("from-memory.redb");
    let r = kv.run(&["copy", "memory://", &from_memory]).ok();
    assert!(r.stderr.contains("copied 0 entries"), "{}", r.stderr);
    // redb → memory:// reads everything (a dry run).
    let r = kv.run(&["copy", &dst, "memory://"]).ok();
    assert!(r.stderr.contains("copied 6 entries"), "{}", r.stderr);

    kv.run(&["copy", &dst, &dst]).fails_with("same store");
    kv.run(&["copy", "nosuch://", &dst])
        .fails_with("unknown store scheme");
    kv.run(&["--store", "memory://", "copy", &src, &dst])
        .fails_with("leave out --store");
}

// ---------------------------------------------------------------------------------------
// bench

#[test]
fn bench_json_lines() {
    let kv = Kv::new();
    for store in [None, Some("memory://")] {
        let mut args = vec!["bench", "--ops", "200", "--json", "--concurrency", "2"];
        if let Some(s) = store {
            args.splice(0..0, ["--store", s]);
        }
        let r = kv.run(&args).ok();
        let lines = r.lines();
        let ops: Vec<&str> = lines
            .iter()
            .map(|l| {
                // The four required fields come first, in this order.
                assert!(l.starts_with("{\"op\":\""), "{l}");
                let a = l.find("\"ops_per_sec\":").unwrap();
                let b = l.find("\"p50_us\":").unwrap();
                let c = l.find("\"p99_us\":").unwrap();
                assert!(a < b && b < c, "{l}");
                l.split('"').nth(3).unwrap()
            })
            .collect();
        assert_eq!(
            ops,
            ["put", "get", "get_many", "put_many", "scan", "delete"]
        );
        for v in parse_lines(&r.out()) {
            assert!(v["ops_per_sec"].as_f64().unwrap() > 0.0, "{v}");
            assert!(v["p50_us"].as_f64().unwrap() >= 0.0, "{v}");
            assert!(v["p99_us"].as_f64().unwrap() >= v["p50_us"].as_f64().unwrap());
        }
    }
    // The benchmark collection is gone afterwards.
    let collections = kv.run(&["collections"]).ok().out();
    assert!(!collections.contains("kv-bench"), "{collections}");
}

#[test]
fn bench_table() {
    let kv = Kv::new();
    let r = kv
        .run(&[
            "--store",
            "memory://",
            "bench",
            "--ops",
            "300",
            "--value-size",
            "10",
        ])
        .ok();
    let text = r.out();
    assert!(text.contains("ops/s") && text.contains("p99"), "{text}");
    for op in ["put", "get", "get_many", "put_many", "scan", "delete"] {
        assert!(text.lines().any(|l| l.starts_with(op)), "{op}: {text}");
    }
}

#[test]
fn interrupted_bench_clears_its_collection() {
    let kv = Kv::new();
    kv.run(&["put", "keep", "k", "1"]).ok();
    // Long enough on a durable store to be interrupted in its put phase.
    let child = kv
        .command(&["bench", "--ops", "1000000", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(stderr, "kv: interrupted\n");
    assert_eq!(kv.run(&["collections"]).ok().lines(), ["keep"]);
}

// ---------------------------------------------------------------------------------------
// search

#[test]
fn search_by_conditions_glob_and_regex() {
    let kv = Kv::new();
    for (key, value) in [
        ("user:1", r#"{"name":"Alice","age":30,"city":"Paris"}"#),
        ("user:2", r#"{"name":"Bob","age":17,"city":"Paris"}"#),
        ("user:3", r#"{"name":"Alma","age":45,"city":"Oslo"}"#),
        ("admin", r#"{"name":"Root","age":99}"#),
    ] {
        kv.run(&["put", "users", key, value]).ok();
    }
    let keys = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["search", "users", "--keys"];
        all.extend_from_slice(args);
        kv.run(&all).ok().lines()
    };
    assert_eq!(
        keys(&["--where", "age>=18", "--where", "city=Paris"]),
        ["user:1"]
    );
    assert_eq!(keys(&["--glob", "user:*"]), ["user:1", "user:2", "user:3"]);
    assert_eq!(keys(&["--regex", "^user:[13]$"]), ["user:1", "user:3"]);
    assert_eq!(keys(&["--where", "name~^Al"]), ["user:1", "user:3"]);
    assert_eq!(keys(&["--where", "city in Oslo,Rome"]), ["user:3"]);
    assert_eq!(
        keys(&["--where", "city?", "--limit", "2"]),
        ["user:1", "user:2"]
    );
    assert!(keys(&["--where", "age>100"]).is_empty());

    // Full records are `kv export` lines, so they import elsewhere.
    let run = kv.run(&["search", "users", "--where", "age<18"]).ok();
    let lines = parse_lines(&run.out());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["collection"], "users");
    assert_eq!(lines[0]["key"], "user:2");
    assert_eq!(lines[0]["value"]["name"], "Bob");
    let copy = kv.redb("copy.redb");
    kv.run_with_stdin(&["--store", &copy, "import"], run.out().as_bytes())
        .ok();
    assert_eq!(
        kv.run(&["--store", &copy, "get", "users", "user:2"])
            .ok()
            .out(),
        "{\"name\":\"Bob\",\"age\":17,\"city\":\"Paris\"}\n"
    );
}

#[test]
fn search_rejects_bad_patterns_and_conditions() {
    let kv = Kv::new();
    kv.run(&["search", "users", "--where", "age"])
        .fails_with("invalid condition");
    kv.run(&["search", "users", "--regex", "("])
        .fails_with("invalid key regex");
    kv.run(&["search", "users", "--glob", "[a"])
        .fails_with("invalid glob pattern");
    kv.run(&["search", "users", "--where", "name ~ ("])
        .fails_with("invalid field");
}
