#!/usr/bin/env python3
"""Export benchmark: `mxport local-run` on a synthetic Qwen3-MoE checkpoint of several GB,
against `cp -r` of the same bytes, with each worker's peak memory and a full check of the output.

Usage:
    /usr/bin/python3 bench/export_benchmark.py [--bin build/bin] [--work build/export-bench]
        [--gb 4] [--workers 4,8] [--rounds 2] [--max-shard-size 512MB] [--keep [--reuse]]

Steps, in one run:
 1. tests/fixtures/make_synthetic_checkpoint.py writes a Megatron legacy checkpoint (TP=2,
    PP=2, EP=4, bf16) whose HF tensors total at least --gb × 10^9 bytes, with expected.json
    (the sha256 of every HF tensor, computed by PyTorch before sharding).
 2. Pairs of timed runs, each export next to its own baseline in the same conditions: `cp -r`
    of the rank files to a fresh directory plus the fsync of every copied file (the export
    makes its files durable too), and `mxport local-run --workers N`, timed from start to exit.
    Every timed run starts after sync(), with no output of an earlier run left (a virtual
    machine's page-cache writes and disk are much slower into memory it has not touched for a
    while, and a baseline taken minutes earlier says little). Cold pairs first evict the source
    from the page cache (posix_fadvise(DONTNEED) after an fsync; the hypervisor may still
    cache, so cold means cold-ish) before each run of the pair; warm pairs read it just before.
    The first N is run as one cold pair, then every N as --rounds warm pairs, alternating which
    of the two runs first; the goal compares the median of the ratios.
 3. While local-run runs, a sampler reads VmHWM (peak resident set) of every process it started
    from /proc/<pid>/status every 20 ms, and the job's events are followed on the
    coordinator's REST API (found through its --port-file) to show where the time goes; the
    CPU seconds (user + system) of the export's processes and of cp are printed too.
 4. Every output is checked independently of mxport: the index, every safetensors header
    (parsed with json + struct), dtypes and shapes, and the sha256 of every tensor's bytes
    against expected.json; the files must be byte-identical across worker counts.

Goals (printed; only a wrong export fails the run):
  speed:  local-run seconds <= 1.5 × (cp -r + fsync) seconds of the same pair, cold against
          cold and warm against warm (the median over the warm rounds);
  memory: per-worker peak RSS <= in-flight limit + 2 × largest tensor + 200 MiB, where the
          in-flight limit is the worker's bound on data-plane bytes it holds
          (--in-flight-bytes, the worker default of 1 GiB, since local-run passes no worker
          flags) and the largest tensor comes from the checkpoint.
Exit status: 0 when every export is correct, 1 otherwise. The work directory is removed at
the end unless --keep.
"""

import argparse
import calendar
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1 << 20
GENERATOR = os.path.join(ROOT, "tests", "fixtures", "make_synthetic_checkpoint.py")
TORCH_PYTHON = "/usr/bin/python3"  # Debian's python3 with PyTorch 1.13


# ---------------------------------------------------------------------------------------------
# Page cache and copies

def files_under(d):
    return sorted(os.path.join(dp, f) for dp, _, fs in os.walk(d) for f in fs)


