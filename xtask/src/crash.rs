//! `cargo xtask crash STORE|all [--rounds N] [--seed S]`: kill a writer with SIGKILL at a
//! random moment, reopen the store, check every acknowledged write (see RELIABILITY.md).
//!
//! The child is `kv-crash-writer` (package kv-tests): `write` prints an ack log, `verify`
//! replays it against the reopened store and prints one JSON line. Odd rounds start a fresh
//! store; even rounds continue on the store the previous round crashed (recovery after
//! recovery), verified against the previous round's verified state plus the new log.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Every durable store and its URL in a round's directory (`{dir}` is absolute).
const STORES: &[(&str, &str)] = &[
    ("disk", "redb://{dir}/kv.redb"),
    ("multidisk", "multidisk://{dir}/data"),
    ("filetree", "filetree://{dir}/tree"),
    ("jsonfile", "jsonfile://{dir}/kv.json"),
    ("log", "log://{dir}/kv.log"),
    ("sqlite", "sqlite://{dir}/kv.sqlite"),
    ("lmdb", "lmdb://{dir}/env"),
    ("rocksdb", "rocksdb://{dir}/db"),
    ("unqlite", "unqlite://{dir}/kv.unqlite"),
    ("leveldb", "leveldb://{dir}/db"),
    ("duckdb", "duckdb://{dir}/kv.duckdb"),
];

const USAGE: &str = "usage: cargo xtask crash STORE|all [--rounds N] [--seed S] [--keep]\n       \
                     cargo xtask crash --self-test [STORE]";

/// How long the writer may take to acknowledge its first write (debug builds, cold caches).
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(120);

/// xorshift64: the only randomness, printed so a run can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Options {
    store: Option<String>,
    rounds: u32,
    seed: u64,
    keep: bool,
    self_test: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        store: None,
        rounds: 20,
        seed: 0,
        keep: false,
        self_test: false,
    };
    let mut seed = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--rounds" => {
                o.rounds = value("--rounds")?
                    .parse()
                    .map_err(|e| format!("--rounds: {e}"))?;
            }
            "--seed" => {
                seed = Some(
                    value("--seed")?
                        .parse()
                        .map_err(|e| format!("--seed: {e}"))?,
                );
            }
            "--keep" => o.keep = true,
            "--self-test" => o.self_test = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            s if o.store.is_none() => o.store = Some(s.to_owned()),
            s => return Err(format!("unexpected argument {s}\n{USAGE}")),
        }
    }
    o.seed = seed.unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_secs() ^ u64::from(now.subsec_nanos()) ^ u64::from(std::process::id())
    });
    if o.rounds == 0 {
        return Err("--rounds must be at least 1".to_owned());
    }
    Ok(o)
}

/// Entry point of `cargo xtask crash ...`.
pub fn main(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent directory")?
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    // The writer gets every store this machine can build (RocksDB, UnQLite, DuckDB where
    // their system libraries are installed).
    let plan = crate::sysdeps::Plan::detect();
    let mut build = crate::cargo();
    build
        .current_dir(&root)
        .args(["build", "-p", "kv-tests", "--bin", "kv-crash-writer"]);
    plan.apply_to_package(&mut build, "kv-tests");
    crate::run("build writer", &mut build)?;
    let ctx = Ctx {
        env: plan.env.clone(),
        writer: target.join("debug").join("kv-crash-writer"),
        base: target.join("crash"),
        keep: o.keep,
    };
    if o.self_test {
        return self_test(&ctx, o.store.as_deref().unwrap_or("disk"), o.seed);
    }
    let store = o.store.ok_or_else(|| USAGE.to_owned())?;
    println!(
        "crash: seed {} (replay: cargo xtask crash {store} --rounds {} --seed {})",
        o.seed, o.rounds, o.seed
    );
    if store == "all" {
        return all(&ctx, o.rounds, o.seed);
    }
    let template = url_template(&store)?;
    let t = run_store(&ctx, &store, template, o.rounds, o.seed);
    print_totals(&store, &t);
    if let Some(reason) = &t.unavailable {
        return Err(format!("{store}: store not available: {reason}"));
    }
    if t.passed() {
        Ok(())
    } else {
        Err(format!(
            "{store}: {} lost, {} corrupt, {} failed rounds",
            t.lost, t.corrupt, t.failures
        ))
    }
}

fn url_template(store: &str) -> Result<&'static str, String> {
    STORES
        .iter()
        .find(|(name, _)| *name == store)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = STORES.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown store {store:?} (one of: {}, all)",
                names.join(", ")
            )
        })
}

