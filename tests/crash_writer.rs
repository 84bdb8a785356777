//! `kv-crash-writer`: the child process of `cargo xtask crash` (see `RELIABILITY.md`).
//!
//! ```text
//! kv-crash-writer write  URL --seed S            write forever, print the ack log to stdout
//! kv-crash-writer verify URL --log FILE...       reopen, replay the log(s), check every key
//!                        [--state-out FILE]      and write the verified state (for chaining)
//! kv-crash-writer tamper URL --log FILE...       delete one acknowledged key and overwrite
//!                                                another behind the writer's back (self-test)
//! ```
//!
//! # The ack log
//!
//! One line per event, whitespace-separated tokens, `\n`-terminated, flushed line by line.
//! Before an operation starts the writer prints its *intent*; once the operation has returned
//! `Ok` it prints the *acknowledgement*:
//!
//! ```text
//! # kv-crash-writer seed=S url=URL                 comment (ignored)
//! OP <seq> PUT <coll> <key> <len>:<hash>           put one value
//! OP <seq> BATCH <coll> <n> <key>=<len>:<hash>...  put_many of n distinct keys
//! OP <seq> DEL <coll> <key>                        delete one key
//! OP <seq> DELMANY <coll> <n> <key>...             delete_many of n distinct keys
//! OK <seq>                                         the operation <seq> returned Ok
//! ERR <seq> <message>                              it returned an error (the writer stops)
//! ```
//!
//! `<hash>` is the 64-bit FNV-1a hash of the value in 16 hex digits, `<len>` its length in
//! bytes: together they pin the exact bytes. Collections and keys never contain whitespace or
//! `=`. The checker's rule: for every key, the last *acknowledged* operation is the expected
//! state; an operation whose intent was printed but whose `OK` was not (the one in flight
//! when the process was killed, or a torn last line) may be applied or not, key by key.
//! A value older than the expected one, or an entry that reappears after an acknowledged
//! delete, is a *lost* write; bytes that match no value ever written to that key are *corrupt*.
//!
//! A state file written by `verify --state-out` uses the same format (all operations
//! acknowledged, header `# state`); passing it as the first `--log` of the next round's
//! `verify` chains rounds on the same store.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::pin::pin;
use std::process::ExitCode;
use std::time::Instant;

use futures_util::StreamExt;
use kv::{Bytes, KvStore, KvStoreExt, PutManyOptions, Store};

/// The collections the writer uses (one non-ASCII, so escaping stores are exercised).
const COLLECTIONS: [&str; 3] = ["crash-a", "crash-b", "crash-ü"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kv-crash-writer: error: {e}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    mode: String,
    url: String,
    seed: u64,
    logs: Vec<String>,
    state_out: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    const USAGE: &str = "usage: kv-crash-writer write URL --seed S | verify URL --log FILE... \
                         [--state-out FILE] | tamper URL --log FILE...";
    let (mode, url) = match args {
        [mode, url, ..] => (mode.clone(), url.clone()),
        _ => return Err(USAGE.to_owned()),
    };
    let mut parsed = Args {
        mode,
        url,
        seed: 0,
        logs: Vec::new(),
        state_out: None,
    };
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| format!("{flag} needs a value ({USAGE})"))?;
        match flag.as_str() {
            "--seed" => {
                parsed.seed = value
                    .parse()
                    .map_err(|e| format!("--seed {value:?}: {e}"))?
            }
            "--log" => parsed.logs.push(value.clone()),
            "--state-out" => parsed.state_out = Some(value.clone()),
            other => return Err(format!("unknown option {other} ({USAGE})")),
        }
    }
    Ok(parsed)
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let args = parse_args(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the Tokio runtime: {e}"))?;
    match args.mode.as_str() {
        "write" => runtime.block_on(write(&args.url, args.seed)),
        "verify" => {
            let logs = read_logs(&args.logs)?;
            Ok(runtime.block_on(verify(&args.url, &logs, args.state_out.as_deref())))
        }
        "tamper" => {
            let logs = read_logs(&args.logs)?;
            runtime.block_on(tamper(&args.url, &logs))
        }
        other => Err(format!("unknown mode {other:?} (write | verify | tamper)")),
    }
}

