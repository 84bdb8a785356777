//! `kv info`: which store is in use, where it lives and what it can do.

use kv::{KvStore, Store};
use serde_json::{Map, Value};

use super::{Out, write_line};
use crate::cli::InfoArgs;
use crate::error::CliResult;
use crate::selection::{Selection, Source};

/// `kv info [--json]`. Every location shown is redacted (no passwords).
pub fn run(store: &Store, selection: &Selection, args: InfoArgs, out: &mut Out) -> CliResult {
    let info = store.info();
    let url = kv::url::redact(&selection.url);
    let source = match &selection.source {
        Source::Flag => "--store".to_owned(),
        Source::Env => "KV_STORE".to_owned(),
        Source::Default(_) => {
            "default (the embedded store; choose another with --store or KV_STORE)".to_owned()
        }
    };
    let capabilities = info.capability.describe();
    if args.json {
        let mut caps = Map::new();
        for (name, value) in capabilities {
            caps.insert(name.to_owned(), typed(value));
        }
        let mut obj = Map::new();
        obj.insert("kind".into(), info.kind.into());
        obj.insert("location".into(), info.location.clone().into());
        obj.insert("url".into(), url.into());
        obj.insert("source".into(), selection.source.to_string().into());
        obj.insert(
            "default_collection".into(),
            info.default_collection.clone().into(),
        );
        obj.insert("capabilities".into(), Value::Object(caps));
        return write_line(out, &Value::Object(obj).to_string());
    }
    let rows = [
        ("kind", info.kind.to_owned()),
        ("location", info.location.clone()),
        ("url", url),
        ("source", source),
        ("default collection", info.default_collection.clone()),
    ];
    for (name, value) in rows {
        write_line(out, &format!("{:<22}{value}", format!("{name}:")))?;
    }
    write_line(out, "capabilities:")?;
    for (name, value) in capabilities {
        write_line(out, &format!("  {name:<20}{value}"))?;
    }
    Ok(())
}

/// `true`/`false` and integers as JSON booleans and numbers, the rest as text.
fn typed(value: String) -> Value {
    match value.as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => match value.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(value),
        },
    }
}
