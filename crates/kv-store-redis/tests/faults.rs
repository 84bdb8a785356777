//! Fault test: a redis-server started here is SIGKILLed while several tasks work, then
//! restarted on the same port. Every operation returns `Ok` or a temporary error, none hangs
//! past the timeout, and the same store handle serves again within 1 s of the server's return.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kv_core::KvStoreExt;
use kv_store_redis::RedisStore;

const TIMEOUT: Duration = Duration::from_millis(1000);

#[test]
fn server_killed_and_restarted_mid_workload() {
    let Some((server_bin, _)) =
        support::binaries("faults::server_killed_and_restarted_mid_workload")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port(false);
    let mut server = support::Server::start(&server_bin, dir.path(), port, &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let url = format!(
            "redis://127.0.0.1:{port}?timeout_ms={}&namespace=faults",
            TIMEOUT.as_millis()
        );
        let store = Arc::new(RedisStore::connect(&url).await.expect("connect"));
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let temp = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for t in 0..4 {
            let (store, stop, ok, temp) = (store.clone(), stop.clone(), ok.clone(), temp.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let key = format!("t{t}-{}", i % 50);
                    let started = Instant::now();
                    let r = match i % 3 {
                        0 => store.put("c", &key, &i).await.map(|_| ()),
                        1 => store.get::<u64>("c", &key).await.map(|_| ()),
                        _ => store.delete("c", &key).await.map(|_| ()),
                    };
                    let took = started.elapsed();
                    assert!(
                        took < TIMEOUT + Duration::from_millis(500),
                        "an operation took {took:?} (timeout {TIMEOUT:?})"
                    );
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            assert!(
                                e.is_temporary(),
                                "non-temporary error during the outage: {e}"
                            );
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            temp.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.kill();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let errors_while_down = temp.load(Ordering::Relaxed);
        let server = tokio::task::spawn_blocking(move || {
            server.restart();
            server
        })
        .await
        .expect("restart");
        let back = Instant::now();
        let deadline = back + Duration::from_secs(1);
        loop {
            match store.put("c", "after", &1u8).await {
                Ok(()) => break,
                Err(e) => {
                    assert!(e.is_temporary(), "{e}");
                    assert!(
                        Instant::now() < deadline,
                        "the store did not serve within 1 s of the server's return: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        eprintln!(
            "served again {:?} after the server was back",
            back.elapsed()
        );
        assert_eq!(store.get::<u8>("c", "after").await.expect("get"), Some(1));
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("a worker panicked");
        }
        assert!(ok.load(Ordering::Relaxed) > 0);
        assert!(errors_while_down > 0, "the outage was not noticed");
        drop(server);
    });
}

/// A server that stops answering (SIGSTOP: the connection stays open, nothing comes back):
/// every kind of operation ends with a temporary `Timeout` error instead of waiting forever —
/// single-command operations through the client's response timeout, scans through the
/// store's own deadline — and the store serves again once the server continues.
#[test]
fn a_silent_server_times_out() {
    let Some((server_bin, _)) = support::binaries("faults::a_silent_server_times_out") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = support::free_port(false);
    let mut server = support::Server::start(&server_bin, dir.path(), port, &[]);
    let pid = server.child.as_ref().expect("running").id().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} {pid}");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = format!("redis://127.0.0.1:{port}?timeout_ms=300&namespace=silent");
        let store = RedisStore::connect(&url).await.expect("connect");
        store.put("c", "k", &1).await.expect("put before");
        signal("-STOP");
        let results = [
            store.get::<u64>("c", "k").await.map(|_| ()),
            store.put("c", "k", &2).await,
            store.delete("c", "k").await.map(|_| ()),
            store.get_many::<u64>("c", &["k", "j"]).await.map(|_| ()),
            store.put_if_absent("c", "new", &3).await.map(|_| ()),
            store.len("c").await.map(|_| ()),
        ];
        signal("-CONT");
        for (i, r) in results.into_iter().enumerate() {
            let e = r.expect_err("the server was stopped");
            assert_eq!(e.kind(), kv_core::ErrorKind::Timeout, "operation {i}: {e}");
            assert!(e.is_temporary(), "operation {i}: {e}");
        }
        // Back: the same handle works again (after the replies queued during the stop drain).
        let mut served = false;
        for _ in 0..50 {
            if store.put("c", "after", &4).await.is_ok() {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(served, "the store did not serve again after SIGCONT");
        store.destroy().await.expect("destroy");
    });
    server.kill();
}
