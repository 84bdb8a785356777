//! Redis Cluster failover: a 3-primary + 3-replica cluster started here (its own ports and
//! temp dir), a writer using `wait=1` (each write acknowledged by a replica), and one
//! primary SIGKILLed mid-workload. Its replica takes over; every operation returns `Ok` or a
//! temporary error, the same store handle resumes writing, and no acknowledged write is lost.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kv_core::KvStoreExt;
use kv_store_redis::RedisStore;

#[test]
fn primary_killed_mid_workload_loses_no_acknowledged_write() {
    let Some((server_bin, cli_bin)) = support::binaries(
        "cluster_failover::primary_killed_mid_workload_loses_no_acknowledged_write",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut servers = Vec::new();
    for i in 0..6 {
        let port = support::free_port(true);
        let d = dir.path().join(format!("n{i}"));
        let conf = d.join("nodes.conf");
        let conf = conf.to_string_lossy().into_owned();
        servers.push(support::Server::start(
            &server_bin,
            &d,
            port,
            &[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &conf,
                "--cluster-node-timeout",
                "1000",
            ],
        ));
    }
    let addrs: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
    support::cli(&cli_bin, &args);
    // Ready: every node sees the cluster ok, every primary has its replica in sync.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = servers.iter().all(|s| {
            let p = s.port.to_string();
            support::cli(&cli_bin, &["-p", &p, "cluster", "info"]).contains("cluster_state:ok")
        });
        let synced = servers[..3].iter().all(|s| {
            let p = s.port.to_string();
            let info = support::cli(&cli_bin, &["-p", &p, "info", "replication"]);
            info.contains("connected_slaves:1") && info.contains("state=online")
        });
        if ok && synced {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!(
        "redis+cluster://{}?wait=1&wait_timeout_ms=300&timeout_ms=2000&namespace=failover",
        addrs[..3].join(",")
    );
    let victim_port = servers[0].port;
    rt.block_on(async move {
        let store = RedisStore::connect(&url).await.expect("connect");
        let mut acked: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut temporary_errors = 0u32;
        let mut i = 0u64;
        // One write; `Ok` is recorded as acknowledged, an error must be temporary.
        let mut write = async |store: &RedisStore, coll: String, i: u64| -> bool {
            let key = format!("k{i}");
            let t = Instant::now();
            let r = store.put(&coll, &key, &i).await;
            assert!(
                t.elapsed() < Duration::from_millis(4500),
                "a put hung: {:?}",
                t.elapsed()
            );
            match r {
                Ok(()) => {
                    acked.insert((coll, key), i);
                    true
                }
                Err(e) => {
                    assert!(e.is_temporary(), "non-temporary error: {e}");
                    if std::env::var_os("KV_TEST_VERBOSE").is_some() {
                        eprintln!("{e}");
                    }
                    temporary_errors += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    false
                }
            }
        };
        // Collections spread over every primary.
        while i < 200 {
            i += 1;
            write(&store, format!("c{}", i % 16), i).await;
        }
        servers[0].kill();
        let killed_at = Instant::now();
        // During and after the failover: the other primaries keep serving, the victim's
        // replica is promoted (its writes fail WAIT until it has a replica again: correct,
        // such writes are not acknowledged).
        let mut ok_after_kill = 0;
        while killed_at.elapsed() < Duration::from_secs(4) {
            i += 1;
            if write(&store, format!("c{}", i % 16), i).await {
                ok_after_kill += 1;
            }
        }
        assert!(ok_after_kill > 0, "no write succeeded after the kill");
        // The old primary comes back as a replica of the promoted one: every collection is
        // writable again with wait=1, through the same store handle.
        let servers = tokio::task::spawn_blocking(move || {
            servers[0].restart();
            servers
        })
        .await
        .expect("restart");
        let deadline = Instant::now() + Duration::from_secs(45);
        for c in 0..16 {
            loop {
                i += 1;
                if write(&store, format!("c{c}"), i).await {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "collection c{c} stayed unwritable"
                );
            }
        }
        eprintln!(
            "primary :{victim_port} killed; {} writes acknowledged, {temporary_errors} \
             temporary errors, every collection writable again {:?} after the kill",
            acked.len(),
            killed_at.elapsed()
        );
        // Every acknowledged write is there (read from the new primaries).
        let mut missing = Vec::new();
        for ((c, k), v) in &acked {
            let got = loop {
                match store.get::<u64>(c, k).await {
                    Ok(g) => break g,
                    Err(e) => {
                        assert!(e.is_temporary(), "{e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            };
            if got != Some(*v) {
                missing.push((c.clone(), k.clone()));
            }
        }
        assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
        drop(servers);
    });
}
