//! Store crates that link a system library: which ones this machine can build, the
//! environment their builds need, and how to install what is missing.
//!
//! Every other crate builds from crates.io alone. These need a C/C++ library that
//! compiling from source would cost half an hour of CPU or more (RocksDB, DuckDB), protoc for a
//! gRPC client (etcd), or a
//! libclang for bindgen. `cargo xtask test` builds them when their library is present and
//! otherwise skips them **by name**; under `CI=true` a missing library fails the run
//! (`.ci/run` installs them first with `cargo xtask install`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A store crate with a system dependency.
pub struct SysDep {
    /// The cargo package.
    pub package: &'static str,
    /// The feature of `kv-tests`/`kv-cli` that compiles it into the facade users.
    pub feature: &'static str,
    /// What must be installed, for the skip message.
    pub needs: &'static str,
}

pub const SYSDEPS: &[SysDep] = &[
    SysDep {
        package: "kv-store-rocksdb",
        feature: "rocksdb",
        needs: "Debian's librocksdb-dev (RocksDB 7.8) and libclang-dev",
    },
    SysDep {
        package: "kv-store-unqlite",
        feature: "unqlite",
        needs: "libclang-dev (bindgen)",
    },
    SysDep {
        package: "kv-store-etcd",
        feature: "etcd",
        needs: "protoc (Debian's protobuf-compiler and libprotobuf-dev) for the gRPC client",
    },
    SysDep {
        package: "kv-store-duckdb",
        feature: "duckdb",
        needs: "a prebuilt libduckdb.so (crates/kv-store-duckdb/install-libduckdb.sh)",
    },
];

/// What this machine can build, and the environment for cargo.
pub struct Plan {
    pub available: Vec<&'static SysDep>,
    pub missing: Vec<&'static SysDep>,
    pub env: Vec<(String, String)>,
}

impl Plan {
    pub fn detect() -> Plan {
        let mut env_vars = Vec::new();
        let mut available = Vec::new();
        let mut missing = Vec::new();
        let clang = has_libclang();
        let rocksdb_dir = rocksdb_lib_dir();
        let duckdb_dir = duckdb_lib_dir();
        for dep in SYSDEPS {
            let ok = match dep.feature {
                "rocksdb" => clang && rocksdb_dir.is_some(),
                "unqlite" => clang,
                "duckdb" => duckdb_dir.is_some(),
                "etcd" => has_protoc(),
                _ => false,
            };
            if ok {
                available.push(dep);
            } else {
                missing.push(dep);
            }
        }
        if let Some(dir) = rocksdb_dir {
            env_vars.push(("ROCKSDB_LIB_DIR".to_owned(), dir.display().to_string()));
        }
        if let Some(dir) = duckdb_dir {
            let dir = dir.display().to_string();
            env_vars.push(("DUCKDB_LIB_DIR".to_owned(), dir.clone()));
            let ld = match env::var("LD_LIBRARY_PATH") {
                Ok(old) if !old.is_empty() => format!("{dir}:{old}"),
                _ => dir,
            };
            env_vars.push(("LD_LIBRARY_PATH".to_owned(), ld));
        }
        Plan {
            available,
            missing,
            env: env_vars,
        }
    }

    /// Applies the environment, excludes what cannot build and enables the facade features
    /// of what can. `features_of` names the packages whose features to turn on (those the
    /// command selects).
    pub fn apply(&self, cmd: &mut Command, features_of: &[&str]) {
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for dep in &self.missing {
            cmd.args(["--exclude", dep.package]);
        }
        let features: Vec<String> = features_of
            .iter()
            .flat_map(|pkg| {
                self.available
                    .iter()
                    .map(move |d| format!("{pkg}/{}", d.feature))
            })
            .collect();
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
    }

    /// Applies the environment and turns on the features of `package` for the available
    /// stores, for a command that selects one package (`cargo build -p ...`).
    pub fn apply_to_package(&self, cmd: &mut Command, package: &str) {
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let features: Vec<String> = self
            .available
            .iter()
            .map(|d| format!("{package}/{}", d.feature))
            .collect();
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
    }