def evict(paths):
    """Drops clean cached pages of `paths` (fsync first so none are dirty). Needs no root."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def fsync_all(paths):
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def timed_cp(src, dst):
    """(seconds of cp -r, seconds of cp -r plus the fsync of every copied file, CPU seconds)."""
    shutil.rmtree(dst, ignore_errors=True)
    os.sync()
    before = os.times()
    t0 = time.monotonic()
    subprocess.run(["cp", "-r", src, dst], check=True)
    t1 = time.monotonic()
    fsync_all(files_under(dst))
    t2 = time.monotonic()
    after = os.times()
    shutil.rmtree(dst)
    cpu = (after.children_user - before.children_user + after.children_system -
           before.children_system + after.system - before.system)  # the fsyncs are ours
    return t1 - t0, t2 - t0, cpu


# ---------------------------------------------------------------------------------------------
# Peak memory of the processes local-run starts

def read_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        return None
    return out


def children_of(ppid):
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
        if int(stat[stat.rindex(")") + 2:].split()[1]) == ppid:
            pids.append(int(name))
    return pids


def role_of(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None, None
    exe = os.path.basename(argv[0])
    if exe == "mxport-worker" and "--index" in argv:
        return "worker %s" % argv[argv.index("--index") + 1], argv
    if exe == "mxport-coordinator":
        return "coordinator", argv
    return None, argv


class PeakSampler(threading.Thread):
    """Polls VmHWM of local-run's children until stopped: {role: peak KiB}."""

    def __init__(self, parent_pid, period=0.02):
        super().__init__(daemon=True)
        self.parent_pid, self.period = parent_pid, period
        self.peak_kib, self.roles, self.db_dirs = {}, {}, set()
        self.port_file = None
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        self.roles[self.parent_pid] = "local-run"
        while not self._halt.is_set():
            for pid in [self.parent_pid] + children_of(self.parent_pid):
                if pid not in self.roles:
                    role, argv = role_of(pid)
                    if role is None:
                        continue
                    self.roles[pid] = role
                    if role == "coordinator" and "--db" in argv:
                        self.db_dirs.add(os.path.dirname(argv[argv.index("--db") + 1]))
                    if role == "coordinator" and "--port-file" in argv:
                        self.port_file = argv[argv.index("--port-file") + 1]
                st = read_status(pid)
                if st and "VmHWM" in st:
                    kib = int(st["VmHWM"].split()[0])
                    role = self.roles[pid]
                    self.peak_kib[role] = max(self.peak_kib.get(role, 0), kib)
            self.samples += 1
            self._halt.wait(self.period)

    def stop(self):
        self._halt.set()
        self.join()


