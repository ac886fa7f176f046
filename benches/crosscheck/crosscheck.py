"""Cross-checks Reef's eviction policies against libCacheSim (PyPI `libcachesim`).

Generates traces in libCacheSim's oracleGeneral format, replays each through libCacheSim's
policies (its Python binding, which runs the C library) and through `reef-sim replay`, at two
cache sizes, and prints a Markdown table of misses per policy, trace and size with the
difference. Run it through `benches/crosscheck/run.sh`, which makes the virtual environment
and builds reef-sim.
"""

import argparse
import json
import multiprocessing
import os
import queue
import random
import struct
import subprocess
import sys
import time
from bisect import bisect_left
from itertools import accumulate
from pathlib import Path

import libcachesim as lcs

# Reef's name -> libCacheSim's class and its parameters, as Reef's defaults (see each policy's
# module in core/src/cache/policy/).
POLICIES = {
    "lru": (lcs.LRU, {}),
    "fifo": (lcs.FIFO, {}),
    "clock": (lcs.Clock, {}),
    "sieve": (lcs.Sieve, {}),
    "lfu": (lcs.LFU, {}),
    "lfuda": (lcs.LFUDA, {}),
    "gdsf": (lcs.GDSF, {}),
    "s3fifo": (lcs.S3FIFO, {}),
    "arc": (lcs.ARC, {}),
    "2q": (lcs.TwoQ, {}),
    "wtinylfu": (lcs.WTinyLFU, {}),
    "belady": (lcs.Belady, {}),
}

RECORD = struct.Struct("<IQIq")  # time, obj_id, obj_size, next_access_vtime (-1: never)


def zipf_ids(rng, objects, requests, alpha):
    """`requests` ids in 1..=objects, Zipf(alpha) by rank, ranks shuffled over the ids."""
    cum = list(accumulate(1.0 / (k ** alpha) for k in range(1, objects + 1)))
    ids = list(range(1, objects + 1))
    rng.shuffle(ids)
    return [ids[k] for k in rng.choices(range(objects), cum_weights=cum, k=requests)]


def traces(requests, objects, seed):
    """(name, description, [(id, size)]) for each trace."""
    rng = random.Random(seed)
    ids = zipf_ids(rng, objects, requests, 1.0)
    yield "zipf-equal", f"Zipf 1.0, {objects:,} objects of 4 KiB", [(i, 4096) for i in ids]
    # Heavy-tailed sizes: Pareto(1.2) from 1 KiB, capped at 64 MiB, fixed per object.
    size = {}
    for i in range(1, objects + 1):
        size[i] = min(int(1024 * rng.paretovariate(1.2)), 64 << 20)
    ids = zipf_ids(rng, objects, requests, 0.8)
    yield "zipf-heavy", f"Zipf 0.8, sizes Pareto(1.2) from 1 KiB", [(i, size[i]) for i in ids]
    # One-hit wonders: half the requests for objects never seen again.
    ids = zipf_ids(rng, objects, requests, 1.0)
    fresh = iter(range(objects + 1, objects + 1 + requests))
    mixed = [next(fresh) if rng.random() < 0.5 else i for i in ids]
    yield "one-hit", "Zipf 1.0 with half the requests one-hit wonders, 4 KiB", [(i, 4096) for i in mixed]


def write_oracle(path, reqs):
    """Writes `reqs` in oracleGeneral form, each with the index of its id's next request."""
    nxt = [-1] * len(reqs)
    last = {}
    for k in range(len(reqs) - 1, -1, -1):
        oid = reqs[k][0]
        nxt[k] = last.get(oid, -1)
        last[oid] = k
    with open(path, "wb") as f:
        f.write(b"".join(RECORD.pack(k, oid, size, nxt[k]) for k, (oid, size) in enumerate(reqs)))


def _lcs_run(policy, path, cache_size, n, answer, cpu=None):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    cls, params = POLICIES[policy]
    cache = cls(cache_size, **params)
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    started = time.perf_counter()
    miss_ratio, _ = cache.process_trace(reader)
    seconds = time.perf_counter() - started
    answer.put((round(miss_ratio * n), n / seconds))


