//! Store tests against the server in `KV_TEST_MYSQL_URL` (skipped with a message when it is
//! unset, failing under `CI=true`): the SQL layout, limits, redaction, refusal of foreign
//! tables, destroy.

use kv_core::{ErrorKind, KvStore, KvStoreExt};
use kv_store_mysql::MysqlStore;
use kv_store_mysql::sqlx::{self, AssertSqlSafe, Row};

fn base_url() -> Option<String> {
    let url = kv_conformance::service_url("KV_TEST_MYSQL_URL");
    if url.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("KV_TEST_MYSQL_URL is not set (cargo xtask services up mariadb)");
        }
        eprintln!("SKIPPED: KV_TEST_MYSQL_URL is not set (cargo xtask services up mariadb)");
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

#[tokio::test]
async fn json_values_are_queryable_and_bytes_exact() {
    let Some(base) = base_url() else { return };
    let table = unique("json");
    let store = MysqlStore::connect(&with_params(&base, &format!("table={table}")))
        .await
        .unwrap();
    let doc = br#"{"name":"alice",  "age": 30, "z":1.50}"#;
    store.put_bytes("users", "alice", &doc[..]).await.unwrap();
    store
        .put_bytes("users", "bin", &[0u8, 159, 146, 150][..])
        .await
        .unwrap();
    assert_eq!(
        store.get_bytes("users", "alice").await.unwrap().as_deref(),
        Some(&doc[..])
    );
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT JSON_VALUE(value, '$.name'), CAST(`key` AS CHAR CHARACTER SET utf8mb4) FROM `{table}` WHERE raw IS NULL"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>(0), "alice");
    assert_eq!(row.get::<String, _>(1), "alice");
    store.destroy().await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn longest_names_fit() {
    let Some(base) = base_url() else { return };
    let store = MysqlStore::connect(&with_params(&base, &format!("table={}", unique("len"))))
        .await
        .unwrap();
    let cap = store.info().capability;
    let c = "é".repeat(cap.max_collection_len.unwrap() / 2);
    let k = "ü".repeat(cap.max_key_len.unwrap() / 2);
    store.put(&c, &k, &1).await.unwrap();
    assert_eq!(store.get::<i32>(&c, &k).await.unwrap(), Some(1));
    let e = store.put(&c, &format!("{k}x"), &1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKey, "{e}");
    store.destroy().await.unwrap();
}

#[tokio::test]
async fn passwords_never_show() {
    let Some(base) = base_url() else { return };
    let secret = "hunter2-my-secret";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("mysql://u:{secret}@127.0.0.1:{port}/db?timeout_ms=500");
    let e = MysqlStore::connect(&dead).await.unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(!format!("{e} {e:?}").contains(secret), "{e:?}");
    // A wrong password against the real server: refused, and still not shown.
    let (scheme, rest) = base.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    let wrong = format!("{scheme}://nobody:{secret}@{host}");
    let e = MysqlStore::connect(&wrong).await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains(secret), "{e:?}");
    let cfg = kv_store_mysql::MysqlConfig::from_url(&wrong).unwrap();
    assert!(!format!("{cfg:?} {}", cfg.location()).contains(secret));
}

#[tokio::test]
async fn foreign_table_is_refused_and_destroy_drops_only_its_table() {
    let Some(base) = base_url() else { return };
    let foreign = unique("foreign");
    let mine = unique("mine");
    let store = MysqlStore::connect(&with_params(&base, &format!("table={mine}")))
        .await
        .unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE TABLE `{foreign}` (x int)")))
        .execute(store.pool())
        .await
        .unwrap();
    let e = MysqlStore::connect(&with_params(&base, &format!("table={foreign}")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    store.put("c", "k", &1).await.unwrap();
    store.destroy().await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (?, ?)",
    )
    .bind(&foreign)
    .bind(&mine)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(n, 1, "destroy dropped exactly its own table");
    sqlx::query(AssertSqlSafe(format!("DROP TABLE `{foreign}`")))
        .execute(store.pool())
        .await
        .unwrap();
    store.put("c", "k", &2).await.unwrap();
    assert_eq!(store.get::<i32>("c", "k").await.unwrap(), Some(2));
    store.destroy().await.unwrap();
}
