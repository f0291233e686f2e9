#!/usr/bin/env python3
"""The coordinator's dashboard page (GET /) rendered by headless Chromium.

Starts the real mxport-coordinator, submits three jobs over REST, registers two workers of the
newest one over the gRPC WorkerService (stubs generated here with protoc and grpc_python_plugin)
and keeps their Session streams heartbeating with bytes and an activity. Then loads the page in
headless Chromium (--dump-dom) and checks the rendered job rows, the worker rows and the event
log against what the REST API reports, takes a screenshot (<out>/dashboard.png), and checks that
a coordinator with a bearer token is read through /?token=.

Needs Debian's chromium, python3-grpcio, python3-protobuf, protobuf-compiler and
protobuf-compiler-grpc (tools/install-deps.sh installs them). Without Chromium the test fails:
it does not skip.

Usage: dashboard_test.py --bin BUILD/bin --src SOURCE_ROOT --out BUILD [--keep]
Prints "N passed, M failed" and exits non-zero on any failure.
"""

import argparse
import glob
import html.parser
import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

NEWEST_JOB = "export-qwen3-30b"
WAITING_JOB = "convert-llama-70b"
FAILING_JOB = "export-missing-source"
WORKERS = [  # (index, host, gpu, bytes_done, bytes_total, activity)
    (0, "node-a", 0, 3 * 2**30, 8 * 2**30, "writing shard 2/5"),
    (1, "node-b", 1, 5 * 2**29, 8 * 2**30, "gathering experts"),
]
TOKEN = "s3cret-dashboard-token"


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))
        return ok


# ---- the coordinator and its APIs ---------------------------------------------------------------