struct Ctx {
    /// Environment the writer needs (e.g. LD_LIBRARY_PATH for libduckdb).
    env: Vec<(String, String)>,
    writer: PathBuf,
    base: PathBuf,
    keep: bool,
}

impl Ctx {
    /// A command running the writer with its environment.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.writer);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// The totals of one store.
#[derive(Default)]
struct Totals {
    rounds: u32,
    acked: u64,
    acked_ops: u64,
    lost: u64,
    corrupt: u64,
    failures: u32,
    applied: u32,
    not_applied: u32,
    partial: u32,
    elapsed: Duration,
    /// Why the store could not be tested at all (e.g. not compiled into the facade yet).
    unavailable: Option<String>,
}

impl Totals {
    fn passed(&self) -> bool {
        self.unavailable.is_none() && self.lost == 0 && self.corrupt == 0 && self.failures == 0
    }
}

/// A field of the writer's one-line JSON summary (numbers, booleans, plain strings).
fn json_field<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{name}\":"))? + name.len() + 3;
    let rest = &json[start..];
    if let Some(s) = rest.strip_prefix('"') {
        let mut end = 0;
        let bytes = s.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        return s.get(..end.min(s.len()));
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn json_u64(json: &str, name: &str) -> u64 {
    json_field(json, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Counts `OK` lines and tells whether the first one is there.
fn acks(log: &Path) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("OK "))
        .count()
}

/// What one writer run left behind.
struct Killed {
    ran: Duration,
}

/// Starts the writer, waits for its first ack (or `min_acks`), lets it run `delay` more,
/// then SIGKILLs it. An early exit is an error carrying its stderr.
fn write_and_kill(
    ctx: &Ctx,
    url: &str,
    seed: u64,
    delay: Duration,
    min_acks: usize,
    log: &Path,
) -> Result<Killed, String> {
    let err_path = log.with_extension("stderr");
    let stdout = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let stderr = File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
    let mut child = ctx
        .command()
        .args(["write", url, "--seed", &seed.to_string()])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", ctx.writer.display()))?;
    let started = Instant::now();
    let early_exit = |child: &mut std::process::Child| -> Option<String> {
        match child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "the writer exited by itself ({status}): {}",
                tail(&err_path)
            )),
            _ => None,
        }
    };
    while acks(log) < min_acks {
        if let Some(e) = early_exit(&mut child) {
            return Err(e);
        }
        if started.elapsed() > FIRST_ACK_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "no acknowledged write within {FIRST_ACK_TIMEOUT:?}: {}",
                tail(&err_path)
            ));
        }
        sleep(Duration::from_millis(2));
    }
    sleep(delay);
    if let Some(e) = early_exit(&mut child) {
        return Err(e);
    }
    child
        .kill()
        .map_err(|e| format!("cannot kill the writer: {e}"))?; // SIGKILL on Unix
    let _ = child.wait();
    Ok(Killed {
        ran: started.elapsed(),
    })
}

/// Runs `verify`; returns its JSON line and whether it passed.
fn verify(ctx: &Ctx, url: &str, logs: &[&Path], state_out: Option<&Path>) -> (String, bool) {
    let mut cmd = ctx.command();
    cmd.args(["verify", url]);
    for l in logs {
        cmd.arg("--log").arg(l);
    }
    if let Some(s) = state_out {
        cmd.arg("--state-out").arg(s);
    }
    match cmd.stderr(Stdio::piped()).output() {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let json = stdout
                .lines()
                .rev()
                .find(|l| l.starts_with('{'))
                .unwrap_or("")
                .to_owned();
            let stderr = String::from_utf8_lossy(&out.stderr);
            for line in stderr.lines().take(20) {
                println!("      verify: {line}");
            }
            if json.is_empty() {
                let msg = format!("verify printed no summary ({}): {stderr}", out.status);
                return (
                    format!("{{\"ok\":false,\"error\":\"{}\"}}", msg.trim()),
                    false,
                );
            }
            let ok = out.status.success() && json_field(&json, "ok") == Some("true");
            (json, ok)
        }
        Err(e) => (
            format!("{{\"ok\":false,\"error\":\"cannot run verify: {e}\"}}"),
            false,
        ),
    }
}

/// The facade's "unknown scheme" / "not compiled in" message, if that is why the writer failed.
fn unavailable_reason(message: &str) -> Option<String> {
    let start = message.find("unknown store scheme").or_else(|| {
        message
            .find("the `")
            .filter(|_| message.contains("not compiled in"))
    })?;
    let reason = &message[start..];
    let end = reason.find(" (available").unwrap_or(reason.len());
    Some(reason[..end].to_owned())
}

