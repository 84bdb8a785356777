//! Store tests against the server in `KV_TEST_POSTGRES_URL` (skipped with a message when it is
//! unset, failing under `CI=true`): the SQL layout, limits, redaction, TLS refusal.

use std::time::Duration;

use kv_core::{ErrorKind, KvStore, KvStoreExt};
use kv_store_postgres::PostgresStore;

fn base_url() -> Option<String> {
    let url = kv_conformance::service_url("KV_TEST_POSTGRES_URL");
    if url.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("KV_TEST_POSTGRES_URL is not set (cargo xtask services up postgres)");
        }
        eprintln!("SKIPPED: KV_TEST_POSTGRES_URL is not set (cargo xtask services up postgres)");
    }
    url
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("kvs_{tag}_{}_{nanos}", std::process::id())
}

fn with_params(base: &str, params: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{params}")
}

/// `postgres://user@host` → `postgres://user:PASSWORD@host` (trust auth ignores it).
fn with_password(base: &str, password: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap();
    let (auth, host) = rest.split_once('@').unwrap();
    let user = auth.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

#[tokio::test]
async fn json_values_are_queryable_and_bytes_exact() {
    let Some(base) = base_url() else { return };
    let table = unique("json");
    let store = PostgresStore::connect(&with_params(&base, &format!("table={table}")))
        .await
        .unwrap();
    let doc = br#"{"name":"alice",  "age": 30, "z":1.50}"#;
    store.put_bytes("users", "alice", &doc[..]).await.unwrap();
    store
        .put_bytes("users", "bin", &[0u8, 159, 146, 150][..])
        .await
        .unwrap();
    store
        .put_bytes("users", "text", &b"plain text"[..])
        .await
        .unwrap();
    assert_eq!(
        store.get_bytes("users", "alice").await.unwrap().as_deref(),
        Some(&doc[..]),
        "JSON comes back byte for byte"
    );
    let client = store.client().await.unwrap();
    let row = client
        .query_one(
            &format!(
                "SELECT value->>'name', (value::jsonb->>'age')::int, raw IS NULL FROM \"{table}\" WHERE key = 'alice'"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "alice");
    assert_eq!(row.get::<_, i32>(1), 30);
    assert!(row.get::<_, bool>(2));
    let n: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{table}\" WHERE raw IS NOT NULL AND value IS NULL"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "non-JSON values live in raw");
    drop(client);
    store.destroy().await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn longest_names_fit_even_incompressible() {
    let Some(base) = base_url() else { return };
    let store = PostgresStore::connect(&with_params(&base, &format!("table={}", unique("len"))))
        .await
        .unwrap();
    let cap = store.info().capability;
    // Pseudo-random letters from many scripts: zlib cannot shrink them.
    let mut x = 0x2545_f491_u64;
    let mut name = |max: usize| {
        let mut s = String::new();
        loop {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = char::from_u32(0x21 + (x % 0x2000) as u32).unwrap_or('x');
            if s.len() + c.len_utf8() > max {
                return s;
            }
            s.push(c);
        }
    };
    let c = name(cap.max_collection_len.unwrap());
    let k = name(cap.max_key_len.unwrap());
    store.put(&c, &k, &1).await.unwrap();
    assert_eq!(store.get::<i32>(&c, &k).await.unwrap(), Some(1));
    let too_long = format!("{c}xxxx");
    let e = store.put(&too_long, "k", &1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKey, "{e}");
    store.destroy().await.unwrap();
}

#[tokio::test]
async fn passwords_never_show() {
    let Some(base) = base_url() else { return };
    let secret = "hunter2-pg-secret";
    let url = with_params(
        &with_password(&base, secret),
        &format!("table={}&timeout_ms=3000", unique("pw")),
    );
    let store = PostgresStore::connect(&url).await.unwrap();
    let shown = format!("{store:?} {} {:?}", store.info().location, store.config());
    assert!(!shown.contains(secret), "{shown}");
    let e = store.put("c", &"k".repeat(5000), &1).await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains(secret));
    store.destroy().await.unwrap();
    store.close().await.unwrap();

    // A server that is not there: the error is temporary and hides the password.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("postgres://u:{secret}@127.0.0.1:{port}/db?timeout_ms=500");
    let e = PostgresStore::connect(&dead).await.unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains(secret), "{e:?}");
}

