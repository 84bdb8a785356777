#!/usr/bin/env bash
# Install the prebuilt DuckDB shared library that kv-store-duckdb links against.
#
# Usage: install-libduckdb.sh [DIR]     (default DIR: $HOME/.cache/kv/libduckdb)
#
# Takes libduckdb.so (DuckDB 1.5.6, the C API) from the npm package
# @duckdb/node-bindings-linux-x64@1.5.6-r.1, so the 45-CPU-minute bundled C++ build of the
# duckdb crate is never needed. Idempotent: does nothing when DIR already holds the library
# of this version. Prints DIR on stdout (the last line); then build and run with
#   DUCKDB_LIB_DIR=DIR  LD_LIBRARY_PATH=DIR
# The duckdb crate version must match the library: crate =1.10506.0 <-> DuckDB 1.5.6.
set -euo pipefail

NPM_PACKAGE="@duckdb/node-bindings-linux-x64"
NPM_VERSION="1.5.6-r.1"
DIR="${1:-${HOME}/.cache/kv/libduckdb}"
STAMP="${DIR}/.kv-libduckdb-version"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-libduckdb.sh: only linux x86_64 is supported (npm ${NPM_PACKAGE})" >&2; exit 1 ;;
esac

if [[ -f "${DIR}/libduckdb.so" && -f "${STAMP}" && "$(cat "${STAMP}")" == "${NPM_PACKAGE}@${NPM_VERSION}" ]]; then
  echo "${DIR}"
  exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "install-libduckdb.sh: npm is needed (apt-get install npm)" >&2; exit 1; }

mkdir -p "${DIR}"
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT
(
  cd "${WORK}"
  npm pack --silent "${NPM_PACKAGE}@${NPM_VERSION}" >/dev/null
  tar xzf ./*.tgz
)
SO="${WORK}/package/libduckdb.so"
[[ -f "${SO}" ]] || { echo "install-libduckdb.sh: libduckdb.so not found in ${NPM_PACKAGE}@${NPM_VERSION}" >&2; exit 1; }
# Atomic replace, so a concurrent build never sees a half-written library.
cp "${SO}" "${DIR}/libduckdb.so.tmp.$$"
mv -f "${DIR}/libduckdb.so.tmp.$$" "${DIR}/libduckdb.so"
cp "${WORK}/package/LICENSE" "${DIR}/LICENSE" 2>/dev/null || true
echo "${NPM_PACKAGE}@${NPM_VERSION}" > "${STAMP}"
echo "${DIR}"
