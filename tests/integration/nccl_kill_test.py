#!/usr/bin/env python3
"""Kill -9 of one NCCL worker in the middle of a transfer, on a machine with two GPUs.

A coordinator and two mxport-worker processes (worker i on GPU i, --transport nccl) export a
fixture with TP, PP and EP above 1. The victim (worker 1) reads slowly (--max-read-rate), so
the transfer lasts long enough to kill it on evidence rather than on a timer: the job is
TRANSFERRING and the victim has sent part of its bytes but cannot finish within SLACK
seconds. Then:
  - the survivor must leave generation 0 (its NCCL step fails, or the coordinator's abort
    order aborts its communicator) within --op-timeout, the watchdog's deadline: no hang;
  - the coordinator moves the job to a new generation;
  - the victim comes back (same index, same GPU, unpaced) and the job SUCCEEDS;
  - the output is byte-identical to the single-process `mxport export`.
Stdlib only (the GPU machine has no extra packages). Exits 77 (skipped) with fewer than two
GPUs, 1 on a failure, 0 when everything held; prints the figures either way.

Usage: nccl_kill_test.py BIN_DIR FIXTURES_DIR [--keep] [--tcp]
  --tcp runs the same scenario over TCP without GPUs (to rehearse the script on any machine).
"""

import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

RATE = 8000      # victim's read pacing, bytes/s
SLACK = 5.0      # seconds the victim must still need when it is killed
OP_TIMEOUT = 20  # the workers' data-plane step deadline (the watchdog's), seconds
TTL = 6          # the coordinator's heartbeat TTL, seconds
LAYOUT, MODEL = "qwen3_moe_tp2_pp2_ep4", "qwen3_moe"


def gpu_count():
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


class Proc:
    """A process whose output lines are kept with the monotonic time they arrived."""

    def __init__(self, name, argv):
        self.name, self.lines = name, []
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append((time.monotonic(), line.rstrip()))

    def first(self, pred, after=0.0):
        for t, line in list(self.lines):
            if t >= after and pred(line):
                return t, line
        return None