#[tokio::test]
async fn foreign_table_is_refused_and_destroy_drops_only_its_table() {
    let Some(base) = base_url() else { return };
    let foreign = unique("foreign");
    let mine = unique("mine");
    let store = PostgresStore::connect(&with_params(&base, &format!("table={mine}")))
        .await
        .unwrap();
    let client = store.client().await.unwrap();
    client
        .batch_execute(&format!("CREATE TABLE \"{foreign}\" (x int)"))
        .await
        .unwrap();
    drop(client);
    let e = PostgresStore::connect(&with_params(&base, &format!("table={foreign}")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("not a kv table"), "{e}");

    store.put("c", "k", &1).await.unwrap();
    store.destroy().await.unwrap();
    let client = store.client().await.unwrap();
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE tablename IN ($1, $2) ORDER BY 1",
            &[&foreign, &mine],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        vec![foreign.clone()],
        "destroy dropped exactly its own table"
    );
    client
        .batch_execute(&format!("DROP TABLE \"{foreign}\""))
        .await
        .unwrap();
    drop(client);
    // Still usable: the table comes back.
    store.put("c", "k", &2).await.unwrap();
    assert_eq!(store.get::<i32>("c", "k").await.unwrap(), Some(2));
    store.destroy().await.unwrap();
}

#[tokio::test]
async fn require_tls_against_a_plain_server_fails_cleanly() {
    let Some(base) = base_url() else { return };
    // The test server has no TLS: sslmode=require must refuse, not fall back.
    let url = with_params(&base, "sslmode=require&timeout_ms=2000");
    let e = PostgresStore::connect(&url).await.unwrap_err();
    assert!(
        e.is_temporary() || e.kind() == ErrorKind::Unavailable,
        "{e}"
    );
    // prefer falls back to plain TCP.
    let url = with_params(&base, &format!("sslmode=prefer&table={}", unique("tls")));
    let store = PostgresStore::connect(&url).await.unwrap();
    store.put("c", "k", &1).await.unwrap();
    store.destroy().await.unwrap();
}

#[tokio::test]
async fn operations_time_out() {
    let Some(base) = base_url() else { return };
    let table = unique("timeout");
    let url = with_params(&base, &format!("table={table}&timeout_ms=300&pool_size=2"));
    let store = PostgresStore::connect(&url).await.unwrap();
    store.put("c", "k", &1).await.unwrap();
    // Another session locks the table; a write waits for the lock and must give up in time.
    let other = PostgresStore::connect(&with_params(&base, &format!("table={table}")))
        .await
        .unwrap();
    let mut client = other.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(&format!("LOCK TABLE \"{table}\" IN ACCESS EXCLUSIVE MODE"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = store.put("c", "k", &2).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_temporary());
    assert!(started.elapsed() < Duration::from_secs(5));
    // The server cancels the statement too (statement_timeout, the same limit, so a moment
    // later at most): it does not go on waiting for the lock behind the client's back.
    let mut waiting = 1;
    for _ in 0..50 {
        waiting = tx
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
                &[&format!("%{table}%")],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        waiting, 0,
        "the timed-out statement still waits on the server"
    );
    tx.rollback().await.unwrap();
    drop(client);
    // The store still works afterwards.
    store.put("c", "k", &3).await.unwrap();
    assert_eq!(store.get::<i32>("c", "k").await.unwrap(), Some(3));
    other.destroy().await.unwrap();
}

/// Search filters run in SQL: a page holds only the matching rows (the conformance suite
/// proves the results equal client-side filtering; this proves the server did the work).
#[tokio::test]
async fn search_filters_are_pushed_down() {
    use futures_util::TryStreamExt;
    use kv_core::ScanOptions;
    use kv_core::search::{Condition, Filter};

    let Some(base) = base_url() else { return };
    let table = unique("search");
    let store = PostgresStore::connect(&with_params(&base, &format!("table={table}")))
        .await
        .unwrap();
    let entries: Vec<(String, kv_core::Bytes)> = (0..200)
        .map(|i| {
            let v = serde_json::json!({"n": i, "name": format!("user{i}"), "tier": if i % 2 == 0 { "gold" } else { "basic" }});
            (format!("u{i:03}"), serde_json::to_vec(&v).unwrap().into())
        })
        .collect();
    let refs: Vec<(&str, kv_core::Bytes)> = entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    store
        .put_many_opts("c", &refs, Default::default())
        .await
        .unwrap();

    let cases = [
        (Filter::new().and(Condition::eq("n", 7)), 1),
        (Filter::new().and(Condition::gt("n", 189.5)), 10),
        (Filter::new().and(Condition::is_in("tier", ["gold"])), 100),
        (Filter::new().and(Condition::ge("name", "user95")), 5),
        (Filter::new().key_glob("u1?0").unwrap(), 10),
    ];
    for (filter, matches) in cases {
        let opts = ScanOptions::default()
            .with_page_size(1000)
            .with_filter(filter.clone());
        let page = store.scan_opts("c", opts).await.unwrap();
        assert_eq!(page.items.len(), matches, "rows sent for {filter}");
        let found: Vec<_> = store.search("c", filter).try_collect().await.unwrap();
        assert_eq!(found.len(), matches);
    }
    store.destroy().await.unwrap();
}

/// The server connections of one `application_name`.
async fn connections_of(client: &tokio_postgres::Client, app: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0)
}

