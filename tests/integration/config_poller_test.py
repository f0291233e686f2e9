#!/usr/bin/env python3
"""Readers never see a torn shared file, and every shared file has exactly one writer, at DP > 1.

`mxport local-run` exports a fixture layout of 8 rank files with 12 workers (so DP replicas
split the rank files and any of them could write the shared files), while one reader thread
per shared path (config.json, generation_config.json, tokenizer_config.json,
hf_quant_config.json, model.safetensors.index.json) re-reads it as fast as it can from before
the job starts until local-run exits. Each read must be "absent" or a complete JSON document;
once present a file must never vanish or change; the first index a reader sees must name only
files that are already complete (the index goes last). The coordinator's journal, streamed from
its REST API (GET /v1/jobs/{id}/events?follow=1) while the job runs, must show exactly one
commit per path and one holder of the sidecar lease. The output must equal `mxport export`'s.

local-run takes no worker flags (no --max-read-rate), so the export is not paced; instead the
test asserts that every reader really straddled its file's commit (absent reads, then present
reads) and made at least MIN_READS reads in all.

Usage: config_poller_test.py --bin BIN_DIR --fixtures FIXTURES_DIR [--workers 12]
"""

import argparse
import collections
import filecmp
import hashlib
import http.client
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

SHARED = ["config.json", "generation_config.json", "tokenizer_config.json",
          "hf_quant_config.json", "model.safetensors.index.json"]
MIN_READS = 2000
JOB = "poller"


