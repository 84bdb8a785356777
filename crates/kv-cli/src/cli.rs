//! The command line: every command, argument and help text (clap derive).
//!
//! Values that need a custom error message (TTLs, JSON) are taken as plain strings here and
//! checked by the commands, so that every bad input is reported the same way
//! (`kv: error: ...`, exit 2) instead of as a multi-line clap usage error.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "One key-value command for every store: memory, redb files, and more.";

const LONG_ABOUT: &str = "\
One key-value command for every store: memory, redb files, and more.

The store is chosen by URL: --store URL, else the KV_STORE environment variable, else the
embedded default store, a redb file at $KV_HOME/default.redb (or
$XDG_DATA_HOME/kv/default.redb, or ~/.local/share/kv/default.redb). `kv info` shows which
store is in use and where it lives.

Values are JSON text. Entries live in collections; an empty collection name (\"\") means
the store's default collection.";

const AFTER_HELP: &str = "\
Examples:
  kv put users alice '{\"age\":30}' --ttl 3600
  kv get users alice
  kv keys users --prefix al
  kv --store memory:// info
  KV_STORE=redb://data/app.redb kv collections
  kv export -o backup.jsonl && kv --store redb://copy.redb import -i backup.jsonl
  kv copy redb://data/app.redb redb:///tmp/app-copy.redb
  kv bench --ops 10000 --concurrency 4

Exit status: 0 on success, 1 if the entry was not found (get, del, ttl), 2 on any error.";

/// `kv`: the command line interface of the kv project.
#[derive(Debug, Parser)]
#[command(
    name = "kv",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The store to use, e.g. memory://, redb://data/app.redb (relative path) or
    /// redb:///var/lib/app.redb (absolute path). Default: $KV_STORE, else the embedded store.
    #[arg(long, short = 's', global = true, value_name = "URL")]
    pub store: Option<String>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command of `kv`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a JSON value.
    #[command(after_help = "\
Examples:
  kv put users alice '{\"age\":30}'
  kv put users alice '{\"age\":30}' --ttl 3600
  kv put config greeting '\"hello\"'     # a JSON string needs its quotes
  kv put counters hits -5
  kv put -- -odd-collection k 1         # names starting with '-' after --
  curl -s https://example.com/data.json | kv put cache data -")]
    Put(PutArgs),

    /// Print a value (JSON) followed by a newline. Exit 1 if missing.
    #[command(after_help = "\
Examples:
  kv get users alice
  kv get users alice | jq .age
  kv get --raw images logo > logo.png        # bytes written by a program, unchanged")]
    Get(GetArgs),

    /// Delete an entry. Exit 1 if it did not exist.
    #[command(visible_alias = "delete", visible_alias = "rm")]
    Del(KeyArgs),

    /// Print the remaining lifetime in seconds, or "none". Exit 1 if missing.
    #[command(long_about = "\
Print the remaining lifetime of an entry in seconds, with millisecond precision and no
trailing zeros (59.998, 3600), or \"none\" if the entry never expires. Exit 1 if missing.")]
    Ttl(KeyArgs),

    /// List the keys of a collection, one per line.
    #[command(
        visible_alias = "ls",
        long_about = "\
List the keys of a collection, one per line, streamed (in key order on stores with ordered
scans).

A key is printed as it is, unless it contains a line break (\\n or \\r) or starts with a
double quote (\"): such a key is printed as a JSON string (\"line1\\nline2\"), so every
output line is exactly one key and a line that starts with \" is always JSON. With --json,
every key is printed as a JSON string.",
        after_help = "\
Examples:
  kv keys users
  kv keys users --prefix al --limit 10
  kv keys users --json | jq -r ."
    )]
    Keys(KeysArgs),

    /// Print the entries of a collection that match a key pattern and conditions on values.
    #[command(
        long_about = "\
Print the entries of a collection that match a key pattern (--glob or --regex) and every
--where condition on their JSON values, one JSON Lines record per entry — the format of
`kv export`, so the output can be piped into `kv import`. --limit counts matches.

