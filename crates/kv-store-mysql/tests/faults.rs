//! Fault test: a real MariaDB (or MySQL) server started by the test (free port, temporary directory) is
//! killed with SIGKILL in the middle of a workload from several tasks, then restarted on the
//! same port. Every operation in between must return `Ok` or a temporary error, none may
//! outlast the operation timeout, and the same store handle must serve again within 1 s of
//! the server being back.
//!
//! Needs `mariadbd` and `mariadb-install-db` (Debian: `mariadb-server`). Without them the test
//! says it is skipped and why — and fails under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kv_core::{Bytes, KvStore, KvStoreExt, PutMode, PutOptions};
use kv_store_mysql::MysqlStore;
use kv_store_mysql::sqlx::{self, Connection};
use tokio::process::{Child, Command};

const TIMEOUT: Duration = Duration::from_millis(1000);

fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn skip(why: &str) {
    if strict() {
        panic!("fault test cannot run under CI=true: {why}");
    }
    eprintln!("faults: SKIPPED: {why}");
}

fn find(program: &str) -> Option<PathBuf> {
    let mut dirs = vec![PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|s| s.trim() == "0")
}

struct Server {
    mariadbd: PathBuf,
    dir: PathBuf,
    port: u16,
    root: bool,
    child: Option<Child>,
}

impl Server {
    async fn init(install: PathBuf, mariadbd: PathBuf, dir: &Path) -> Result<Server, String> {
        let root = is_root();
        if root {
            let st = std::process::Command::new("chown")
                .args(["-R", "mysql:mysql"])
                .arg(dir)
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err("chown mysql:mysql failed (no `mysql` user?)".into());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut cmd = Command::new(install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .stdin(Stdio::null());
        if root {
            cmd.arg("--user=mysql");
        }
        let out = cmd.output().await.map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Server {
            mariadbd,
            dir: dir.to_owned(),
            port,
            root,
            child: None,
        })
    }

    fn start(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!(
                "--socket={}",
                self.dir.join("mysqld.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mysqld.pid").display()
            ))
            .args(["--skip-log-bin", "--innodb-flush-log-at-trx-commit=0"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        if self.root {
            cmd.arg("--user=mysql");
        }
        self.child = Some(cmd.spawn().map_err(|e| e.to_string())?);
        Ok(())
    }

    fn url(&self) -> String {
        format!(
            "mysql://kv:hunter2@127.0.0.1:{}/kv?table=kv_faults&timeout_ms={}&pool_size=8",
            self.port,
            TIMEOUT.as_millis()
        )
    }

    /// Waits until a fresh connection works (and the database `kv` exists).
    async fn wait_ready(&self, limit: Duration) -> Result<Instant, String> {
        let deadline = Instant::now() + limit;
        let url = format!("mysql://root@127.0.0.1:{}/", self.port);
        loop {
            if let Ok(mut c) = sqlx::MySqlConnection::connect(&url).await {
                let mut ok = true;
                for sql in [
                    "CREATE DATABASE IF NOT EXISTS kv",
                    "CREATE USER IF NOT EXISTS 'kv'@'127.0.0.1' IDENTIFIED BY 'hunter2'",
                    "GRANT ALL ON kv.* TO 'kv'@'127.0.0.1'",
                ] {
                    ok = ok && sqlx::query(sql).execute(&mut c).await.is_ok();
                }
                if ok {
                    return Ok(Instant::now());
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
                return Err(format!("server not ready after {limit:?}; log:\n{log}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill(); // SIGKILL
            let _ = c.wait().await;
        }
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    temporary: AtomicU64,
}

async fn workload(
    store: MysqlStore,
    task: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Result<(), String> {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let key = format!("t{task}-k{}", i % 20);
        let started = Instant::now();
        let r: kv_core::Result<()> = match i % 5 {
            0 => store.put("c", &key, &i).await,
            1 => store.get::<u64>("c", &key).await.map(drop),
            2 => store
                .get_many_opts("c", &[key.as_str(), "x"], Default::default())
                .await
                .map(drop),
            3 => store.delete("c", &key).await.map(drop),
            _ => match store
                .put_opts(
                    "c",
                    &format!("cas{task}"),
                    Bytes::from_static(b"1"),
                    PutOptions::default().with_mode(PutMode::IfAbsent),
                )
                .await
            {
                Err(e) if e.kind() == kv_core::ErrorKind::ConditionFailed => Ok(()),
                other => other,
            },
        };
        let took = started.elapsed();
        if took > TIMEOUT + Duration::from_millis(1500) {
            return Err(format!("an operation took {took:?} (timeout {TIMEOUT:?})"));
        }
        match r {
            Ok(()) => tally.ok.fetch_add(1, Ordering::Relaxed),
            Err(e) if e.is_temporary() => {
                if e.to_string().contains("hunter2") || format!("{e:?}").contains("hunter2") {
                    return Err(format!("the password leaked into an error: {e}"));
                }
                tally.temporary.fetch_add(1, Ordering::Relaxed)
            }
            Err(e) => return Err(format!("a permanent error during the fault: {e}")),
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted() {
    let (Some(install), Some(mariadbd)) = (find("mariadb-install-db"), find("mariadbd")) else {
        skip("mariadbd / mariadb-install-db not found (apt-get install mariadb-server)");
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("kv-mysql-faults-")
        .tempdir()
        .unwrap();
    let mut server = match Server::init(install, mariadbd, dir.path()).await {
        Ok(s) => s,
        Err(why) => {
            skip(&why);
            return;
        }
    };
    server.start().unwrap();
    server.wait_ready(Duration::from_secs(30)).await.unwrap();

    let store = MysqlStore::connect(&server.url()).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let tasks: Vec<_> = (0..4)
        .map(|t| tokio::spawn(workload(store.clone(), t, stop.clone(), tally.clone())))
        .collect();

    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.start().unwrap();
    let back = server.wait_ready(Duration::from_secs(30)).await.unwrap();

    // The same handle serves again within 1 s of the server being back.
    let deadline = back + Duration::from_secs(1);
    let served = loop {
        match store.put("c", "after", &1).await {
            Ok(()) => break Instant::now(),
            Err(e) => {
                assert!(e.is_temporary(), "permanent error after restart: {e}");
                assert!(
                    Instant::now() < deadline,
                    "the store did not serve within 1 s of the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(store.get::<i32>("c", "after").await.unwrap(), Some(1));

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let ok = tally.ok.load(Ordering::Relaxed);
    let temporary = tally.temporary.load(Ordering::Relaxed);
    eprintln!(
        "faults: {ok} ok, {temporary} temporary errors; served {:?} after the server was back",
        served - back
    );
    assert!(ok > 0);
    assert!(
        temporary > 0,
        "killing the server produced no error at all?"
    );
    store.destroy().await.unwrap();
    store.close().await.unwrap();
    server.kill().await;
}