class Poller(threading.Thread):
    """Re-reads one path until stopped and classifies every read."""

    def __init__(self, out_dir, name):
        super().__init__(daemon=True)
        self.path, self.name = os.path.join(out_dir, name), name
        self.counts = collections.Counter()  # absent / valid / invalid
        self.contents = collections.OrderedDict()  # sha256 -> first bytes seen
        self.problems = []
        self.index_checked = False
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                with open(self.path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                self.counts["absent"] += 1
                if self.counts["valid"]:
                    self.problems.append("vanished after it was published")
                continue
            try:
                doc = json.loads(data)
            except ValueError as e:
                self.counts["invalid"] += 1
                self.problems.append("invalid JSON (%s): %r" % (e, data[:80]))
                continue
            self.counts["valid"] += 1
            digest = hashlib.sha256(data).hexdigest()
            if digest not in self.contents:
                self.contents[digest] = data[:80]
                if len(self.contents) > 1:
                    self.problems.append("changed after it was published")
            if self.name == "model.safetensors.index.json" and not self.index_checked:
                self.index_checked = True
                self.problems += index_before_files(os.path.dirname(self.path), doc)

    def stop(self):
        self.halt.set()
        self.join()


def index_before_files(out_dir, index):
    """Every file the index names must be complete when the index becomes visible."""
    problems = []
    for name in sorted(set(index["weight_map"].values())):
        path = os.path.join(out_dir, name)
        try:
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
            header.pop("__metadata__", None)
            end = max(v["data_offsets"][1] for v in header.values())
            if os.path.getsize(path) != 8 + n + end:
                problems.append("the index was visible before %s was complete" % name)
        except (OSError, ValueError, struct.error) as e:
            problems.append("the index was visible before %s was: %s" % (name, e))
    return problems


def children(ppid):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
            if int(stat[stat.rindex(")") + 2:].split()[1]) != ppid:
                continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                yield int(pid), f.read().decode().split("\0")
        except (OSError, ValueError):
            continue


def coordinator_port_file(local_run, deadline):
    """The --port-file of the coordinator that local-run started, once it is written."""
    while time.monotonic() < deadline and local_run.poll() is None:
        for _, argv in children(local_run.pid):
            if os.path.basename(argv[0]) == "mxport-coordinator" and "--port-file" in argv:
                path = argv[argv.index("--port-file") + 1]
                try:
                    with open(path) as f:
                        json.load(f)["rest"]
                    return path
                except (OSError, ValueError, KeyError):
                    pass
        time.sleep(0.01)  # polling period
    return None


class EventStream(threading.Thread):
    """Follows GET /v1/jobs/{id}/events?follow=1 until the server ends the stream."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.events, self.error = port, [], None

    def run(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the job is submitted just after the coordinator
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                conn.request("GET", "/v1/jobs/%s/events?follow=1" % JOB)
                resp = conn.getresponse()
                if resp.status == 404:
                    conn.close()
                    time.sleep(0.01)  # polling period
                    continue
                for line in resp:
                    if line.strip():
                        self.events.append(json.loads(line))
                return
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.error = e
                return
        self.error = "the job never appeared"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--workers", type=int, default=12)
    a = ap.parse_args()
    bin_dir = os.path.abspath(a.bin)
    layout = os.path.join(os.path.abspath(a.fixtures), "layouts", "qwen3_moe_tp2_pp2_ep4")
    hf = os.path.join(os.path.abspath(a.fixtures), "models", "qwen3_moe", "hf")
    work = tempfile.mkdtemp(prefix="mxport-poller-")
    failures = []
    try:
        out = os.path.join(work, "out")
        pollers = [Poller(out, name) for name in SHARED]
        for p in pollers:
            p.start()
        t0 = time.monotonic()
        with open(os.path.join(work, "local-run.log"), "w") as log:
            local_run = subprocess.Popen(
                [os.path.join(bin_dir, "mxport"), "local-run", "--source", layout, "--hf-config",
                 hf, "--output", out, "--workers", str(a.workers), "--max-shard-size", "100KiB",
                 "--job-id", JOB], stdout=log, stderr=subprocess.STDOUT)
            port_file = coordinator_port_file(local_run, time.monotonic() + 60)
            stream = EventStream(json.load(open(port_file))["rest"]) if port_file else None
            if stream:
                stream.start()
            rc = local_run.wait(timeout=300)
        seconds = time.monotonic() - t0
        for p in pollers:
            p.stop()
        if stream:
            stream.join(timeout=30)
        if port_file and os.path.basename(os.path.dirname(port_file)).startswith("mxport-local-"):
            shutil.rmtree(os.path.dirname(port_file), ignore_errors=True)  # local-run leaves it
        if rc != 0:
            failures.append("local-run exited %d: %s" % (
                rc, open(os.path.join(work, "local-run.log")).read()[-1500:]))

        # The readers.
        total = sum(sum(p.counts.values()) for p in pollers)
        print("%d workers, %.1f s; %d reads in all" % (a.workers, seconds, total))
        committed = set()
        for p in pollers:
            print("  %-30s absent %6d  valid %6d  invalid %d  versions %d" % (
                p.name, p.counts["absent"], p.counts["valid"], p.counts["invalid"],
                len(p.contents)))
            failures += ["%s: %s" % (p.name, x) for x in p.problems[:5]]
            if os.path.exists(p.path):
                committed.add(p.name)
                if not (p.counts["absent"] and p.counts["valid"]):
                    failures.append("%s: the reader did not see the commit happen (absent %d, "
                                    "valid %d)" % (p.name, p.counts["absent"], p.counts["valid"]))
            elif p.counts["valid"]:
                failures.append("%s: seen, but missing from the output" % p.name)
        if total < MIN_READS:
            failures.append("only %d reads (at least %d expected)" % (total, MIN_READS))
        for name in ("config.json", "model.safetensors.index.json"):
            if name not in committed:
                failures.append("%s was not written" % name)

        # The journal.
        if stream is None:
            failures.append("could not find the coordinator's REST port")
        else:
            events = stream.events
            seqs = [int(e["seq"]) for e in events]
            if stream.error or seqs != list(range(1, len(seqs) + 1)) or not any(
                    e["type"] == "phase" and e["message"] == "SUCCEEDED" for e in events):
                failures.append("incomplete event stream (%s, %d events)"
                                % (stream.error, len(events)))
            commits = collections.Counter(e["message"].split(" (")[0] for e in events
                                          if e["type"] == "commit")
            holders = {e["message"].split(" to worker ")[1].split()[0] for e in events
                       if e["type"] == "lease_granted" and e["message"].startswith("sidecars ")}
            assigned = [e["message"] for e in events if e["type"] == "assigned"]
            for e in events:
                if e["type"] in ("generation", "worker_lost", "worker_stuck", "job_failed"):
                    print("  event %s %s: %s" % (e["seq"], e["type"], e["message"]))
            print("journal: %d events, %d commits of %d paths; sidecar lease holders %s; %s"
                  % (len(events), sum(commits.values()), len(commits), sorted(holders),
                     "; ".join(assigned)))
            for path, n in sorted(commits.items()):
                if n != 1:
                    failures.append("%s was committed %d times" % (path, n))
            for name in committed:
                if commits[name] != 1:
                    failures.append("%s: %d commits in the journal" % (name, commits[name]))
            if len(holders) != 1:
                failures.append("the sidecar lease went to workers %s" % sorted(holders))
            if not any("to %d workers" % a.workers in m for m in assigned):
                failures.append("no assignment of the rank files to %d workers" % a.workers)

        # The output.
        ref = os.path.join(work, "reference")
        subprocess.run([os.path.join(bin_dir, "mxport"), "export", "--source", layout,
                        "--hf-config", hf, "--output", ref, "--max-shard-size", "100KiB"],
                       check=True, stdout=subprocess.DEVNULL)
        names = sorted(os.listdir(ref))
        if sorted(os.listdir(out)) != names:  # staging leftovers included
            failures.append("file sets differ: %s" % sorted(set(os.listdir(out)) ^ set(names)))
        _, mismatch, errors = filecmp.cmpfiles(ref, out, names, shallow=False)
        failures += ["%s differs from the single-process export" % n for n in mismatch + errors]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL " + f)
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