Conditions are FIELD OP VALUE: OP is = > >= < <= ~ (regex) or in; FIELD is a dotted path
into the value (\"address.city\"; empty for the whole value); VALUE is JSON if it parses
as JSON, else text; `in` takes a JSON array or comma-separated values; FIELD? tests that
the field exists. Numbers compare by value (1 = 1.0), strings by code point. Globs match
the whole key (* ? [a-z] [!a-z], \\ escapes); regexes match anywhere unless anchored.
Stores that can filter natively (PostgreSQL, DuckDB, memory) do; elsewhere kv filters the
scan. Values that are not JSON never match a condition.",
        after_help = "\
Examples:
  kv search users --where 'age>=18' --where 'city=Paris'
  kv search users --glob 'user:*' --limit 10
  kv search users --where 'tier in gold,silver' --keys
  kv search users --where 'name~^Al' | kv --store redb://copy.redb import"
    )]
    Search(SearchArgs),

    /// List the collections that hold entries, one per line (quoted like `kv keys`).
    Collections(CollectionsArgs),

    /// Remove every entry of a collection and print how many were removed.
    Clear(CollectionArg),

    /// Write entries as JSON Lines (to stdout, or atomically to a file).
    #[command(
        long_about = "\
Write entries as JSON Lines, one object per entry:

  {\"collection\":\"users\",\"key\":\"alice\",\"value\":{\"age\":30},\"expires_at\":null}

`expires_at` is an RFC 3339 UTC time with microseconds, or null. A value that is not JSON
text (bytes written by a program with another codec) is written as
\"value_base64\":\"<standard base64>\" instead of \"value\", so nothing is lost. Every
collection is exported unless --collection is given. `kv import` reads this format.",
        after_help = "\
Examples:
  kv export > all.jsonl
  kv export --collection users -o users.jsonl"
    )]
    Export(ExportArgs),

    /// Read entries from JSON Lines written by `kv export`.
    #[command(
        long_about = "\
Read entries from JSON Lines in the format `kv export` writes (from stdin, or from a file).
Entries whose expires_at is in the past are skipped; the others keep their remaining
lifetime. Blank lines are ignored; a malformed line stops the import with exit status 2
(the entries before it stay imported). A summary is printed on stderr.",
        after_help = "\
Examples:
  kv import -i backup.jsonl
  kv export --store redb://a.redb | kv import --store redb://b.redb"
    )]
    Import(ImportArgs),

    /// Copy every collection of one store into another, keeping remaining lifetimes.
    #[command(after_help = "\
Examples:
  kv copy redb://data/app.redb redb:///backup/app.redb
  kv copy redb://data/app.redb memory://        # a dry run: reads everything")]
    Copy(CopyArgs),

    /// Measure the selected store: ops/s, p50 and p99 latency per operation.
    #[command(
        long_about = "\
Measure the selected store: ops/s and p50/p99 latency of put, get, get_many, put_many, scan
and delete. The benchmark writes into a fresh collection (kv-bench-<pid>-<random>) that is
cleared at the end, also after an error or Ctrl-C.

get_many and put_many touch 100 keys per operation and run ops/100 operations (so every
operation kind touches about --ops keys); a scan operation reads one page of 100 keys.
With --concurrency C, C tasks share the store handle and split the operations.",
        after_help = "\
Examples:
  kv bench
  kv --store memory:// bench --ops 100000 --concurrency 4
  kv bench --only get --value-size 1024
  kv bench --only put,get --duration 2 --ops 1000
  kv bench --ops 1000 --json | jq .ops_per_sec"
    )]
    Bench(BenchArgs),

    /// Show the store in use: kind, location, where the URL came from, capabilities.
    Info(InfoArgs),
}

/// Arguments of `kv put`.
#[derive(Debug, Args)]
#[command(allow_negative_numbers = true)]
pub struct PutArgs {
    /// The collection ("" = the store's default collection).
    pub collection: String,
    /// The key.
    pub key: String,
    /// The value as JSON text, stored exactly as given (minus surrounding whitespace);
    /// '-' reads it from stdin.
    pub value: String,
    /// Expire the entry after this many seconds (decimals allowed: 0.5, 90, 86400).
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub ttl: Option<String>,
}