fn read_logs(paths: &[String]) -> Result<Vec<String>, String> {
    if paths.is_empty() {
        return Err("verify needs at least one --log FILE".to_owned());
    }
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Deterministic content

/// splitmix64: turns any seed into a well-mixed one.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64*, seeded through splitmix64 (never zero).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(mix(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }
}

/// The value of entry `idx` of operation `seq` of the run seeded `seed`.
fn make_value(seed: u64, seq: u64, idx: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(mix(seed ^ mix(seq)) ^ idx);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A value length from 0 bytes to 256 KiB, mostly small.
fn value_len(rng: &mut Rng, in_batch: bool) -> usize {
    let r = rng.below(100);
    let len = match r {
        0..10 => 0,
        10..70 => rng.range(1, 1024),
        70..92 => rng.range(1025, 16 * 1024),
        _ if in_batch => rng.range(16 * 1024 + 1, 64 * 1024),
        _ => rng.range(16 * 1024 + 1, 256 * 1024),
    };
    len as usize
}

/// 64-bit FNV-1a.
fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// What a key holds: a value (length and hash) or nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum State {
    Absent,
    Present { len: usize, hash: u64 },
}

impl State {
    fn of(bytes: &[u8]) -> State {
        State::Present {
            len: bytes.len(),
            hash: fnv64(bytes),
        }
    }

    fn token(self) -> String {
        match self {
            State::Absent => "-".to_owned(),
            State::Present { len, hash } => format!("{len}:{hash:016x}"),
        }
    }

