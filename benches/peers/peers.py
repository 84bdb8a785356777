#!/usr/bin/env python3
"""The Python peers of kv doing the work `kv bench` does: N puts, then N gets of the same keys.

Run by `cargo xtask bench-peers` (xtask/src/bench_peers.rs) inside the venv it installs from
requirements.txt beside this file; it can also be run by hand from that venv:

    python benches/peers/peers.py --peer py-key-value --store redis \
        --url redis://127.0.0.1:16379 --ops 20000 --concurrency 1,64

What is measured, per operation kind and concurrency, is the wall time of the whole phase
(ops/s = N / seconds), as `kv bench` does for kv; nothing is timed per operation, so the
harness adds no cost to the peer. The keys are `key-000000000`, ... (the same as kv's), the
value is one object whose JSON text is exactly --value-size bytes (`{"v": "xxx..."}`), and
every get must hit, so a phase of misses cannot pass for a fast one.

- py-key-value-aio is async: C tasks started with asyncio.gather on the default event loop
  share one store; task t does operations t, t+C, t+2C, ... (kv bench splits work the same way).
- spoonbill is synchronous: one loop in one thread, i.e. concurrency 1.

Each result is one JSON object per line on stdout:
    {"peer", "version", "store", "op", "concurrency", "ops", "seconds", "ops_per_sec"}
where "peer" is the PyPI distribution and "version" its installed version.
Errors go to stderr with a non-zero exit status; every store cleans up what it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
import warnings
from importlib import metadata

WARMUP_OPS = 200

# py-key-value warns once per store it marks unstable (PostgreSQL); the warning is about its
# API, not this benchmark.
warnings.filterwarnings("ignore", message="A configured store is unstable")


def make_value(size: int) -> dict:
    """A mapping whose JSON text (`json.dumps`, as the peers write it) is `size` bytes."""
    overhead = len('{"v": ""}')
    if size < overhead:
        raise SystemExit(f"--value-size must be at least {overhead} bytes for the Python peers")
    return {"v": "x" * (size - overhead)}


def keys_for(n: int) -> list[str]:
    return [f"key-{i:09d}" for i in range(n)]


def emit(dist: str, store: str, op: str, concurrency: int, ops: int, seconds: float) -> None:
    row = {
        "peer": dist,
        "version": metadata.version(dist),
        "store": store,
        "op": op,
        "concurrency": concurrency,
        "ops": ops,
        "seconds": round(seconds, 6),
        "ops_per_sec": round(ops / max(seconds, 1e-9), 1),
    }
    print(json.dumps(row), flush=True)


def run_name() -> str:
    """A name no other run uses, so runs never share a collection or keys."""
    return f"kv-peers-{os.getpid()}-{secrets.token_hex(4)}"


# --- py-key-value-aio ----------------------------------------------------------------------


async def pykv_open(store: str, url: str | None, path: str | None):
    if store == "memory":
        from key_value.aio.stores.memory import MemoryStore

        return MemoryStore()
    if store == "redis":
        from key_value.aio.stores.redis import RedisStore

        return RedisStore(url=need(url, "--url"))
    if store == "postgres":
        from key_value.aio.stores.postgresql import PostgreSQLStore

        # Its own table, so it never meets a table another program (or kv) laid out.
        return PostgreSQLStore(url=need(url, "--url"), table_name=PYKV_PG_TABLE)
    if store == "disk":
        from key_value.aio.stores.disk import DiskStore

        return DiskStore(directory=need(path, "--path"))
    raise SystemExit(f"py-key-value: unknown store {store!r}")


PYKV_PG_TABLE = "kv_peers_py_key_value"


async def pykv_phase(
    store, op: str, keys: list[str], value: dict, collection: str, concurrency: int
) -> float:
    n = len(keys)
    misses = 0

    async def task(first: int) -> None:
        nonlocal misses
        if op == "put":
            for i in range(first, n, concurrency):
                await store.put(keys[i], value, collection=collection)
        else:
            for i in range(first, n, concurrency):
                if await store.get(keys[i], collection=collection) is None:
                    misses += 1

    started = time.perf_counter()
    await asyncio.gather(*(task(t) for t in range(min(concurrency, n))))
    seconds = time.perf_counter() - started
    if misses:
        raise SystemExit(f"py-key-value {op}: {misses} of {n} gets missed a key just written")
    return seconds


async def pykv_cleanup(store, kind: str, keys: list[str], collection: str) -> None:
    """Removes what one run wrote (memory: dropped with the process; disk: xtask removes it)."""
    if kind == "postgres":
        await store.destroy_collection(collection)
    elif kind == "redis":
        for start in range(0, len(keys), 1000):
            await store.delete_many(keys[start : start + 1000], collection=collection)


async def pykv_drop_table(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {PYKV_PG_TABLE}")
    finally:
        await conn.close()


async def pykv_main(args) -> None:
    value = make_value(args.value_size)
    store = await pykv_open(args.store, args.url, args.path)
    try:
        # Stores that own a client are async context managers; the memory store is not.
        async with store if hasattr(store, "__aenter__") else contextlib.nullcontext(store):
            # Connections, pools and tables are made outside the timed phases.
            warm = run_name()
            warm_keys = keys_for(WARMUP_OPS)
            for k in warm_keys:
                await store.put(k, value, collection=warm)
                await store.get(k, collection=warm)
            await store.delete_many(warm_keys, collection=warm)
            for concurrency in args.concurrency:
                collection = run_name()
                keys = keys_for(args.ops)
                try:
                    for op in ("put", "get"):
                        seconds = await pykv_phase(store, op, keys, value, collection, concurrency)
                        emit("py-key-value-aio", args.store, op, concurrency, args.ops, seconds)
                finally:
                    await pykv_cleanup(store, args.store, keys, collection)
    finally:
        if args.store == "postgres":
            await pykv_drop_table(args.url)


# --- spoonbill -----------------------------------------------------------------------------


def spoonbill_open(store: str, url: str | None, path: str | None):
    # The package's __init__ re-exports nothing since 0.1.0: import the submodules.
    if store == "memory":
        from spoonbill.datastores.inmemory import InMemoryStore

        return InMemoryStore()
    if store == "redis":
        from spoonbill.datastores.redis import RedisStore

        return RedisStore.open(need(url, "--url"))
    if store == "lmdb":
        from spoonbill.datastores.lmdb import LmdbStore

        return LmdbStore.open(os.path.join(need(path, "--path"), "spoonbill.lmdb"))
    raise SystemExit(f"spoonbill: unknown store {store!r}")


def spoonbill_phase(store, op: str, keys: list[str], value: dict) -> float:
    started = time.perf_counter()
    misses = 0
    if op == "put":
        for k in keys:
            store.set(k, value)
    else:
        for k in keys:
            if store.get(k) is None:
                misses += 1
    seconds = time.perf_counter() - started
    if misses:
        raise SystemExit(f"spoonbill {op}: {misses} of {len(keys)} gets missed a key just written")
    return seconds


def spoonbill_main(args) -> None:
    if args.concurrency != [1]:
        raise SystemExit("spoonbill is synchronous: only --concurrency 1 makes sense")
    value = make_value(args.value_size)
    store = spoonbill_open(args.store, args.url, args.path)
    # Keys carry the run's name so a shared Redis database keeps other data apart.
    prefix = run_name() + "::" if args.store == "redis" else ""
    warm = [prefix + "warm-" + k for k in keys_for(WARMUP_OPS)]
    keys = [prefix + k for k in keys_for(args.ops)]
    try:
        for k in warm:
            store.set(k, value)
            store.get(k)
        for op in ("put", "get"):
            seconds = spoonbill_phase(store, op, keys, value)
            emit("spoonbill-framework", args.store, op, 1, args.ops, seconds)
    finally:
        if args.store == "redis":
            import redis

            client = redis.Redis.from_url(args.url)
            every = warm + keys
            for start in range(0, len(every), 1000):
                client.delete(*every[start : start + 1000])
            client.close()


# --- command line --------------------------------------------------------------------------


def need(value: str | None, flag: str) -> str:
    if not value:
        raise SystemExit(f"this store needs {flag}")
    return value


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", required=True, choices=["py-key-value", "spoonbill"])
    p.add_argument(
        "--store", required=True, choices=["memory", "redis", "postgres", "disk", "lmdb"]
    )
    p.add_argument("--url", help="server URL (redis, postgres)")
    p.add_argument("--path", help="a directory the store may fill (disk, lmdb)")
    p.add_argument("--ops", type=int, default=10_000, help="operations per kind")
    p.add_argument("--value-size", type=int, default=100, help="bytes of the value's JSON text")
    p.add_argument(
        "--concurrency",
        default="1",
        type=lambda s: [int(c) for c in s.split(",")],
        help="comma-separated task counts, e.g. 1,64 (py-key-value only)",
    )
    args = p.parse_args(argv)
    if args.ops < 1 or any(c < 1 for c in args.concurrency):
        p.error("--ops and --concurrency must be positive")
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.peer == "py-key-value":
        asyncio.run(pykv_main(args))
    else:
        spoonbill_main(args)


if __name__ == "__main__":
    main(sys.argv[1:])