/// Arguments of `kv get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The collection ("" = the store's default collection).
    pub collection: String,
    /// The key.
    pub key: String,
    /// Write the stored bytes to stdout unchanged (no check, no newline).
    #[arg(long)]
    pub raw: bool,
}

/// A collection and a key.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The collection ("" = the store's default collection).
    pub collection: String,
    /// The key.
    pub key: String,
}

/// Arguments of `kv keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The collection ("" = the store's default collection).
    pub collection: String,
    /// Only keys that start with this text.
    #[arg(long, short = 'p', value_name = "P")]
    pub prefix: Option<String>,
    /// Stop after N keys.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<u64>,
    /// Print every key as a JSON string.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kv search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The collection ("" = the store's default collection).
    pub collection: String,
    /// Only keys matching this glob (whole key: * ? [a-z] [!a-z], \\ escapes).
    #[arg(long, short = 'g', value_name = "GLOB", conflicts_with = "regex")]
    pub glob: Option<String>,
    /// Only keys matching this regex (anywhere in the key unless anchored with ^ and $).
    #[arg(long, short = 'r', value_name = "REGEX")]
    pub regex: Option<String>,
    /// A condition on the JSON value: FIELD OP VALUE (OP: = > >= < <= ~ in) or FIELD?; repeat
    /// for several (all must hold).
    #[arg(long = "where", short = 'w', value_name = "COND")]
    pub conditions: Vec<String>,
    /// Stop after N matches.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<u64>,
    /// Print only the keys (quoted like `kv keys`).
    #[arg(long)]
    pub keys: bool,
}

/// Arguments of `kv collections`.
#[derive(Debug, Args)]
pub struct CollectionsArgs {
    /// Print every name as a JSON string.
    #[arg(long)]
    pub json: bool,
}

/// One collection.
#[derive(Debug, Args)]
pub struct CollectionArg {
    /// The collection ("" = the store's default collection).
    pub collection: String,
}

/// Arguments of `kv export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Export only this collection.
    #[arg(long, short = 'c', value_name = "C")]
    pub collection: Option<String>,
    /// Write to FILE instead of stdout, atomically (a temporary file renamed at the end). A
    /// new file is readable by its owner only: values may be secrets.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `kv import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Read from FILE instead of stdin ('-' = stdin).
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// Arguments of `kv copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The store to read, e.g. redb://data/app.redb.
    #[arg(value_name = "SRC_URL")]
    pub src: String,
    /// The store to write, e.g. redb:///backup/app.redb.
    #[arg(value_name = "DST_URL")]
    pub dst: String,
}

/// Arguments of `kv bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Operations per kind (get_many/put_many/scan: ops/100 operations of 100 keys each).
    /// At most 10 000 000: keys and latencies are kept in memory.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub ops: u64,
    /// Tasks running at once, sharing one store handle.
    #[arg(long, short = 'c', value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Size of each value in bytes.
    #[arg(long, value_name = "B", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=64 * 1024 * 1024))]
    pub value_size: u64,
    /// Print one JSON object per operation kind instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Measure only these operation kinds (comma-separated: put, get, get_many, put_many,
    /// scan, delete). Kinds that read the benchmark's keys get an unreported put phase first
    /// when put is not listed.
    #[arg(long, value_name = "OPS", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Run each phase for this long instead of a fixed count: it makes at least one pass over
    /// the --ops keys, then cycles over them until SECS have passed (puts then overwrite,
    /// deletes then miss), up to 10 000 000 operations.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

/// Arguments of `kv info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn negative_numbers_are_values() {
        let cli = Cli::try_parse_from(["kv", "put", "c", "k", "-5", "--ttl", "-1"]).unwrap();
        match cli.command {
            Command::Put(p) => {
                assert_eq!(p.value, "-5");
                assert_eq!(p.ttl.as_deref(), Some("-1"));
            }
            other => panic!("{other:?}"),
        }
    }
}
