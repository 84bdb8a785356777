//! The whole kv-conformance suite against the DuckDB store (a database file per store).

mod harness;

fn main() {
    harness::suite("duckdb").run()
}
