//! `kv collections` and `kv clear`.

use kv::{KvStoreExt, Store};

use super::{Out, write_line};
use crate::cli::{CollectionArg, CollectionsArgs};
use crate::error::CliResult;
use crate::json;

/// `kv collections [--json]`: sorted, one per line (quoted like keys).
pub async fn list(store: &Store, args: CollectionsArgs, out: &mut Out) -> CliResult {
    let mut names = store.collections().await?;
    names.sort_unstable();
    for name in names {
        if args.json {
            write_line(out, &json::quote(&name))?;
        } else {
            write_line(out, &json::line_safe_name(&name))?;
        }
    }
    Ok(())
}

/// `kv clear C`: prints how many entries were removed.
pub async fn clear(store: &Store, args: CollectionArg, out: &mut Out) -> CliResult {
    let removed = store.clear(&args.collection).await?;
    write_line(out, &removed.to_string())
}
