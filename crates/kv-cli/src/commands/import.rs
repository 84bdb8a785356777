//! `kv import`: JSON Lines written by `kv export`, read line by line and written in batches.

use std::io::IsTerminal;
use std::path::Path;

use kv::Store;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::plural;
use crate::batch::BatchWriter;
use crate::cli::ImportArgs;
use crate::error::{CliError, CliResult};
use crate::{json, jsonl, progress};

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
    let mut writer = BatchWriter::new(store);
    let mut buf = Vec::with_capacity(1024);
    let mut line_no = 0u64;
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
        line_no += 1;
        match parse_and_push(&buf, &mut writer).await {
            Ok(()) => {}
            Err(LineError::Bad(why)) => {
                pb.finish_and_clear();
                // What came before the bad line is written, so the count below is exact.
                let done = writer.finish().await?;
                return Err(CliError::new(format!(
                    "{name}, line {line_no}: {why} (stopped; {} {} before it imported)",
                    done.written,
                    plural(done.written, "entry", "entries"),
                )));
            }
            // A batch holds many lines: name how far the import got, not one line.
            Err(LineError::Store(e)) => {
                return Err(e.context(format_args!("importing {name} (up to line {line_no})")));
            }
        }
        read += n as u64;
        if by_bytes {
            pb.set_position(read);
            if line_no.is_multiple_of(1024) {
                pb.set_message(format!("{line_no} lines"));
            }
        } else {
            pb.inc(1);
        }
    }
    let done = writer.finish().await?;
    pb.finish_and_clear();
    eprintln!(
        "kv: imported {} {}, skipped {} expired",
        done.written,
        plural(done.written, "entry", "entries"),
        done.expired
    );
    Ok(())
}

/// Why a line could not be imported.
enum LineError {
    /// Malformed input (exit 2 with the line number).
    Bad(String),
    /// The store failed.
    Store(CliError),
}

async fn parse_and_push(line: &[u8], writer: &mut BatchWriter<'_>) -> Result<(), LineError> {
    let text =
        std::str::from_utf8(line).map_err(|e| LineError::Bad(format!("not UTF-8 text ({e})")))?;
    let text = json::trim(text);
    if text.is_empty() {
        return Ok(());
    }
    let record = jsonl::parse_record(text).map_err(LineError::Bad)?;
    writer
        .push(
            record.collection,
            record.key,
            record.value,
            record.expires_at,
        )
        .await
        .map_err(LineError::Store)
}
