//! `kv keys`: the keys of a collection, streamed page by page.

use futures_util::StreamExt;
use kv::{DEFAULT_PAGE_SIZE, KvStoreExt, ScanOptions, Store};

use super::{Out, write_line};
use crate::cli::KeysArgs;
use crate::error::CliResult;
use crate::json;

/// `kv keys C [--prefix P] [--limit N] [--json]`.
pub async fn run(store: &Store, args: KeysArgs, out: &mut Out) -> CliResult {
    let limit = args.limit.unwrap_or(u64::MAX);
    if limit == 0 {
        return Ok(());
    }
    // Never fetch a page much bigger than what will be printed.
    let page_size = usize::try_from(limit).map_or(DEFAULT_PAGE_SIZE, |l| l.min(DEFAULT_PAGE_SIZE));
    let opts = ScanOptions::default()
        .keys_only()
        .with_prefix(args.prefix.unwrap_or_default())
        .with_page_size(page_size);
    let mut keys = std::pin::pin!(store.scan(&args.collection, opts));
    let mut printed = 0u64;
    while let Some(item) = keys.next().await {
        let key = item?.key;
        if args.json {
            write_line(out, &json::quote(&key))?;
        } else {
            write_line(out, &json::line_safe_name(&key))?;
        }
        printed += 1;
        if printed >= limit {
            break;
        }
    }
    Ok(())
}
