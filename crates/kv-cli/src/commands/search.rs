//! `kv search`: the entries of a collection that match a key pattern and conditions on their
//! JSON values, printed as `kv export` records (or keys only).

use futures_util::StreamExt;
use kv::search::{Condition, Filter};
use kv::{KvStore, KvStoreExt, Store};

use super::{Out, write_line};
use crate::cli::SearchArgs;
use crate::error::{CliError, CliResult, stdout_error};
use crate::json;

/// `kv search C [--glob G | --regex R] [--where COND]... [--limit N] [--keys]`.
pub async fn run(store: &Store, args: SearchArgs, out: &mut Out) -> CliResult {
    let filter = filter(&args)?;
    let limit = args.limit.unwrap_or(u64::MAX);
    if limit == 0 {
        return Ok(());
    }
    let mut printed = 0u64;
    if args.keys {
        let mut keys = std::pin::pin!(store.search_keys(&args.collection, filter));
        while let Some(key) = keys.next().await {
            write_line(out, &json::line_safe_name(&key?))?;
            printed += 1;
            if printed >= limit {
                break;
            }
        }
        return Ok(());
    }
    let mut items = std::pin::pin!(store.search(&args.collection, filter));
    let mut line = Vec::new();
    while let Some(item) = items.next().await {
        let item = item?;
        let entry = item.entry.ok_or_else(|| {
            CliError::new(format!(
                "the {} store returned a search result without its value",
                store.info().kind
            ))
        })?;
        line.clear();
        kv::snapshot::write_record(&mut line, &args.collection, &item.key, &entry);
        std::io::Write::write_all(out, &line).map_err(stdout_error)?;
        printed += 1;
        if printed >= limit {
            break;
        }
    }
    Ok(())
}

/// The filter the arguments describe; a bad pattern or condition is a usage error naming it.
fn filter(args: &SearchArgs) -> CliResult<Filter> {
    let mut filter = Filter::new();
    if let Some(glob) = &args.glob {
        filter = filter.key_glob(glob)?;
    }
    if let Some(regex) = &args.regex {
        filter = filter.key_regex(regex)?;
    }
    for text in &args.conditions {
        filter = filter.and(Condition::parse(text)?);
    }
    Ok(filter)
}
