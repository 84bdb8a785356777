//! `kv import`: JSON Lines written by `kv export`, read line by line with Tokio (so Ctrl-C
//! works while it waits for a terminal's stdin) and loaded in batches by a
//! [`kv::snapshot::Loader`].

use std::io::IsTerminal;
use std::path::Path;

use kv::Store;
use kv::snapshot::{LoadOptions, Loader, MalformedLine};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::plural;
use crate::cli::ImportArgs;
use crate::error::{CliError, CliResult};
use crate::progress;

/// `kv import [-i FILE]`.
pub async fn run(store: &Store, args: ImportArgs) -> CliResult {
    let path = args.input.filter(|p| p.as_os_str() != "-");
    let (input, pb): (Box<dyn AsyncRead + Unpin + Send>, _) = match &path {
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!(
                    "kv: reading JSON Lines from stdin (end with Ctrl-D; -i FILE reads a file)"
                );
            }
            (Box::new(tokio::io::stdin()), progress::counter("import"))
        }
        Some(p) => {
            let file = tokio::fs::File::open(p)
                .await
                .map_err(|e| CliError::file("cannot open", p, &e))?;
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            (Box::new(file), progress::bytes_bar(len, "import"))
        }
    };
    let by_bytes = path.is_some();
    let name = path
        .as_deref()
        .map_or_else(|| "stdin".to_owned(), |p: &Path| p.display().to_string());
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut loader = Loader::new(store, &LoadOptions::default());
    let mut buf = Vec::with_capacity(1024);
    let mut read = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| CliError::file("cannot read", Path::new(&name), &e))?;
        if n == 0 {
            break;
        }
        if let Err(e) = loader.push_line(&buf).await {
            pb.finish_and_clear();
            return Err(match MalformedLine::of(&e) {
                Some(bad) => {
                    // What came before the bad line is written, so the count below is exact.
                    let done = loader.finish().await?;
                    CliError::new(format!(
                        "{name}, {bad} (stopped; {} {} before it imported)",
                        done.entries,
                        plural(done.entries, "entry", "entries"),
                    ))
                }
                // A batch holds many lines: name how far the import got, not one line.
                None => CliError::from(e).context(format_args!(
                    "importing {name} (up to line {})",
                    loader.lines()
                )),
            });
        }
        read += n as u64;
        if by_bytes {
            pb.set_position(read);
            if loader.lines().is_multiple_of(1024) {
                pb.set_message(format!("{} lines", loader.lines()));
            }
        } else {
            pb.inc(1);
        }
    }
    let done = loader.finish().await?;
    pb.finish_and_clear();
    eprintln!(
        "kv: imported {} {}, skipped {} expired",
        done.entries,
        plural(done.entries, "entry", "entries"),
        done.expired
    );
    Ok(())
}
