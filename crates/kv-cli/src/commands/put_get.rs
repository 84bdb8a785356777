//! `put`, `get`, `del` and `ttl`: one entry at a time.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use kv::{Bytes, KvStore, KvStoreExt, PutOptions, Store, Ttl};

use super::{Out, write_line};
use crate::cli::{GetArgs, KeyArgs, PutArgs};
use crate::error::{CliError, CliResult, stdout_error};
use crate::json;

/// `kv put C K VALUE [--ttl SECONDS]`, checked and with its value read: ready to run.
#[derive(Debug)]
pub struct PutRequest {
    collection: String,
    key: String,
    value: Bytes,
    ttl: Option<Duration>,
}

impl PutRequest {
    /// Checks the TTL, reads the value (from stdin for `-`) and checks that it is JSON.
    pub fn new(args: PutArgs) -> CliResult<Self> {
        // The TTL first: a bad flag must not wait for (or consume) stdin.
        let ttl = args.ttl.as_deref().map(parse_ttl).transpose()?;
        let text = if args.value == "-" {
            read_stdin()?
        } else {
            args.value
        };
        let value = json::trim(&text);
        if let Err(e) = json::validate(value) {
            return Err(CliError::new(format!(
                "invalid JSON value: {e}{}",
                string_hint(value)
            )));
        }
        Ok(PutRequest {
            collection: args.collection,
            key: args.key,
            // Stored as given (not re-serialized), so big integers and number formats survive.
            value: Bytes::copy_from_slice(value.as_bytes()),
            ttl,
        })
    }

    /// Writes the value.
    pub async fn run(self, store: &Store) -> CliResult {
        let opts = PutOptions::default().with_ttl_opt(self.ttl);
        store
            .put_opts(&self.collection, &self.key, self.value, opts)
            .await?;
        Ok(())
    }
}

/// `kv get C K [--raw]`.
pub async fn get(store: &Store, args: GetArgs, out: &mut Out) -> CliResult {
    let value = store
        .get_bytes(&args.collection, &args.key)
        .await?
        .ok_or_else(|| not_found(store, &args.collection, &args.key))?;
    if args.raw {
        return out.write_all(&value).map_err(stdout_error);
    }
    match json::as_json_text(&value) {
        Some(text) => write_line(out, json::trim(text)),
        None => Err(CliError::new(format!(
            "the value of key {:?} in collection {:?} is not JSON text ({} bytes, probably \
             written by a program with another codec); use `kv get --raw` to write its bytes \
             unchanged",
            args.key,
            store.info().resolve(&args.collection),
            value.len()
        ))),
    }
}

/// `kv del C K`.
pub async fn del(store: &Store, args: KeyArgs) -> CliResult {
    if store.delete(&args.collection, &args.key).await? {
        Ok(())
    } else {
        Err(not_found(store, &args.collection, &args.key))
    }
}

/// `kv ttl C K`.
pub async fn ttl(store: &Store, args: KeyArgs, out: &mut Out) -> CliResult {
    match store.ttl(&args.collection, &args.key).await? {
        None => Err(not_found(store, &args.collection, &args.key)),
        Some(Ttl::Never) => write_line(out, "none"),
        Some(Ttl::Remaining(d)) => write_line(out, &format_seconds(d)),
    }
}

fn not_found(store: &Store, collection: &str, key: &str) -> CliError {
    CliError::not_found(store.info().resolve(collection), key)
}

/// Reads the whole of stdin as UTF-8 text.
fn read_stdin() -> CliResult<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("kv: reading the value from stdin (end with Ctrl-D)");
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::stdio("cannot read the value from stdin", &e))?;
    String::from_utf8(bytes).map_err(|e| {
        CliError::new(format!(
            "invalid JSON value: stdin is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// A hint for the most common mistake: text that was meant as a JSON string.
fn string_hint(value: &str) -> &'static str {
    let looks_like_json = value
        .starts_with(|c: char| matches!(c, '{' | '[' | '"' | '-' | '0'..='9' | 't' | 'f' | 'n'));
    if looks_like_json || value.is_empty() {
        ""
    } else {
        " (to store text, quote it as a JSON string, e.g. '\"hello\"')"
    }
}

/// Parses `--ttl`: decimal seconds, greater than zero and finite.
pub fn parse_ttl(text: &str) -> CliResult<Duration> {
    let bad = |why: &str| CliError::new(format!("invalid --ttl {text:?}: {why}"));
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| bad("expected a number of seconds, e.g. 60 or 0.5"))?;
    if !secs.is_finite() {
        return Err(bad("must be a finite number of seconds"));
    }
    if secs <= 0.0 {
        return Err(bad(
            "must be greater than zero (leave out --ttl for an entry that never expires)",
        ));
    }
    let d = Duration::try_from_secs_f64(secs).map_err(|_| bad("too large"))?;
    if d.is_zero() {
        return Err(bad("too small: the shortest TTL is one nanosecond"));
    }
    Ok(d)
}

/// Seconds with millisecond precision and no trailing zeros: `59.998`, `3600`, `0.5`.
/// Rounded up, so a live entry never shows `0`.
pub fn format_seconds(d: Duration) -> String {
    let millis = d.as_nanos().div_ceil(1_000_000);
    let (secs, frac) = (millis / 1000, millis % 1000);
    if frac == 0 {
        return secs.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{secs}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_values() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_ttl(" 1e3 ").unwrap(), Duration::from_secs(1000));
        for bad in [
            "0", "-1", "-0.5", "nan", "NaN", "inf", "-inf", "abc", "", "1s", "1e400", "1e-12",
        ] {
            let err = parse_ttl(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid --ttl"), "{bad}: {err}");
        }
    }

    #[test]
    fn seconds_format() {
        assert_eq!(format_seconds(Duration::from_secs(3600)), "3600");
        assert_eq!(format_seconds(Duration::from_micros(59_997_001)), "59.998");
        assert_eq!(format_seconds(Duration::from_millis(500)), "0.5");
        assert_eq!(format_seconds(Duration::from_millis(1250)), "1.25");
        assert_eq!(format_seconds(Duration::from_nanos(1)), "0.001");
        assert_eq!(format_seconds(Duration::ZERO), "0");
    }

    #[test]
    fn hints_only_for_bare_words() {
        assert_ne!(string_hint("hello"), "");
        assert_eq!(string_hint("{\"a\":"), "");
        assert_eq!(string_hint("tru"), "");
    }
}
