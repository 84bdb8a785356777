//! Starting throwaway redis-server processes for the fault tests.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `redis-server` (and `redis-cli`) from PATH, or `None` with the reason printed; under
/// `CI=true` a missing binary fails the test instead.
pub fn binaries(test: &str) -> Option<(PathBuf, PathBuf)> {
    let find = |name: &str| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        })
    };
    match (find("redis-server"), find("redis-cli")) {
        (Some(s), Some(c)) => Some((s, c)),
        _ => {
            let why =
                "redis-server/redis-cli not installed (apt-get install redis-server redis-tools)";
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{test}: {why}; under CI=true the test must run");
            }
            eprintln!("{test}: SKIPPED: {why}");
            None
        }
    }
}

/// A free port `p` (and, for cluster nodes, `p + 10000` too).
pub fn free_port(with_bus: bool) -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let p = l.local_addr().expect("addr").port();
        if p > 55000 {
            continue;
        }
        if with_bus && TcpListener::bind(("127.0.0.1", p + 10000)).is_err() {
            continue;
        }
        return p;
    }
    panic!("no free port");
}

/// One redis-server child process; killed (SIGKILL) on drop.
pub struct Server {
    pub port: u16,
    pub child: Option<Child>,
    bin: PathBuf,
    dir: PathBuf,
    extra: Vec<String>,
}

impl Server {
    pub fn start(bin: &Path, dir: &Path, port: u16, extra: &[&str]) -> Server {
        let mut s = Server {
            port,
            child: None,
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.restart();
        s
    }

    /// Starts the process (again) on the same port and waits until it answers PING.
    pub fn restart(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("dir");
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True if a server answers PING on the port.
pub fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Runs redis-cli with arguments, returning stdout.
pub fn cli(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