    /// Says what is skipped; under CI a skip is an error.
    pub fn report(&self) -> Result<(), String> {
        for dep in &self.missing {
            eprintln!(
                "xtask: SKIPPED {}: this machine lacks {} (run `cargo xtask install`)",
                dep.package, dep.needs
            );
        }
        if crate::strict() && !self.missing.is_empty() {
            let names: Vec<&str> = self.missing.iter().map(|d| d.package).collect();
            return Err(format!(
                "CI=true: {} cannot be built here; `cargo xtask install` must run first",
                names.join(", ")
            ));
        }
        Ok(())
    }
}

fn has_libclang() -> bool {
    if let Ok(p) = env::var("LIBCLANG_PATH")
        && Path::new(&p).exists()
    {
        return true;
    }
    let Ok(out) = Command::new("ldconfig").arg("-p").output() else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim_start().starts_with("libclang.so") || l.contains("libclang-"))
        && glob_libclang()
}

/// bindgen needs the unversioned-or-versioned shared library that libclang-dev installs under
/// /usr/lib/llvm-*/lib (libclang-cpp alone, which the base image has, is not enough).
fn glob_libclang() -> bool {
    let Ok(dirs) = std::fs::read_dir("/usr/lib") else {
        return false;
    };
    dirs.filter_map(Result::ok)
        .filter(|d| d.file_name().to_string_lossy().starts_with("llvm-"))
        .any(|d| {
            std::fs::read_dir(d.path().join("lib")).is_ok_and(|files| {
                files.filter_map(Result::ok).any(|f| {
                    let n = f.file_name().to_string_lossy().into_owned();
                    n.starts_with("libclang.so") || n.starts_with("libclang-")
                })
            })
        })
}

/// etcd-client's build runs protoc, which also needs the well-known .proto files.
fn has_protoc() -> bool {
    let protoc = env::var("PROTOC").unwrap_or_else(|_| "protoc".to_owned());
    Command::new(protoc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && Path::new("/usr/include/google/protobuf/descriptor.proto").exists()
}

fn rocksdb_lib_dir() -> Option<PathBuf> {
    let candidates = env::var("ROCKSDB_LIB_DIR")
        .ok()
        .map(PathBuf::from)
        .into_iter()
        .chain([
            PathBuf::from("/usr/lib/x86_64-linux-gnu"),
            PathBuf::from("/usr/lib64"),
        ]);
    candidates
        .into_iter()
        .find(|d| d.join("librocksdb.so").exists())
}

/// Where `install-libduckdb.sh` puts the library by default.
pub fn default_duckdb_dir() -> PathBuf {
    let home = env::var("HOME").unwrap_or_else(|_| "/root".to_owned());
    PathBuf::from(home).join(".cache/kv/libduckdb")
}

fn duckdb_lib_dir() -> Option<PathBuf> {
    env::var("DUCKDB_LIB_DIR")
        .ok()
        .map(PathBuf::from)
        .into_iter()
        .chain([default_duckdb_dir()])
        .find(|d| d.join("libduckdb.so").exists())
}

/// `cargo xtask install`: installs the system libraries (Debian packages, and libduckdb from
/// the npm registry).
pub fn install() -> Result<(), String> {
    let sudo = if is_root() { None } else { Some("sudo") };
    let apt = |args: &[&str]| -> Result<(), String> {
        let mut cmd = match sudo {
            Some(s) => {
                let mut c = Command::new(s);
                c.arg("apt-get");
                c
            }
            None => Command::new("apt-get"),
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        crate::run("install", &mut cmd)
    };
    apt(&["update", "-q"])?;
    apt(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "libclang-dev",
        "librocksdb-dev",
        "protobuf-compiler",
        "libprotobuf-dev",
        "pkg-config",
        "libssl-dev",
    ])?;
    crate::run(
        "install libduckdb",
        Command::new("bash")
            .arg("crates/kv-store-duckdb/install-libduckdb.sh")
            .arg(default_duckdb_dir()),
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