/// 64 concurrent point operations: with two shared connections they pipeline on those two
/// (plus the one the schema check used, idle in the pool); with none they take a pooled
/// connection each, and the pool grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_operations_share_few_connections() {
    let Some(base) = base_url() else { return };
    let table = unique("shared");
    let observer = PostgresStore::connect(&with_params(&base, &format!("table={table}")))
        .await
        .unwrap();
    let client = observer.client().await.unwrap();
    for (shared, app) in [(2, unique("app2")), (0, unique("app0"))] {
        let url = with_params(
            &base,
            &format!(
                "table={table}&pool_size=20&shared_connections={shared}&application_name={app}"
            ),
        );
        let store = PostgresStore::connect(&url).await.unwrap();
        let ops = (0..64).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.put("c", &format!("k{i}"), &i).await.unwrap();
                assert_eq!(
                    store.get::<i32>("c", &format!("k{i}")).await.unwrap(),
                    Some(i)
                );
            })
        });
        for op in futures_util::future::join_all(ops).await {
            op.unwrap();
        }
        let n = connections_of(&client, &app).await;
        if shared == 2 {
            assert!(n <= 3, "{n} connections with shared_connections=2");
        } else {
            assert!(
                n > 3,
                "only {n} connections for 64 operations without sharing"
            );
        }
        store.close().await.unwrap();
    }
    drop(client);
    observer.destroy().await.unwrap();
}

/// A shared connection the server closed is replaced: the operation that meets it fails as
/// temporary, and the next ones open a new connection.
#[tokio::test]
async fn a_lost_shared_connection_is_replaced() {
    let Some(base) = base_url() else { return };
    let table = unique("lost");
    let app = unique("lost_app");
    let url = with_params(
        &base,
        &format!("table={table}&pool_size=3&shared_connections=1&application_name={app}"),
    );
    let store = PostgresStore::connect(&url).await.unwrap();
    store.put("c", "k", &1).await.unwrap();
    let observer = PostgresStore::connect(&with_params(&base, &format!("table={table}")))
        .await
        .unwrap();
    let client = observer.client().await.unwrap();
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    let mut failures = 0;
    loop {
        match store.get::<i32>("c", "k").await {
            Ok(v) => {
                assert_eq!(v, Some(1));
                break;
            }
            Err(e) => {
                assert!(e.is_temporary(), "{e}");
                failures += 1;
                assert!(failures <= 2, "the lost connection was not replaced: {e}");
            }
        }
    }
    for _ in 0..5 {
        assert_eq!(store.get::<i32>("c", "k").await.unwrap(), Some(1));
    }
    drop(client);
    observer.destroy().await.unwrap();
}