class EventFollower(threading.Thread):
    """Streams the job's events (GET /v1/jobs/{id}/events?follow=1) from the coordinator that
    local-run started, once the sampler has found its --port-file, until the job ends."""

    def __init__(self, sampler, job_id):
        super().__init__(daemon=True)
        self.sampler, self.job_id, self.events = sampler, job_id, []

    def run(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.sampler.is_alive():
            try:
                with open(self.sampler.port_file or "") as f:
                    port = json.load(f)["rest"]
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
                conn.request("GET", "/v1/jobs/%s/events?follow=1" % self.job_id)
                resp = conn.getresponse()
                if resp.status == 200:
                    for line in resp:
                        if line.strip():
                            self.events.append(json.loads(line))
                    return
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                pass
            time.sleep(0.02)  # polling period: the coordinator or the job is not there yet


def rfc3339_seconds(text):
    whole, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


def timeline(events, started):
    """Seconds from local-run's start to: submitted, TRANSFERRING, first and last file commit,
    SUCCEEDED (None where missing)."""
    def first(pred):
        t = [rfc3339_seconds(e["time"]) - started for e in events if pred(e)]
        return (min(t), max(t)) if t else (None, None)
    commits = first(lambda e: e["type"] == "commit" and e["message"].endswith(
        "safetensors", 0, e["message"].find(" (")))
    return {"submitted": first(lambda e: e["type"] == "submitted")[0],
            "transferring": first(lambda e: e["type"] == "phase" and
                                  e["message"].startswith("TRANSFERRING"))[0],
            "first commit": commits[0], "last commit": commits[1],
            "succeeded": first(lambda e: e["type"] == "phase" and e["message"] == "SUCCEEDED")[0]}


def local_run(bin_dir, source, hf, out, workers, max_shard, log_path):
    """(exit code, seconds, sampler, wait4 peak RSS KiB, CPU seconds of local-run and every
    process it waited for)."""
    shutil.rmtree(out, ignore_errors=True)
    os.sync()
    cmd = [os.path.join(bin_dir, "mxport"), "local-run", "--source", source, "--hf-config", hf,
           "--output", out, "--workers", str(workers), "--max-shard-size", max_shard,
           "--job-id", "bench-%d" % workers]
    with open(log_path, "w") as log:
        t0, started = time.monotonic(), time.time()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        sampler = PeakSampler(proc.pid)
        sampler.start()
        follower = EventFollower(sampler, "bench-%d" % workers)
        follower.start()
        # wait4 also reports the largest peak RSS among the reaped descendants: a cross-check
        _, status, rusage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - t0
        sampler.stop()
        follower.join(timeout=5)
    sampler.timeline = timeline(follower.events, started)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for d in sampler.db_dirs:  # local-run leaves its coordinator's state directory behind
        if os.path.basename(d).startswith("mxport-local-"):
            shutil.rmtree(d, ignore_errors=True)
    return (proc.returncode, seconds, sampler, rusage.ru_maxrss,
            rusage.ru_utime + rusage.ru_stime)


# ---------------------------------------------------------------------------------------------
# Independent check of an export

def check_file(path, expected):
    """Parses one safetensors file and hashes each tensor: (problems, {name: bytes}, file sha)."""
    problems, sizes = [], {}
    whole = hashlib.sha256()
    with open(path, "rb") as f:
        head = f.read(8)
        (n,) = struct.unpack("<Q", head)
        raw = f.read(n)
        whole.update(head)
        whole.update(raw)
        header = json.loads(raw)
        header.pop("__metadata__", None)
        entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
        pos = 0
        buf = bytearray(16 * MiB)
        view = memoryview(buf)
        for name, h in entries:
            begin, end = h["data_offsets"]
            if begin != pos:
                problems.append("%s: data starts at %d, expected %d (gap or overlap)"
                                % (name, begin, pos))
                f.seek(8 + n + begin)
            want = expected.get(name)
            if want is None:
                problems.append("%s: not an expected tensor" % name)
            elif h["dtype"] != want["dtype"] or h["shape"] != want["shape"]:
                problems.append("%s: %s %s, expected %s %s" % (name, h["dtype"], h["shape"],
                                                                want["dtype"], want["shape"]))
            digest = hashlib.sha256()
            left = end - begin
            while left > 0:
                got = f.readinto(view[:min(left, len(buf))])
                if not got:
                    problems.append("%s: file ends early" % name)
                    break
                digest.update(view[:got])
                whole.update(view[:got])
                left -= got
            if want is not None and digest.hexdigest() != want["sha256"]:
                problems.append("%s: bytes differ (sha256)" % name)
            sizes[name] = end - begin
            pos = end
        if f.read(1):
            problems.append("trailing bytes after the last tensor")
    return problems, sizes, whole.hexdigest()


def check_export(out, expected):
    """Returns (problems, {file: sha256})."""
    problems, file_sha = [], {}
    tensors = expected["tensors"]
    try:
        index = json.load(open(os.path.join(out, "model.safetensors.index.json")))
        json.load(open(os.path.join(out, "config.json")))
    except (OSError, ValueError) as e:
        return ["index or config.json: %s" % e], {}
    weight_map = index["weight_map"]
    if set(weight_map) != set(tensors):
        diff = sorted(set(weight_map) ^ set(tensors))
        problems.append("index key set differs from expected: %s" % diff[:8])
    files = sorted(set(weight_map.values()))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:  # hashlib drops the GIL
        results = list(pool.map(lambda f: check_file(os.path.join(out, f), tensors), files))
    seen, total = {}, 0
    for f, (p, sizes, sha) in zip(files, results):
        problems += ["%s: %s" % (f, x) for x in p]
        file_sha[f] = sha
        for name in sizes:
            if weight_map.get(name) != f:
                problems.append("%s holds %s, the index says %s" % (f, name, weight_map.get(name)))
            if name in seen:
                problems.append("%s is in %s and %s" % (name, seen[name], f))
            seen[name] = f
            total += sizes[name]
    missing = set(tensors) - set(seen)
    if missing:
        problems.append("%d tensors missing, e.g. %s" % (len(missing), sorted(missing)[:4]))
    if index.get("metadata", {}).get("total_size") != expected["tensor_bytes"]:
        problems.append("index total_size %s, expected %d"
                        % (index.get("metadata", {}).get("total_size"), expected["tensor_bytes"]))
    if total != expected["tensor_bytes"] and not missing:
        problems.append("tensor bytes %d, expected %d" % (total, expected["tensor_bytes"]))
    return problems, file_sha


# ---------------------------------------------------------------------------------------------

def byte_size(text):
    m = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError("bad size %r" % text)
    unit = (m.group(2) or "").upper()
    mult = {"": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "K": 1 << 10, "M": 1 << 20,
            "G": 1 << 30, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}[unit]
    return int(m.group(1)) * mult


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                    help="directory with mxport, mxport-coordinator, mxport-worker")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "export-bench"),
                    help="scratch directory (holds up to 2 × --gb at a time)")
    ap.add_argument("--gb", type=float,
                    default=float(os.environ.get("MXPORT_EXPORT_BENCH_GB", "4")),
                    help="least tensor bytes of the checkpoint, in 10^9 "
                         "(default $MXPORT_EXPORT_BENCH_GB or 4)")
    ap.add_argument("--workers", default="4,8", help="comma-separated worker counts")
    ap.add_argument("--rounds", type=int, default=2, help="warm pairs per worker count")
    ap.add_argument("--max-shard-size", default="512MB", help="output file size limit")
    ap.add_argument("--in-flight-bytes", type=byte_size, default=1 << 30,
                    help="the workers' in-flight limit, for the memory goal (worker default)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--reuse", action="store_true",
                    help="use the checkpoint a --keep run left in --work if there is one")
    a = ap.parse_args()
    counts = [int(x) for x in a.workers.split(",")]
    bin_dir = os.path.abspath(a.bin)
    work = os.path.abspath(a.work)
    ckpt = os.path.join(work, "checkpoint")
    source, hf = os.path.join(ckpt, "layout"), os.path.join(ckpt, "hf")
    os.makedirs(work, exist_ok=True)
    failures = []
    load_start = os.getloadavg()[0]
    try:
        t0 = time.monotonic()
        if not (a.reuse and os.path.exists(os.path.join(ckpt, "expected.json"))):
            subprocess.run([TORCH_PYTHON, GENERATOR, "--out", ckpt, "--gb", str(a.gb)],
                           check=True)
        gen_s = time.monotonic() - t0
        expected = json.load(open(os.path.join(ckpt, "expected.json")))
        src_files = [os.path.join(ckpt, f) for f in expected["source_files"]]
        src_bytes = expected["source_bytes"]
        gb = src_bytes / 1e9
        largest = expected["largest_tensor"]

        runs = []  # dicts: label, workers, seconds, cpu, sampler, maxrss, cp, cp_sync, cp_cpu
        plan = [("cold", counts[0], 0)] + [("warm", n, r) for n in counts
                                           for r in range(a.rounds)]
        shas = {}
        for label, n, r in plan:
            out = os.path.join(work, "export-%d" % n)
            log_path = os.path.join(work, "local-run-%d.log" % n)
            run = {"label": label, "workers": n}

            def baseline():
                if label == "cold":
                    evict(src_files)
                run["cp"], run["cp_sync"], run["cp_cpu"] = timed_cp(source,
                                                                    os.path.join(work, "copy"))

            def export():
                if label == "cold":
                    evict(src_files)
                (run["rc"], run["seconds"], run["sampler"], run["maxrss"],
                 run["cpu"]) = local_run(bin_dir, source, hf, out, n, a.max_shard_size, log_path)

            for step in ((baseline, export) if r % 2 == 0 else (export, baseline)):
                step()
            if run["rc"] != 0:
                with open(log_path) as f:
                    tail = f.read()[-2000:]
                failures.append("local-run with %d workers exited %d: %s" % (n, run["rc"], tail))
                shutil.rmtree(out, ignore_errors=True)
                continue
            t1 = time.monotonic()
            problems, file_sha = check_export(out, expected)
            check_s = time.monotonic() - t1
            failures += ["%d workers: %s" % (n, p) for p in problems]
            if not problems:
                shas.setdefault(n, file_sha)
                if shas[n] != file_sha:
                    failures.append("two exports by %d workers differ" % n)
            print("checked the %s export by %d workers in %.1f s: %s" % (
                label, n, check_s, "ok, %d files, %d tensors" % (
                    len(file_sha), len(expected["tensors"])) if not problems else
                "%d problems" % len(problems)))
            runs.append(run)
            shutil.rmtree(out, ignore_errors=True)
        if len({json.dumps(s, sort_keys=True) for s in shas.values()}) > 1:
            failures.append("exports by different worker counts differ: %s" % shas)

        # -------------------------------------------------------------------------------------
        goal_mib = (a.in_flight_bytes + 2 * largest["bytes"]) / MiB + 200
        print()
        print("== export benchmark (%s, %d cores; load average %.1f at the start, %.1f now: "
              "other work on the machine skews the figures)"
              % (os.uname().nodename, os.cpu_count(), load_start, os.getloadavg()[0]))
        print("checkpoint: %.2f GB in %d rank files (TP=%d PP=%d EP=%d ETP=%d), %d HF tensors, "
              "generated in %.0f s" % (gb, len(src_files), expected["layout"]["tp"],
                                       expected["layout"]["pp"], expected["layout"]["ep"],
                                       expected["layout"]["etp"], len(expected["tensors"]),
                                       gen_s))
        print("largest tensor: %s, %.1f MiB; output files of at most %s"
              % (largest["name"], largest["bytes"] / MiB, a.max_shard_size))
        print("each export next to the cp -r + fsync of the same bytes run just before or after "
              "it (CPU: user + system seconds of all processes)")
        print("%-30s %8s %6s %6s %8s %6s %6s %7s" % ("", "export s", "GB/s", "CPU s", "cp+sync",
                                                    "GB/s", "CPU s", "ratio"))
        ratios = {}
        for run in runs:
            ratio = run["seconds"] / run["cp_sync"]
            ratios.setdefault((run["label"], run["workers"]), []).append(ratio)
            print("%-30s %8.2f %6.2f %6.1f %8.2f %6.2f %6.1f %6.2f×" % (
                "local-run, %d workers, %s" % (run["workers"], run["label"]), run["seconds"],
                gb / run["seconds"], run["cpu"], run["cp_sync"], gb / run["cp_sync"],
                run["cp_cpu"], ratio))
        for (label, n), rs in ratios.items():
            median = sorted(rs)[len(rs) // 2] if len(rs) % 2 else sum(sorted(rs)[
                len(rs) // 2 - 1:len(rs) // 2 + 1]) / 2
            print("%d workers, %s: median %.2f× cp+fsync over %d pair%s -> speed goal <= 1.5×: %s"
                  % (n, label, median, len(rs), "" if len(rs) == 1 else "s",
                     "met" if median <= 1.5 else "MISSED"))
        print("where the export's time goes (seconds from the start of local-run; journal "
              "times):")
        for run in runs:
            t = run["sampler"].timeline
            print("  %d workers, %s: %s; exit %.1f" % (run["workers"], run["label"], ", ".join(
                "%s %s" % (k, "?" if v is None else "%.1f" % v) for k, v in t.items()),
                run["seconds"]))
        print("memory goal per worker: in-flight limit %.0f MiB + 2 × largest tensor %.1f MiB "
              "+ 200 MiB = %.0f MiB" % (a.in_flight_bytes / MiB, largest["bytes"] / MiB,
                                         goal_mib))
        for run in runs:
            label, n, sampler, maxrss = (run["label"], run["workers"], run["sampler"],
                                         run["maxrss"])
            workers = sorted((k for k in sampler.peak_kib if k.startswith("worker")),
                             key=lambda k: int(k.split()[1]))
            peaks = [sampler.peak_kib[k] / 1024 for k in workers]
            if len(workers) != n:
                print("  %d workers %s: sampled only %d workers" % (n, label, len(workers)))
            if not peaks:
                continue
            print("  %d workers, %s: peak RSS per worker (MiB): %s; max %.0f -> memory goal: %s"
                  % (n, label, " ".join("%.0f" % p for p in peaks), max(peaks),
                     "met" if max(peaks) <= goal_mib else "MISSED"))
            print("    coordinator %.0f MiB, local-run %.0f MiB (%d samples); the largest peak "
                  "of any of these processes by wait4: %.0f MiB"
                  % (sampler.peak_kib.get("coordinator", 0) / 1024,
                     sampler.peak_kib.get("local-run", 0) / 1024, sampler.samples,
                     maxrss / 1024))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("\nTHE EXPORT IS WRONG:")
        for f in failures[:30]:
            print("  " + f)
        return 1
    print("every export checked: tensors, headers and index equal the expected sha256; files "
          "identical across worker counts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