    fn parse(token: &str) -> Option<State> {
        let (len, hash) = token.split_once(':')?;
        Some(State::Present {
            len: len.parse().ok()?,
            hash: u64::from_str_radix(hash, 16).ok()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// write

/// One line to stdout, flushed before the next operation starts.
fn emit(line: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the ack log: {e}"))
}

async fn write(url: &str, seed: u64) -> Result<ExitCode, String> {
    let store = kv::open(url)
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    // Keys already in the store (earlier rounds) can be overwritten and deleted too.
    let mut pool: Vec<(usize, String)> = Vec::new();
    for (c, name) in COLLECTIONS.iter().enumerate() {
        let mut keys = pin!(store.keys(name));
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| format!("cannot list {name}: {e}"))?;
            if pool.len() < 20_000 {
                pool.push((c, key));
            }
        }
    }
    emit(&format!(
        "# kv-crash-writer seed={seed} url={url} existing_keys={}",
        pool.len()
    ))?;
    let mut seq: u64 = 0;
    loop {
        seq += 1;
        let mut rng = Rng::new(mix(seed) ^ seq);
        let c = rng.below(COLLECTIONS.len() as u64) as usize;
        let coll = COLLECTIONS[c];
        let fresh_key = |rng: &mut Rng, idx: u64| -> String {
            if rng.below(8) == 0 {
                format!("ключ-{:04x}.{seq}.{idx}", seed & 0xffff)
            } else {
                format!("k{:04x}.{seq}.{idx}", seed & 0xffff)
            }
        };
        // Picks an earlier key of this collection, if any (a few random probes).
        let earlier_key = |rng: &mut Rng, pool: &[(usize, String)]| -> Option<String> {
            if pool.is_empty() {
                return None;
            }
            (0..8).find_map(|_| {
                let (pc, k) = &pool[rng.below(pool.len() as u64) as usize];
                (*pc == c).then(|| k.clone())
            })
        };
        let r = rng.below(100);
        let result = match r {
            // a single put: a new key, or an overwrite of an earlier one
            0..55 => {
                let key = if r >= 35 {
                    earlier_key(&mut rng, &pool)
                } else {
                    None
                };
                let key = key.unwrap_or_else(|| {
                    let k = fresh_key(&mut rng, 0);
                    pool.push((c, k.clone()));
                    k
                });
                let value = make_value(seed, seq, 0, value_len(&mut rng, false));
                emit(&format!(
                    "OP {seq} PUT {coll} {key} {}",
                    State::of(&value).token()
                ))?;
                store.put_bytes(coll, &key, value).await
            }
            // a batch of 1-20 distinct keys, new and earlier ones
            55..77 => {
                let n = rng.range(1, 20);
                let mut seen = HashSet::new();
                let mut entries: Vec<(String, Bytes)> = Vec::new();
                for idx in 0..n {
                    let key = if rng.below(3) == 0 {
                        earlier_key(&mut rng, &pool)
                    } else {
                        None
                    };
                    let key = key.unwrap_or_else(|| {
                        let k = fresh_key(&mut rng, idx);
                        pool.push((c, k.clone()));
                        k
                    });
                    if !seen.insert(key.clone()) {
                        continue;
                    }
                    let value = make_value(seed, seq, idx, value_len(&mut rng, true));
                    entries.push((key, Bytes::from(value)));
                }
                let mut line = format!("OP {seq} BATCH {coll} {}", entries.len());
                for (k, v) in &entries {
                    line.push_str(&format!(" {k}={}", State::of(v).token()));
                }
                emit(&line)?;
                let refs: Vec<(&str, Bytes)> = entries
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                store
                    .put_many_opts(coll, &refs, PutManyOptions::default())
                    .await
            }
            // delete one key (sometimes one that never existed)
            77..92 => {
                let key = earlier_key(&mut rng, &pool).unwrap_or_else(|| fresh_key(&mut rng, 0));
                emit(&format!("OP {seq} DEL {coll} {key}"))?;
                store.delete(coll, &key).await.map(|_| ())
            }
            // delete several keys at once
            _ => {
                let n = rng.range(1, 5);
                let mut keys: Vec<String> = Vec::new();
                for _ in 0..n {
                    if let Some(k) = earlier_key(&mut rng, &pool)
                        && !keys.contains(&k)
                    {
                        keys.push(k);
                    }
                }
                if keys.is_empty() {
                    keys.push(fresh_key(&mut rng, 0));
                }
                emit(&format!(
                    "OP {seq} DELMANY {coll} {} {}",
                    keys.len(),
                    keys.join(" ")
                ))?;
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                store.delete_many(coll, &refs).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => emit(&format!("OK {seq}"))?,
            Err(e) => {
                let msg = e.to_string().replace(['\n', '\r'], " ");
                emit(&format!("ERR {seq} {msg}"))?;
                eprintln!("kv-crash-writer: operation {seq} failed: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The model: what every key must hold, replayed from the logs

/// What the logs say about one key.
#[derive(Debug, Default)]
struct KeyModel {
    /// The state after the last acknowledged operation (`None`: never acknowledged, i.e.
    /// absent unless a state file says otherwise).
    acked: Option<State>,
    /// States of unacknowledged operations after the last acknowledged one: also correct.
    maybe: Vec<State>,
    /// Every state the logs ever gave this key (to tell a lost write from corruption).
    history: Vec<State>,
}

impl KeyModel {
    fn expected(&self) -> State {
        self.acked.unwrap_or(State::Absent)
    }

    fn allows(&self, s: State) -> bool {
        s == self.expected() || self.maybe.contains(&s)
    }
}

/// One operation of a log: what it does to which keys.
#[derive(Debug)]
struct Op {
    coll: String,
    effects: Vec<(String, State)>,
}

#[derive(Debug, Default)]
struct Model {
    keys: BTreeMap<(String, String), KeyModel>,
    /// Acknowledged key writes of the round logs (puts and deletes, batch entries counted
    /// one by one), and of state files (carried over from earlier rounds).
    acked: u64,
    carried: u64,
    /// Acknowledged operations of the round logs.
    acked_ops: u64,
    /// Key effects of the unacknowledged operation at the end of the last log.
    in_flight: Vec<((String, String), State)>,
}

fn parse_op(tokens: &[&str]) -> Result<Op, String> {
    let (kind, coll, rest) = match tokens {
        [kind, coll, rest @ ..] => (*kind, (*coll).to_owned(), rest),
        _ => return Err("truncated operation".to_owned()),
    };
    let mut effects = Vec::new();
    match (kind, rest) {
        ("PUT", [key, value]) => {
            let s = State::parse(value).ok_or_else(|| format!("bad value {value:?}"))?;
            effects.push(((*key).to_owned(), s));
        }
        ("DEL", [key]) => effects.push(((*key).to_owned(), State::Absent)),
        ("BATCH", [n, entries @ ..]) => {
            for e in entries {
                let (k, v) = e
                    .rsplit_once('=')
                    .ok_or_else(|| format!("bad batch entry {e:?}"))?;
                let s = State::parse(v).ok_or_else(|| format!("bad value {v:?}"))?;
                effects.push((k.to_owned(), s));
            }
            if n.parse::<usize>().ok() != Some(effects.len()) {
                return Err(format!("batch says {n} entries, has {}", effects.len()));
            }
        }
        ("DELMANY", [n, keys @ ..]) => {
            effects.extend(keys.iter().map(|k| ((*k).to_owned(), State::Absent)));
            if n.parse::<usize>().ok() != Some(effects.len()) {
                return Err(format!("delete_many says {n} keys, has {}", effects.len()));
            }
        }
        _ => return Err(format!("unknown operation {kind} or wrong arity")),
    }
    Ok(Op { coll, effects })
}

impl Model {
    /// Replays the logs in order. Within one log, an `OP` without its `OK` is in flight:
    /// its effects are allowed but not required. A torn last line (no `\n`) is ignored.
    fn replay(logs: &[String]) -> Result<Model, String> {
        let mut model = Model::default();
        for (i, log) in logs.iter().enumerate() {
            let is_state = log.starts_with("# state");
            let complete = match log.rfind('\n') {
                Some(end) => &log[..=end],
                None => "",
            };
            let mut pending: BTreeMap<u64, Op> = BTreeMap::new();
            for (n, line) in complete.lines().enumerate() {
                let tokens: Vec<&str> = line.split_whitespace().collect();
                let err = |e: String| format!("log {} line {}: {e}: {line:?}", i + 1, n + 1);
                match tokens.as_slice() {
                    [] => {}
                    [first, ..] if first.starts_with('#') => {}
                    ["OP", seq, op @ ..] => {
                        let seq: u64 = seq.parse().map_err(|_| err("bad seq".into()))?;
                        let op = parse_op(op).map_err(err)?;
                        for (key, s) in &op.effects {
                            model
                                .keys
                                .entry((op.coll.clone(), key.clone()))
                                .or_default()
                                .history
                                .push(*s);
                        }
                        pending.insert(seq, op);
                    }
                    ["OK", seq] => {
                        let seq: u64 = seq.parse().map_err(|_| err("bad seq".into()))?;
                        let op = pending
                            .remove(&seq)
                            .ok_or_else(|| err("OK without its OP".into()))?;
                        for (key, s) in op.effects {
                            let k = model.keys.entry((op.coll.clone(), key)).or_default();
                            k.acked = Some(s);
                            k.maybe.clear();
                            if is_state {
                                model.carried += 1;
                            } else {
                                model.acked += 1;
                            }
                        }
                        if !is_state {
                            model.acked_ops += 1;
                        }
                    }
                    ["ERR", ..] => {} // its OP stays pending: applied or not
                    _ => return Err(err("unknown line".into())),
                }
            }
            let last = i + 1 == logs.len();
            for (_, op) in pending {
                for (key, s) in op.effects {
                    let id = (op.coll.clone(), key);
                    model.keys.entry(id.clone()).or_default().maybe.push(s);
                    if last {
                        model.in_flight.push((id, s));
                    }
                }
            }
        }
        Ok(model)
    }
}

// ---------------------------------------------------------------------------------------------
// verify

/// The outcome of checking a store against a model.
#[derive(Debug, Default)]
struct Report {
    lost: u64,
    corrupt: u64,
    unexpected: u64,
    observed: BTreeMap<(String, String), State>,
}

async fn check(store: &Store, model: &Model) -> Report {
    let mut report = Report::default();
    for ((coll, key), k) in &model.keys {
        let observed = match store.get_bytes(coll, key).await {
            Ok(Some(v)) => State::of(&v),
            Ok(None) => State::Absent,
            Err(e) => {
                eprintln!("CORRUPT {coll} {key}: read failed: {e}");
                report.corrupt += 1;
                continue;
            }
        };
        report
            .observed
            .insert((coll.clone(), key.clone()), observed);
        if k.allows(observed) {
            continue;
        }
        let expected = k.expected().token();
        if observed == State::Absent || k.history.contains(&observed) {
            eprintln!(
                "LOST {coll} {key}: expected {expected}, found {} (an older state)",
                observed.token()
            );
            report.lost += 1;
        } else {
            eprintln!(
                "CORRUPT {coll} {key}: expected {expected}, found {} (never written)",
                observed.token()
            );
            report.corrupt += 1;
        }
    }
    // Anything else in the writer's collections came from nowhere.
    for name in COLLECTIONS {
        let mut keys = pin!(store.keys(name));
        while let Some(key) = keys.next().await {
            match key {
                Ok(key) if !model.keys.contains_key(&(name.to_owned(), key.clone())) => {
                    eprintln!("UNEXPECTED {name} {key}: in the store, in no log");
                    report.unexpected += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("CORRUPT {name}: listing failed: {e}");
                    report.corrupt += 1;
                    break;
                }
            }
        }
    }
    report
}

/// What became of the in-flight operation: `none`, `applied`, `not_applied` or `partial`.
fn in_flight_outcome(model: &Model, report: &Report) -> &'static str {
    if model.in_flight.is_empty() {
        return "none";
    }
    let applied: Vec<bool> = model
        .in_flight
        .iter()
        .map(|(id, s)| report.observed.get(id) == Some(s))
        .collect();
    if applied.iter().all(|a| *a) {
        "applied"
    } else if applied.iter().any(|a| *a) {
        "partial"
    } else {
        "not_applied"
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

async fn verify(url: &str, logs: &[String], state_out: Option<&str>) -> ExitCode {
    let model = match Model::replay(logs) {
        Ok(m) => m,
        Err(e) => {
            println!(
                "{{\"acked\":0,\"lost\":0,\"corrupt\":0,\"ok\":false,\"error\":{}}}",
                json_str(&format!("bad log: {e}"))
            );
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    // No repair, no retry: the store must open as it was left by the killed writer.
    let store = match kv::open(url).await {
        Ok(s) => s,
        Err(e) => {
            println!(
                "{{\"acked\":{},\"lost\":0,\"corrupt\":0,\"ok\":false,\"error\":{}}}",
                model.acked,
                json_str(&format!("reopen failed: {e}"))
            );
            return ExitCode::from(2);
        }
    };
    let open_ms = started.elapsed().as_millis();
    let report = check(&store, &model).await;
    let close_error = store.close().await.err();
    let ok = report.lost == 0 && report.corrupt == 0 && report.unexpected == 0;
    if ok && let Some(path) = state_out {
        let mut text = String::from("# state: verified keys, all acknowledged\n");
        for (i, ((coll, key), s)) in report.observed.iter().enumerate() {
            let op = match s {
                State::Absent => format!("DEL {coll} {key}"),
                State::Present { .. } => format!("PUT {coll} {key} {}", s.token()),
            };
            text.push_str(&format!("OP {i} {op}\nOK {i}\n"));
        }
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("kv-crash-writer: cannot write {path}: {e}");
            return ExitCode::from(2);
        }
    }
    let close = match &close_error {
        None => String::new(),
        Some(e) => format!(",\"close_error\":{}", json_str(&e.to_string())),
    };
    println!(
        "{{\"acked\":{},\"acked_ops\":{},\"carried\":{},\"keys\":{},\"lost\":{},\"corrupt\":{},\
         \"unexpected\":{},\"in_flight\":\"{}\",\"open_ms\":{open_ms},\"ok\":{ok}{close}}}",
        model.acked,
        model.acked_ops,
        model.carried,
        model.keys.len(),
        report.lost,
        report.corrupt,
        report.unexpected,
        in_flight_outcome(&model, &report),
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------------------
// tamper (the checker's self-test)

/// Deletes one acknowledged, present key and overwrites another with bytes never written,
/// so that `verify` must report one lost and one corrupt entry.
async fn tamper(url: &str, logs: &[String]) -> Result<ExitCode, String> {
    let model = Model::replay(logs)?;
    let store = kv::open(url)
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    let mut victims = model.keys.iter().filter(|(_, k)| {
        k.maybe.is_empty() && matches!(k.expected(), State::Present { len, .. } if len > 0)
    });
    let ((c1, k1), _) = victims
        .next()
        .ok_or("no acknowledged key to delete: let the writer run longer")?;
    let ((c2, k2), _) = victims
        .next()
        .ok_or("no second acknowledged key to overwrite: let the writer run longer")?;
    store
        .delete(c1, k1)
        .await
        .map_err(|e| format!("cannot delete {c1} {k1}: {e}"))?;
    store
        .put_bytes(c2, k2, &b"tampered behind the writer's back"[..])
        .await
        .map_err(|e| format!("cannot overwrite {c2} {k2}: {e}"))?;
    store.close().await.map_err(|e| e.to_string())?;
    println!("deleted {c1} {k1}; overwrote {c2} {k2}");
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn last_acked_wins_and_the_in_flight_op_may_go_either_way() {
        let a = State::of(b"a");
        let b = State::of(b"b");
        let text = log(&[
            "# header",
            &format!("OP 1 PUT c k {}", a.token()),
            "OK 1",
            &format!("OP 2 BATCH c 2 k={} j={}", b.token(), a.token()),
            "OK 2",
            "OP 3 DEL c k",
        ]);
        let m = Model::replay(&[text]).unwrap();
        let k = &m.keys[&("c".to_owned(), "k".to_owned())];
        assert_eq!(k.expected(), b);
        assert!(k.allows(b) && k.allows(State::Absent) && !k.allows(a));
        let j = &m.keys[&("c".to_owned(), "j".to_owned())];
        assert!(j.allows(a) && !j.allows(State::Absent));
        assert_eq!((m.acked, m.acked_ops, m.in_flight.len()), (3, 2, 1));
    }

    #[test]
    fn a_torn_last_line_is_not_an_acknowledgement() {
        let a = State::of(b"a");
        let text = format!("OP 1 PUT c k {}\nOK", a.token());
        let m = Model::replay(&[text]).unwrap();
        let k = &m.keys[&("c".to_owned(), "k".to_owned())];
        assert_eq!(k.expected(), State::Absent);
        assert!(k.allows(a));
        assert_eq!(m.acked, 0);
    }

    #[test]
    fn a_state_file_carries_keys_into_the_next_round() {
        let a = State::of(b"a");
        let state = log(&["# state", &format!("OP 0 PUT c k {}", a.token()), "OK 0"]);
        let round = log(&["OP 1 DEL c j", "OK 1"]);
        let m = Model::replay(&[state, round]).unwrap();
        assert_eq!(m.keys[&("c".to_owned(), "k".to_owned())].expected(), a);
        assert_eq!((m.acked, m.carried), (1, 1));
    }

    #[test]
    fn values_are_deterministic() {
        assert_eq!(make_value(7, 3, 1, 1000), make_value(7, 3, 1, 1000));
        assert_ne!(make_value(7, 3, 1, 1000), make_value(7, 4, 1, 1000));
        assert_eq!(make_value(1, 1, 0, 0).len(), 0);
        assert_eq!(
            State::parse(&State::of(b"xyz").token()),
            Some(State::of(b"xyz"))
        );
    }
}
