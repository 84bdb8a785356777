//! `kv`: the command line interface of the kv project — get, put, list, export, import, copy
//! and benchmark any kv store by URL. See `kv --help`.
//!
//! This file parses the command line, builds the Tokio runtime, runs one command and turns
//! its result into an exit code (0 ok, 1 not found, 2 error).
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod default_store;
mod error;
mod json;
mod progress;
mod selection;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kv::KvStore;

use crate::cli::{Cli, Command};
use crate::commands::Out;
use crate::error::{CliError, CliResult, stdout_error};
use crate::selection::Selection;

fn main() -> ExitCode {
    install_panic_hook();
    // Usage errors print clap's message and exit with status 2; --help/--version exit 0.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(cli: Cli) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::stdio("cannot start the async runtime", &e))?;
    let mut out = Out::new(std::io::stdout());
    let result = runtime.block_on(dispatch(cli, &mut out));
    // Flush even after an error: what was printed before it is still output.
    let flushed = out.flush().map_err(stdout_error);
    // Don't wait long for leftover blocking work: after Ctrl-C, a read of a terminal's stdin
    // never ends by itself (store writes are transactions: cutting them short loses nothing
    // that was reported as written).
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.and(flushed)
}

/// Runs the command until it ends or Ctrl-C. Interrupting drops the command's future, which
/// runs its cleanup (export removes its temporary file); `bench` handles Ctrl-C itself, to
/// clear its collection before it stops.
async fn dispatch(cli: Cli, out: &mut Out) -> CliResult {
    if matches!(cli.command, Command::Bench(_)) {
        return run_command(cli, out).await;
    }
    tokio::select! {
        // Polled first, so the handler is installed before the command starts. If none can
        // be installed, this branch is disabled and Ctrl-C kills the process as usual.
        biased;
        Ok(()) = tokio::signal::ctrl_c() => Err(CliError::interrupted()),
        result = run_command(cli, out) => result,
    }
}

async fn run_command(cli: Cli, out: &mut Out) -> CliResult {
    let flag = cli.store.as_deref();
    match cli.command {
        // copy names both of its stores and opens them itself.
        Command::Copy(args) => {
            if flag.is_some() {
                return Err(CliError::new(
                    "kv copy takes both stores as arguments (kv copy SRC_URL DST_URL); \
                     leave out --store",
                ));
            }
            commands::copy::run(args).await
        }
        // The value is read and checked before the store is opened: waiting for stdin must
        // not keep the store open (a redb file is locked meanwhile), and bad input must not
        // create the default store.
        Command::Put(args) => {
            let request = commands::put_get::PutRequest::new(args)?;
            let (_, store) = open(flag).await?;
            let result = request.run(&store).await;
            close(&store, result).await
        }
        command => {
            let (selection, store) = open(flag).await?;
            let result = run_on(command, &selection, &store, out).await;
            close(&store, result).await
        }
    }
}

/// Opens the store chosen by `--store`, `KV_STORE` or the default.
async fn open(flag: Option<&str>) -> CliResult<(Selection, kv::Store)> {
    let selection = Selection::resolve(flag)?;
    let store = selection.open().await?;
    Ok((selection, store))
}

/// Closes the store (flushes, releases file locks) after a command. After an error, the
/// command's error is the one worth reporting.
async fn close(store: &kv::Store, result: CliResult) -> CliResult {
    let closed = store.close().await.map_err(CliError::from);
    result.and(closed)
}

/// Runs a command that needs nothing but its store.
async fn run_on(
    command: Command,
    selection: &Selection,
    store: &kv::Store,
    out: &mut Out,
) -> CliResult {
    match command {
        Command::Get(args) => commands::put_get::get(store, args, out).await,
        Command::Del(args) => commands::put_get::del(store, args).await,
        Command::Ttl(args) => commands::put_get::ttl(store, args, out).await,
        Command::Keys(args) => commands::keys::run(store, args, out).await,
        Command::Search(args) => commands::search::run(store, args, out).await,
        Command::Collections(args) => commands::collections::list(store, args, out).await,
        Command::Clear(args) => commands::collections::clear(store, args, out).await,
        Command::Export(args) => commands::export::run(store, args, out).await,
        Command::Import(args) => commands::import::run(store, args).await,
        Command::Bench(args) => commands::bench::run(store, args, out).await,
        Command::Info(args) => commands::info::run(store, selection, args, out),
        Command::Put(_) | Command::Copy(_) => Err(CliError::new(
            "internal error: put and copy are dispatched before the store is opened",
        )),
    }
}

/// The last resort: a bug must still end with one line and exit status 2, not a backtrace.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("unknown cause");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "kv: error: internal error: {message}{at} (this is a bug, please report it)"
        );
        std::process::exit(2);
    }));
}
