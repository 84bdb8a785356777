//! The embedded default store: a redb file in the user's data directory, used when neither
//! `--store` nor `KV_STORE` names a store.
//!
//! Its place follows the XDG base directory rules, with an override for tests and scripts:
//! `$KV_HOME/default.redb`, else `$XDG_DATA_HOME/kv/default.redb`, else
//! `$HOME/.local/share/kv/default.redb`. The directory is created on first use.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{CliError, CliResult};

/// The file name of the default store inside its directory.
const FILE_NAME: &str = "default.redb";

/// Where the default store lives, from the given environment lookup (a parameter so tests
/// need not touch the process environment).
pub fn path_from_env(var: impl Fn(&str) -> Option<OsString>) -> CliResult<PathBuf> {
    // Empty variables count as unset, as the XDG specification says for XDG_DATA_HOME.
    let var = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = var("KV_HOME") {
        return Ok(home.join(FILE_NAME));
    }
    // A relative XDG_DATA_HOME is invalid per the specification and must be ignored.
    if let Some(data) = var("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
        return Ok(data.join("kv").join(FILE_NAME));
    }
    if let Some(home) = var("HOME") {
        return Ok(home.join(".local").join("share").join("kv").join(FILE_NAME));
    }
    Err(CliError::new(
        "cannot find a place for the default store: none of KV_HOME, XDG_DATA_HOME and HOME \
         is set; set KV_HOME=DIR or pass --store URL",
    ))
}

/// Where the default store lives in this process's environment, as an absolute path (so
/// `kv info` shows the real place even when KV_HOME is relative).
pub fn path() -> CliResult<PathBuf> {
    let path = path_from_env(|name| std::env::var_os(name))?;
    std::path::absolute(&path).map_err(|e| CliError::file("cannot resolve the path", &path, &e))
}

/// Creates the directory of the default store if needed.
pub fn ensure_dir(path: &Path) -> CliResult<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::file("cannot create the directory of the default store", dir, &e))
}

/// The `redb://` URL of a path. Store URLs are percent-decoded and end at `?`, so those two
/// characters are escaped; everything else is kept as it is.
pub fn url_for(path: &Path) -> CliResult<String> {
    let text = path.to_str().ok_or_else(|| {
        CliError::new(format!(
            "the default store path {} is not valid UTF-8; set KV_HOME or pass --store URL",
            path.display()
        ))
    })?;
    let mut url = String::with_capacity(text.len() + 8);
    url.push_str("redb://");
    for c in text.chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            c => url.push(c),
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn precedence() {
        let all = [
            ("KV_HOME", "/kvhome"),
            ("XDG_DATA_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(
            path_from_env(env(&all)).unwrap(),
            Path::new("/kvhome/default.redb")
        );
        assert_eq!(
            path_from_env(env(&all[1..])).unwrap(),
            Path::new("/xdg/kv/default.redb")
        );
        assert_eq!(
            path_from_env(env(&all[2..])).unwrap(),
            Path::new("/home/u/.local/share/kv/default.redb")
        );
        assert!(path_from_env(env(&[])).is_err());
    }

    #[test]
    fn empty_and_relative_variables_are_ignored() {
        let vars = [
            ("KV_HOME", ""),
            ("XDG_DATA_HOME", "relative"),
            ("HOME", "/h"),
        ];
        assert_eq!(
            path_from_env(env(&vars)).unwrap(),
            Path::new("/h/.local/share/kv/default.redb")
        );
    }

    #[test]
    fn urls_escape_what_store_urls_decode() {
        assert_eq!(
            url_for(Path::new("/a b/100%?.redb")).unwrap(),
            "redb:///a b/100%25%3F.redb"
        );
        let parsed = kv::url::StoreUrl::parse(&url_for(Path::new("/x/50%?y")).unwrap()).unwrap();
        assert_eq!(parsed.target(), "/x/50%?y");
    }
}