class Coordinator:
    """An mxport-coordinator process on ephemeral ports, with its state under `workdir`."""

    def __init__(self, binary, workdir, token=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        port_file = os.path.join(workdir, "ports.json")
        args = [binary, "--grpc-address", "127.0.0.1:0", "--rest-port", "0",
                "--db", os.path.join(workdir, "state.db"), "--port-file", port_file,
                "--tick-interval", "1", "--shutdown-grace", "3"]
        self.token = token
        if token:
            token_file = os.path.join(workdir, "token")
            with open(token_file, "w") as f:
                f.write(token + "\n")
            args += ["--auth-token-file", token_file]
        self.log_path = os.path.join(workdir, "coordinator.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the coordinator exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            if os.path.exists(port_file):
                with open(port_file) as f:
                    ports = json.load(f)
                self.grpc_port, self.rest_port = int(ports["grpc"]), int(ports["rest"])
                break
            if time.time() > deadline:
                raise RuntimeError("no port file after 30 s:\n" + self.log_tail())
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.rest_port}"

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.read().decode()

    def submit(self, spec):
        return json.loads(self.request("POST", "/v1/jobs", spec))

    def job(self, job_id):
        return json.loads(self.request("GET", f"/v1/jobs/{job_id}"))

    def events(self, job_id):
        text = self.request("GET", f"/v1/jobs/{job_id}/events?after_seq=0")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def stop(self):
        """SIGTERM, then wait; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                return None
        self.log.close()
        return self.proc.returncode


def generate_stubs(src, outdir):
    """Python modules for proto/mxport/v1/*.proto. Debian's grpc_tools bundles a protoc too old
    for proto3 `optional`, so this uses the system protoc with grpc_python_plugin."""
    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if not protoc or not plugin:
        raise RuntimeError("protoc and grpc_python_plugin are needed "
                           "(protobuf-compiler, protobuf-compiler-grpc)")
    protos = sorted(glob.glob(os.path.join(src, "proto", "mxport", "v1", "*.proto")))
    subprocess.run([protoc, "-I" + os.path.join(src, "proto"), "--python_out=" + outdir,
                    "--grpc_python_out=" + outdir, "--plugin=protoc-gen-grpc_python=" + plugin,
                    *protos], check=True)
    sys.path.insert(0, outdir)


class FakeWorker:
    """A worker that registers and heartbeats over a Session stream, as mxport-worker does,
    with bytes advancing each second so the page has something live to show."""

    def __init__(self, grpc, pb, pb_grpc, channel, job_id, index, host, gpu, done, total,
                 activity):
        self.pb, self.job_id, self.index = pb, job_id, index
        self.done, self.total, self.activity = done, total, activity
        stub = pb_grpc.WorkerServiceStub(channel)
        reply = stub.Register(pb.RegisterRequest(
            job_id=job_id, worker_index=index, data_address=f"10.0.0.{index + 1}:47000",
            host=host, gpu=gpu), timeout=10)
        self.generation = reply.generation
        self.outbox = queue.Queue()
        self.replies = stub.Session(iter(self.outbox.get, None))
        self.heartbeats_answered = 0
        self.error = None
        self.stopping = threading.Event()
        self.reader = threading.Thread(target=self._read, args=(grpc,), daemon=True)
        self.reader.start()
        self.beat()
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.ticker.start()

    def beat(self):
        self.outbox.put(self.pb.WorkerMessage(
            job_id=self.job_id, worker_index=self.index, generation=self.generation,
            heartbeat=self.pb.Heartbeat(bytes_done=self.done, bytes_total=self.total,
                                        activity=self.activity)))

    def _tick(self):
        while not self.stopping.wait(1.0):
            self.done = min(self.total, self.done + 96 * 2**20 * (self.index + 1))
            self.beat()

    def _read(self, grpc):
        try:
            for _ in self.replies:
                self.heartbeats_answered += 1
        except grpc.RpcError as e:
            if not self.stopping.is_set():
                self.error = e

    def close(self):
        self.stopping.set()
        self.ticker.join(timeout=5)
        self.outbox.put(None)  # half-closes the stream: the coordinator ends it OK
        self.reader.join(timeout=10)


# ---- Chromium -----------------------------------------------------------------------------------

def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def run_chromium(chromium, profile, url, extra, timeout=90):
    """Runs headless Chromium once; returns (stdout, stderr tail). Raises on failure."""
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--user-data-dir=" + profile, "--virtual-time-budget=5000", *extra, url]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise RuntimeError(f"chromium ran past {timeout} s:\n" + err.decode(errors="replace")[-3000:])
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited with {proc.returncode}:\n"
                           + err.decode(errors="replace")[-3000:])
    return out.decode(errors="replace"), err.decode(errors="replace")[-3000:]


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, attrs, parent, [], []

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def all_text(self):
        parts = list(self.text)
        for child in self.children:
            parts.append(child.all_text())
        return " ".join(p for p in parts if p.strip())

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, tag=None, cls=None, **attrs):
        return [n for n in self.walk()
                if (tag is None or n.tag == tag) and (cls is None or cls in n.classes())
                and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def by_id(self, element_id):
        found = [n for n in self.walk() if n.attrs.get("id") == element_id]
        return found[0] if found else None


class DomParser(html.parser.HTMLParser):
    """The dumped DOM as a tree of Nodes (enough of HTML for the page: void tags, no
    implied end tags)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: (v if v is not None else "") for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        if self.current.tag not in ("script", "style"):
            self.current.text.append(data)


def parse_dom(text):
    parser = DomParser()
    parser.feed(text)
    parser.close()
    return parser.root


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


# ---- the test -----------------------------------------------------------------------------------

def submit_jobs(coord):
    coord.submit({"job_id": WAITING_JOB, "source_path": "/data/ckpt/llama-70b",
                  "output_path": "/data/hf/llama-70b", "workers_expected": 4,
                  "labels": {"team": "infra"}})
    time.sleep(0.05)
    coord.submit({"job_id": FAILING_JOB, "source_path": "/nonexistent/mxport-dashboard-test",
                  "output_path": "/tmp/mxport-dashboard-test-out", "workers_expected": 1,
                  "labels": {"team": "qa"}})
    time.sleep(0.05)
    coord.submit({"job_id": NEWEST_JOB, "source_path": "/data/ckpt/qwen3-30b-a3b/iter_0012000",
                  "output_path": "/data/hf/qwen3-30b-a3b", "workers_expected": 3,
                  "labels": {"team": "llm", "model": "qwen3-moe"}})


def check_main_page(c, dom, coord):
    body = dom.find("body")
    c.check("page answered its first poll (body[data-ready])",
            bool(body) and body[0].attrs.get("data-ready") == "1")
    error = dom.by_id("error")
    c.check("no error banner", error is not None and "hidden" in error.attrs,
            error.all_text() if error else "no #error element")

    rows = dom.find("tr", cls="job-row")
    ids = [r.attrs.get("data-job-id") for r in rows]
    c.check("three job rows, newest first", ids[:1] == [NEWEST_JOB] and len(ids) == 3,
            f"rows {ids}")
    for job_id in (NEWEST_JOB, WAITING_JOB, FAILING_JOB):
        want = coord.job(job_id)["phase"]
        row = [r for r in rows if r.attrs.get("data-job-id") == job_id]
        text = row[0].all_text() if row else ""
        c.check(f"job row {job_id} shows phase {want}",
                bool(row) and row[0].attrs.get("data-phase") == want and want in text
                and job_id in text, f"row: {row[0].attrs if row else None} text: {text!r}")
    newest = [r for r in rows if r.attrs.get("data-job-id") == NEWEST_JOB]
    if newest:
        text = newest[0].all_text()
        c.check("newest job is PENDING", newest[0].attrs.get("data-phase") == "PENDING", text)
        c.check("job row shows labels and files", "team=llm" in text and "model=qwen3-moe" in text
                and "0 / 0" in text, repr(text))
        c.check("newest job row is selected", "selected" in newest[0].classes())

    detail = dom.by_id("job-detail")
    c.check("detail panel shows the newest job",
            detail is not None and detail.attrs.get("data-job-id") == NEWEST_JOB
            and "hidden" not in detail.attrs, detail.attrs if detail else "no #job-detail")

    job = coord.job(NEWEST_JOB)
    states = {int(w["index"]): w["state"] for w in job["workers"]}
    workers = dom.by_id("workers")
    worker_rows = workers.find("tr", cls="worker-row") if workers else []
    c.check("two worker rows", len(worker_rows) == 2,
            [r.attrs for r in worker_rows])
    for index, host, gpu, _, _, activity in WORKERS:
        row = [r for r in worker_rows if r.attrs.get("data-index") == str(index)]
        text = row[0].all_text() if row else ""
        want = states.get(index, "?")
        c.check(f"worker row {index}: state {want}, host, activity, bytes",
                bool(row) and row[0].attrs.get("data-state") == want and want in text
                and host in text and f"gpu {gpu}" in text and activity in text
                and "8.00 GiB" in text and "GiB /" in text, repr(text))
        if row:
            beat = row[0].find("td", cls="heartbeat")
            c.check(f"worker row {index}: heartbeat age in seconds",
                    bool(beat) and beat[0].all_text().endswith(" s"),
                    beat[0].all_text() if beat else "no td.heartbeat")
    missing = workers.find("tr", cls="worker-missing") if workers else []
    c.check("the third expected worker shows as not registered",
            [r.attrs.get("data-index") for r in missing] == ["2"], [r.attrs for r in missing])
    count = dom.by_id("workers-count")
    c.check("workers heading counts registered of expected",
            count is not None and count.all_text() == "2 registered of 3 expected",
            count.all_text() if count else None)

    events = dom.by_id("events")
    event_rows = events.find("tr") if events else []
    seqs = [int(r.attrs.get("data-seq", "0")) for r in event_rows]
    stored = coord.events(NEWEST_JOB)
    c.check("event log rows are event-rows in seq order from 1",
            bool(event_rows) and all("event-row" in r.classes() for r in event_rows)
            and seqs == list(range(1, len(seqs) + 1)), seqs)
    c.check("event log holds the events stored before the page loaded",
            len(seqs) >= len(stored) >= 1 and [r.attrs.get("data-type") for r in event_rows][:len(stored)]
            == [e["type"] for e in stored], f"page {len(seqs)} rows, REST {len(stored)} events")
    if event_rows:
        first = event_rows[0].all_text()
        c.check("first event is the submission with its message",
                "submitted" in first and stored[0]["message"] in first, repr(first))

    for name in ("leases", "committed"):
        node = dom.by_id(name)
        empty = dom.by_id(name + "-empty")
        c.check(f"#{name} present and empty for a PENDING job",
                node is not None and not node.find("tr") and empty is not None
                and "hidden" not in empty.attrs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the build's bin directory")
    parser.add_argument("--src", required=True, help="the source root")
    parser.add_argument("--out", required=True, help="where dashboard.png goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    c = Checks()
    tmp = tempfile.mkdtemp(prefix="mxport-dashboard-")
    coordinators, workers, channel = [], [], None
    try:
        chromium = find_chromium()
        if not c.check("chromium is installed", chromium is not None,
                       "install Debian's chromium (tools/install-deps.sh)"):
            return finish(c)
        binary = os.path.join(args.bin, "mxport-coordinator")
        if not c.check("mxport-coordinator is built", os.access(binary, os.X_OK), binary):
            return finish(c)

        generate_stubs(args.src, tmp)
        import grpc  # noqa: E402 (after the stubs' path is set)
        from mxport.v1 import worker_pb2, worker_pb2_grpc  # noqa: E402

        coord = Coordinator(binary, os.path.join(tmp, "coordinator"))
        coordinators.append(coord)
        submit_jobs(coord)
        channel = grpc.insecure_channel(f"127.0.0.1:{coord.grpc_port}")
        for index, host, gpu, done, total, activity in WORKERS:
            workers.append(FakeWorker(grpc, worker_pb2, worker_pb2_grpc, channel, NEWEST_JOB,
                                      index, host, gpu, done, total, activity))
        # The failing job's one worker starts it, and the missing source fails it.
        worker_pb2_grpc.WorkerServiceStub(channel).Register(worker_pb2.RegisterRequest(
            job_id=FAILING_JOB, worker_index=0, data_address="10.0.0.9:47000", host="node-c",
            gpu=0), timeout=10)

        deadline = time.time() + 10
        while time.time() < deadline:
            job = coord.job(NEWEST_JOB)
            if (len(job["workers"]) == 2 and all(w.get("activity") for w in job["workers"])
                    and coord.job(FAILING_JOB)["phase"] != "PENDING"):
                break
            time.sleep(0.1)
        job = coord.job(NEWEST_JOB)
        c.check("REST reports both workers with their activity",
                sorted(w.get("activity", "") for w in job["workers"])
                == sorted(w[5] for w in WORKERS), job["workers"])

        # The page as Chromium renders it after five seconds of (virtual) polling.
        dom_text, err = run_chromium(chromium, os.path.join(tmp, "profile"), coord.url + "/",
                                     ["--dump-dom"])
        with open(os.path.join(tmp, "dom.html"), "w") as f:
            f.write(dom_text)
        check_main_page(c, parse_dom(dom_text), coord)

        # A screenshot, for people.
        shot = os.path.join(args.out, "dashboard.png")
        if os.path.exists(shot):
            os.remove(shot)
        run_chromium(chromium, os.path.join(tmp, "profile"), coord.url + "/",
                     ["--screenshot=" + shot, "--window-size=1400,900"])
        size = os.path.getsize(shot) if os.path.exists(shot) else 0
        c.check("screenshot is a 1400x900 PNG", png_size(shot) == (1400, 900) if size else False,
                f"{shot}: {png_size(shot) if size else 'missing'}")
        c.check("screenshot is non-trivial (> 30 KB)", size > 30_000, f"{size} bytes")
        print(f"screenshot: {shot}")

        # #job=ID selects another job: its detail, workers and events replace the newest's.
        dom = parse_dom(run_chromium(chromium, os.path.join(tmp, "profile"),
                                     coord.url + "/#job=" + FAILING_JOB, ["--dump-dom"])[0])
        detail = dom.by_id("job-detail")
        failed = coord.job(FAILING_JOB)
        c.check("#job= selects that job's detail",
                detail is not None and detail.attrs.get("data-job-id") == FAILING_JOB
                and detail.attrs.get("data-phase") == failed["phase"],
                detail.attrs if detail else "no #job-detail")
        selected = [r.attrs.get("data-job-id") for r in dom.find("tr", cls="job-row")
                    if "selected" in r.classes()]
        c.check("#job= marks that row selected", selected == [FAILING_JOB], selected)
        rows = dom.by_id("workers").find("tr", cls="worker-row") if dom.by_id("workers") else []
        c.check("its one worker row", [r.attrs.get("data-index") for r in rows] == ["0"],
                [r.attrs for r in rows])
        types = [r.attrs.get("data-type") for r in dom.find("tr", cls="event-row")]
        stored = [e["type"] for e in coord.events(FAILING_JOB)]
        c.check("its own event log", types == stored and len(stored) >= 2,
                f"page {types}, REST {stored}")
        message = dom.by_id("detail-message")
        c.check("its message is shown", message is not None and failed.get("message", "") != ""
                and message.all_text() == failed["message"], failed.get("message"))

        for w in workers:
            c.check(f"worker {w.index}'s session stayed up", w.error is None and
                    w.heartbeats_answered >= 1, f"{w.error!r}, {w.heartbeats_answered} answers")

        # With a bearer token: the page reads it from ?token= and sends it to /v1/.
        secured = Coordinator(binary, os.path.join(tmp, "secured"), token=TOKEN)
        coordinators.append(secured)
        secured.submit({"job_id": "token-job", "source_path": "/data/a", "output_path": "/data/b",
                        "workers_expected": 2})
        dom = parse_dom(run_chromium(chromium, os.path.join(tmp, "profile"),
                                     secured.url + "/?token=" + TOKEN, ["--dump-dom"])[0])
        rows = dom.find("tr", cls="job-row")
        c.check("with ?token= the page lists the job",
                [r.attrs.get("data-job-id") for r in rows] == ["token-job"]
                and rows[0].attrs.get("data-phase") == "PENDING", [r.attrs for r in rows])
        dom = parse_dom(run_chromium(chromium, os.path.join(tmp, "profile"), secured.url + "/",
                                     ["--dump-dom"])[0])
        error = dom.by_id("error")
        text = error.all_text() if error else ""
        c.check("without the token the page says why",
                error is not None and "hidden" not in error.attrs and "401" in text
                and "token" in text and not dom.find("tr", cls="job-row"), repr(text))
    except Exception as e:  # a failure to run at all is a failure, loudly
        c.check("the test ran to the end", False, f"{type(e).__name__}: {e}")
        for coord in coordinators:
            print(f"--- {coord.log_path} (tail)\n{coord.log_tail()}")
    finally:
        for w in workers:
            w.close()
        if channel is not None:
            channel.close()
        for coord in coordinators:
            status = coord.stop()
            if status != 0:
                print(f"warning: the coordinator in {coord.workdir} exited with {status}")
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return finish(c)


def finish(c):
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 and c.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