fn run_store(ctx: &Ctx, store: &str, template: &str, rounds: u32, seed: u64) -> Totals {
    let mut t = Totals::default();
    let mut rng = Rng::new(seed);
    let run_dir = ctx.base.join(format!("{store}-{seed}"));
    let _ = fs::remove_dir_all(&run_dir);
    let started = Instant::now();
    let mut chain = 0u32;
    let mut store_dir = PathBuf::new();
    let mut state: Option<PathBuf> = None;
    let mut chain_failed = false;
    for round in 1..=rounds {
        let round_seed = rng.next();
        let delay = Duration::from_millis(20 + rng.next() % 481);
        let fresh = round % 2 == 1 || chain_failed || state.is_none();
        if fresh {
            if !ctx.keep && !chain_failed && chain > 0 {
                let _ = fs::remove_dir_all(&store_dir);
            }
            chain += 1;
            chain_failed = false;
            state = None;
            store_dir = run_dir.join(format!("store-{chain}"));
            if let Err(e) = fs::create_dir_all(&store_dir) {
                println!(
                    "  round {round}/{rounds}: cannot create {}: {e}",
                    store_dir.display()
                );
                t.failures += 1;
                t.rounds += 1;
                continue;
            }
        }
        let url = template.replace("{dir}", &store_dir.display().to_string());
        let log = store_dir.join(format!("round-{round}.log"));
        let what = if fresh { "fresh" } else { "continue" };
        t.rounds += 1;
        let killed = match write_and_kill(ctx, &url, round_seed, delay, 1, &log) {
            Ok(k) => k,
            Err(e) => {
                if let Some(reason) = unavailable_reason(&e).filter(|_| round == 1) {
                    t.rounds = 0;
                    t.unavailable = Some(reason);
                    println!("  {store}: not available: {e}");
                    break;
                }
                println!(
                    "  round {round}/{rounds} [{what} store-{chain}] seed {round_seed}: FAILED: {e}"
                );
                t.failures += 1;
                chain_failed = true;
                continue;
            }
        };
        let state_out = store_dir.join(format!("state-{round}.log"));
        let mut logs: Vec<&Path> = Vec::new();
        if let Some(s) = &state {
            logs.push(s);
        }
        logs.push(&log);
        let verify_started = Instant::now();
        let (json, ok) = verify(ctx, &url, &logs, Some(&state_out));
        let verify_time = verify_started.elapsed();
        let acked = json_u64(&json, "acked");
        let lost = json_u64(&json, "lost");
        let corrupt = json_u64(&json, "corrupt");
        t.acked += acked;
        t.acked_ops += json_u64(&json, "acked_ops");
        t.lost += lost;
        t.corrupt += corrupt;
        match json_field(&json, "in_flight") {
            Some("applied") => t.applied += 1,
            Some("not_applied") => t.not_applied += 1,
            Some("partial") => t.partial += 1,
            _ => {}
        }
        let verdict = if ok {
            "ok".to_owned()
        } else {
            t.failures += 1;
            chain_failed = true;
            match json_field(&json, "error") {
                Some(e) => format!("FAILED: {e}"),
                None => format!("FAILED: {lost} lost, {corrupt} corrupt: {json}"),
            }
        };
        println!(
            "  round {round}/{rounds} [{what:8} store-{chain}] seed {round_seed:>20}: killed after \
             {:>4} ms, {acked:>5} acked writes, in flight {:<11} verify {:>5} ms: {verdict}",
            killed.ran.as_millis(),
            json_field(&json, "in_flight").unwrap_or("?"),
            verify_time.as_millis(),
        );
        state = ok.then_some(state_out);
        if !ok {
            println!("      kept for inspection: {}", store_dir.display());
        }
    }
    if !ctx.keep && !chain_failed && t.failures == 0 {
        let _ = fs::remove_dir_all(&run_dir);
    }
    t.elapsed = started.elapsed();
    t
}

fn print_totals(store: &str, t: &Totals) {
    if let Some(reason) = &t.unavailable {
        println!("crash {store}: not available: {reason}");
        return;
    }
    println!(
        "crash {store}: {} rounds, {} acked writes ({} operations), {} lost, {} corrupt, \
         {} failed rounds, in-flight op applied/not/partial {}/{}/{}, {:.1?}: {}",
        t.rounds,
        t.acked,
        t.acked_ops,
        t.lost,
        t.corrupt,
        t.failures,
        t.applied,
        t.not_applied,
        t.partial,
        t.elapsed,
        if t.passed() { "PASS" } else { "FAIL" }
    );
}