def lcs_misses(policy, path, cache_size, n, timeout, cpu=None):
    """libCacheSim's misses and requests per second, in a child process: some of its policies
    never return on some traces (LFUDA with objects larger than the cache), so each run gets
    `timeout` seconds; `(None, None)` if it took longer."""
    ctx = multiprocessing.get_context("fork")
    answer = ctx.Queue()
    child = ctx.Process(target=_lcs_run, args=(policy, path, cache_size, n, answer, cpu))
    child.start()
    try:
        return answer.get(timeout=timeout)
    except queue.Empty:
        return None, None
    finally:
        child.kill()
        child.join()


def reef_misses(reef, path, policies, sizes, cpu=None):
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    out = subprocess.run(
        pin + [reef, "replay", "--trace", str(path), "--format", "oracle-general", "--quiet", "--json", "--threads", "1",
         "--policy", ",".join(policies), "--cache-size", ",".join(str(s) for s in sizes)],
        check=True, capture_output=True, text=True)
    return {(r["policy"], r["cache_size"]): (r["misses"], r["requests_per_second"]) for r in json.loads(out.stdout)}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reef", required=True, help="the reef-sim binary")
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--policy", default=",".join(POLICIES), help="comma-separated Reef policy names")
    ap.add_argument("--dir", default="target/crosscheck", help="where the traces are written")
    ap.add_argument("--timeout", type=float, default=300, help="seconds for one libCacheSim run")
    ap.add_argument("--speed", action="store_true",
                    help="measure throughput instead: the Zipf trace, 10%% cache, both pinned to one core, "
                         "alternating, --runs times")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=1, help="the core --speed pins both to")
    args = ap.parse_args()
    if args.speed:
        return speed(args)
    policies = args.policy.split(",")
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)

    rows = []
    for name, what, reqs in traces(args.requests, args.objects, args.seed):
        path = work / f"{name}.oracleGeneral.bin"
        write_oracle(path, reqs)
        # Two sizes: 1% and 10% of the bytes of the distinct objects requested.
        footprint = sum(dict(reqs).values())
        sizes = [max(footprint // 100, 1), max(footprint // 10, 1)]
        print(f"{name}: {what}; {len(reqs):,} requests, footprint {footprint:,} B", file=sys.stderr)
        reef = reef_misses(args.reef, path, policies, sizes)
        for policy in policies:
            for size in sizes:
                theirs, _ = lcs_misses(policy, path, size, len(reqs), args.timeout)
                ours, _ = reef[(policy, size)]
                print(f"  {policy} {size:,} B: Reef {ours:,}, libCacheSim {theirs}", file=sys.stderr)
                rows.append((policy, name, size, ours, theirs))

    print("| policy | trace | cache (B) | Reef misses | libCacheSim misses | difference |")
    print("|---|---|---:|---:|---:|---:|")
    for policy, name, size, ours, theirs in rows:
        if theirs is None:
            print(f"| {policy} | {name} | {size:,} | {ours:,} | did not finish in {args.timeout:.0f} s | |")
        else:
            print(f"| {policy} | {name} | {size:,} | {ours:,} | {theirs:,} | {ours - theirs:+,} |")


def speed(args):
    """Requests per second of each policy in Reef and in libCacheSim, side by side: the same
    trace file, the same core, runs alternating. libCacheSim's figure is its C replay loop
    (`process_trace`, what its `cachesim` binary runs); Reef's is `reef-sim replay` with one
    thread, trace loading excluded from both."""
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    name, what, reqs = next(traces(args.requests, args.objects, args.seed))
    path = work / f"speed-{name}.oracleGeneral.bin"
    write_oracle(path, reqs)
    size = sum(dict(reqs).values()) // 10
    print(f"{name}: {what}; {len(reqs):,} requests, cache {size:,} B, core {args.cpu}, {args.runs} runs",
          file=sys.stderr)
    print("| policy | Reef (M req/s) | libCacheSim (M req/s) | Reef / libCacheSim |")
    print("|---|---:|---:|---:|")
    for policy in args.policy.split(","):
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(reef_misses(args.reef, path, [policy], [size], args.cpu)[(policy, size)][1])
            theirs.append(lcs_misses(policy, path, size, len(reqs), args.timeout, args.cpu)[1] or 0.0)
        span = lambda xs: f"{min(xs) / 1e6:.2f} to {max(xs) / 1e6:.2f}"
        ratio = [o / t for o, t in zip(ours, theirs) if t > 0]
        ratios = f"{min(ratio):.1f} to {max(ratio):.1f}x" if ratio else "n/a"
        print(f"| {policy} | {span(ours)} | {span(theirs)} | {ratios} |", flush=True)


if __name__ == "__main__":
    main()