def poll(seconds, fn, period=0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(period)  # the polling period
    return None


def main():
    bin_dir, fixtures = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    keep = "--keep" in sys.argv
    tcp = "--tcp" in sys.argv
    gpus = gpu_count()
    if gpus < 2 and not tcp:
        print("skipped: needs 2 GPUs, found %d" % gpus)
        return 77
    work = tempfile.mkdtemp(prefix="mxport-nccl-kill-")
    procs, failures = [], []
    try:
        coord = Proc("coordinator", [
            os.path.join(bin_dir, "mxport-coordinator"), "--grpc-address", "127.0.0.1:0",
            "--rest-port", "0", "--db", os.path.join(work, "state.db"),
            "--port-file", os.path.join(work, "ports.json"), "--tick-interval", "0.5",
            "--heartbeat-ttl", str(TTL), "--log-level", "warn"])
        procs.append(coord)
        ports = poll(30, lambda: os.path.exists(os.path.join(work, "ports.json")) and
                     os.path.getsize(os.path.join(work, "ports.json")) and
                     json.load(open(os.path.join(work, "ports.json"))))
        if not ports:
            print("FAIL: the coordinator did not start")
            return 1
        rest = "http://127.0.0.1:%d" % ports["rest"]
        job = "nccl-kill"

        def call(method, path, body=None):
            req = urllib.request.Request(rest + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read() or b"{}")

        out = os.path.join(work, "out")
        call("POST", "/v1/jobs", {
            "job_id": job, "source_path": os.path.join(fixtures, "layouts", LAYOUT),
            "hf_config_dir": os.path.join(fixtures, "models", MODEL, "hf"),
            "output_path": out, "workers_expected": 2, "max_shard_size": "102400",
            "transport": "tcp" if tcp else "nccl"})

        def worker(index, *extra):
            return Proc("worker %d" % index, [
                os.path.join(bin_dir, "mxport-worker"), "--coordinator",
                "127.0.0.1:%d" % ports["grpc"], "--job", job, "--index", str(index),
                "--gpu", str(-1 if tcp else index), "--transport", "tcp" if tcp else "nccl",
                "--chunk-bytes", "4096",
                "--op-timeout", str(OP_TIMEOUT), "--scratch-dir", os.path.join(work, "scratch")]
                + list(extra))

        survivor = worker(0)
        victim = worker(1, "--max-read-rate", str(RATE))
        procs += [survivor, victim]

        def ready():
            j = call("GET", "/v1/jobs/" + job)
            if j["phase"] in ("SUCCEEDED", "FAILED", "CANCELLED") or int(j["generation"]) > 0:
                return ("missed", j)
            w = [w for w in j.get("workers", []) if int(w["index"]) == 1]
            if j["phase"] != "TRANSFERRING" or not w or w[0]["activity"] != "transferring":
                return None
            done, total = int(w[0]["bytes_done"]), int(w[0]["bytes_total"])
            if done == 0 or not total:
                return None
            left = (total - done) / RATE
            return ("ready" if left >= SLACK else "missed", j, done, total, left)

        state = poll(120, ready)
        if not state or state[0] != "ready":
            print("FAIL: never caught the victim mid-transfer: %s" % (state,))
            return 1
        _, before, done, total, left = state
        print("killing worker 1 (GPU 1) mid-transfer: %d of %d bytes moved, at least %.1f s "
              "left" % (done, total, left))
        t_kill = time.monotonic()
        victim.p.kill()
        victim.p.wait()

        left_gen0 = poll(OP_TIMEOUT + 10, lambda: survivor.first(
            lambda l: "generation 0" in l and ("aborted" in l or "stopped" in l), t_kill))
        if not left_gen0:
            failures.append("the survivor did not leave generation 0 within %d s (hang?)"
                            % (OP_TIMEOUT + 10))
        else:
            dt = left_gen0[0] - t_kill
            print("survivor left generation 0 %.2f s after the kill (watchdog deadline %d s): %s"
                  % (dt, OP_TIMEOUT, left_gen0[1]))
            if dt > OP_TIMEOUT:
                failures.append("the survivor took %.1f s, over the %d s deadline"
                                % (dt, OP_TIMEOUT))
        gen = poll(60, lambda: int(call("GET", "/v1/jobs/" + job)["generation"]) > 0)
        if not gen:
            failures.append("no new generation after the kill")
        t_back = time.monotonic()
        procs.append(worker(1))  # the pod comes back: same index, same GPU, unpaced
        end = poll(180, lambda: (lambda j: j if j["phase"] in
                                 ("SUCCEEDED", "FAILED", "CANCELLED") else None)(
                                     call("GET", "/v1/jobs/" + job)))
        if not end or end["phase"] != "SUCCEEDED":
            failures.append("job ended %s" % (end and (end["phase"], end.get("message"))))
        else:
            print("job SUCCEEDED in generation %s (restarts %s), %.1f s after the worker came "
                  "back" % (end["generation"], end.get("restarts"), time.monotonic() - t_back))
            kept = {c["path"]: c for c in before.get("committed", [])}
            for c in end.get("committed", []):
                if c["path"] in kept and c["content_hash"] != kept[c["path"]]["content_hash"]:
                    failures.append("%s was rewritten" % c["path"])
            ref = os.path.join(work, "reference")
            subprocess.run([os.path.join(bin_dir, "mxport"), "export", "--source",
                            os.path.join(fixtures, "layouts", LAYOUT), "--hf-config",
                            os.path.join(fixtures, "models", MODEL, "hf"), "--output", ref,
                            "--max-shard-size", "100KiB"], check=True, capture_output=True)
            names = sorted(os.listdir(ref))
            if sorted(n for n in os.listdir(out)) != names:
                failures.append("file sets differ: %s vs %s" % (sorted(os.listdir(out)), names))
            differ = [n for n in names if not filecmp.cmp(os.path.join(ref, n),
                                                          os.path.join(out, n), shallow=False)]
            if differ:
                failures.append("differ from mxport export: %s" % differ)
            else:
                print("output byte-identical to mxport export (%d files)" % len(names))
    finally:
        for p in procs:
            if p.p.poll() is None:
                p.p.kill()
        for p in procs:
            p.p.wait()
        if failures:
            for p in procs:
                print("--- %s" % p.name)
                for _, line in p.lines[-15:]:
                    print("   " + line)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL: " + f)
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