fn all(ctx: &Ctx, rounds: u32, seed: u64) -> Result<(), String> {
    let mut rows = Vec::new();
    for (store, template) in STORES {
        println!("crash {store}:");
        let t = run_store(ctx, store, template, rounds, seed);
        print_totals(store, &t);
        rows.push((*store, t));
    }
    println!(
        "\n| store | rounds | acked writes | lost writes | corrupt | failed rounds | time | result |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let mut failed = Vec::new();
    for (store, t) in &rows {
        match &t.unavailable {
            Some(reason) => {
                println!("| {store} | – | – | – | – | – | – | not available: {reason} |")
            }
            None => {
                if !t.passed() {
                    failed.push(*store);
                }
                println!(
                    "| {store} | {} | {} | {} | {} | {} | {:.0} s | {} |",
                    t.rounds,
                    t.acked,
                    t.lost,
                    t.corrupt,
                    t.failures,
                    t.elapsed.as_secs_f64(),
                    if t.passed() { "pass" } else { "**FAIL**" }
                );
            }
        }
    }
    let skipped: Vec<&str> = rows
        .iter()
        .filter(|(_, t)| t.unavailable.is_some())
        .map(|(s, _)| *s)
        .collect();
    if !skipped.is_empty() {
        println!("\nnot available (skipped): {}", skipped.join(", "));
        // In CI every store must be compiled in: a skip there hides a broken store.
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            failed.extend(skipped);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("crash test failed for: {}", failed.join(", ")))
    }
}

/// The checker must catch a loss: a killed writer's store verifies, the same store with one
/// acknowledged key deleted and another overwritten behind the writer's back must not.
fn self_test(ctx: &Ctx, store: &str, seed: u64) -> Result<(), String> {
    let template = url_template(store)?;
    let dir = ctx.base.join(format!("self-test-{store}-{seed}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let url = template.replace("{dir}", &dir.display().to_string());
    let log = dir.join("round.log");
    write_and_kill(ctx, &url, seed, Duration::from_millis(50), 30, &log)?;
    let (json, ok) = verify(ctx, &url, &[&log], None);
    println!("crash self-test {store}: untouched store: {json}");
    if !ok {
        return Err(format!(
            "self-test: the untouched store does not verify: {json}"
        ));
    }
    let out = ctx
        .command()
        .args(["tamper", &url, "--log"])
        .arg(&log)
        .output()
        .map_err(|e| format!("cannot run tamper: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tamper failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!(
        "crash self-test {store}: tampered: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    let (json, ok) = verify(ctx, &url, &[&log], None);
    println!("crash self-test {store}: tampered store: {json}");
    if ok || json_u64(&json, "lost") < 1 || json_u64(&json, "corrupt") < 1 {
        return Err(format!(
            "self-test: verify missed the tampering (want lost>=1, corrupt>=1): {json}"
        ));
    }
    if !ctx.keep {
        let _ = fs::remove_dir_all(&dir);
    }
    println!("crash self-test {store}: PASS (the checker detects a lost and a corrupt write)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields() {
        let j = r#"{"acked":12,"lost":0,"in_flight":"applied","ok":true,"error":"a \"b\" c"}"#;
        assert_eq!(json_u64(j, "acked"), 12);
        assert_eq!(json_field(j, "in_flight"), Some("applied"));
        assert_eq!(json_field(j, "ok"), Some("true"));
        assert_eq!(json_field(j, "error"), Some(r#"a \"b\" c"#));
        assert_eq!(json_field(j, "missing"), None);
    }

    #[test]
    fn unavailable_stores_are_recognised() {
        let e = "the writer exited by itself (exit status: 2): kv-crash-writer: error: cannot \
                 open sqlite:///x: invalid configuration: unknown store scheme `sqlite://` \
                 (available: memory://, redb://) (op: open)";
        assert_eq!(
            unavailable_reason(e).as_deref(),
            Some("unknown store scheme `sqlite://`")
        );
        assert_eq!(unavailable_reason("lost 3 writes"), None);
    }

    #[test]
    fn every_store_has_a_url() {
        for (name, t) in STORES {
            assert!(t.contains("{dir}"), "{name}");
            assert_eq!(url_template(name), Ok(*t));
        }
        assert!(url_template("nosuch").is_err());
    }
}
