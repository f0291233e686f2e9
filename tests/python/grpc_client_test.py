#!/usr/bin/python3
"""The public job API from a Python gRPC client, against the real mxport-coordinator binary.

Generates Python stubs from proto/ into a temporary directory, starts `mxport-coordinator`
(SQLite state in the temporary directory, ports picked by the kernel and read from its port
file), then checks over gRPC (and REST for the JSON form):

  * SubmitJob creates the job, is idempotent on job_id, and says ALREADY_EXISTS for a different
    spec under the same id;
  * GetJob returns the submitted job, and REST GET /v1/jobs/{id} returns the same document as
    json_format.MessageToDict(job, preserving_proto_field_name=True,
    including_default_value_fields=True) (timestamps included, as identical strings);
  * ListJobs filters by label;
  * WatchJob, read on a thread while CancelJob cancels the job, receives the numbered events
    (seq 1, 2, ... contiguous) ending with the CANCELLED phase event, and then ends OK; a watch
    resumed with after_seq gives the rest; REST /events gives the same events as NDJSON;
  * SIGTERM stops the coordinator with exit status 0.

Usage: grpc_client_test.py --bin BUILD/bin --src REPO. Prints "N passed, M failed" and exits
non-zero when anything failed. Python: /usr/bin/python3 with python3-grpcio and grpc_tools
(Debian's grpc_tools bundles protoc 3.5, which predates proto3 `optional`; then the system
protoc with grpc_python_plugin generates the stubs instead).
"""

import argparse
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

RPC_TIMEOUT = 10  # seconds, every unary call


def generate_stubs(src, out):
    """Generates export_pb2(_grpc) under `out`; returns a description of the generator used."""
    proto_dir = os.path.join(src, "proto")
    proto = os.path.join(proto_dir, "mxport", "v1", "export.proto")
    generators = [
        ("grpc_tools.protoc", [sys.executable, "-m", "grpc_tools.protoc"]),
    ]
    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if protoc and plugin:
        generators.append(("protoc + grpc_python_plugin",
                           [protoc, "--plugin=protoc-gen-grpc_python=" + plugin]))
    errors = []
    for name, command in generators:
        result = subprocess.run(command + ["-I" + proto_dir, "--python_out=" + out,
                                           "--grpc_python_out=" + out, proto],
                                capture_output=True, text=True)
        if result.returncode == 0:
            return name
        errors.append("%s: %s" % (name, result.stderr.strip()))
    raise RuntimeError("cannot generate the Python stubs:\n" + "\n".join(errors))


class Coordinator:
    """A running mxport-coordinator process; stop() sends SIGTERM."""

    def __init__(self, bin_dir, work):
        self.port_file = os.path.join(work, "ports.json")
        self.log_path = os.path.join(work, "coordinator.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [os.path.join(bin_dir, "mxport-coordinator"), "--grpc-address", "127.0.0.1:0",
             "--rest-port", "0", "--db", os.path.join(work, "state.db"), "--port-file",
             self.port_file, "--allowed-root", work, "--log-level", "info"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the coordinator exited with %d:\n%s" %
                                   (self.process.returncode, self.log_tail()))
            try:
                with open(self.port_file) as f:
                    ports = json.load(f)
                self.grpc_port, self.rest_port = ports["grpc"], ports["rest"]
                return
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        self.process.kill()
        raise RuntimeError("the coordinator wrote no port file in 30 s:\n" + self.log_tail())

    def log_tail(self):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-20:])

    def stop(self, timeout=30):
        """SIGTERM, then wait; returns the exit status (None if it had to be killed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.log.close()


class Suite:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, check):
        try:
            check()
        except Exception:  # a failed check, or anything it raised
            self.failed += 1
            print("FAIL %s\n%s" % (name, traceback.format_exc()), flush=True)
        else:
            self.passed += 1
            print("ok   %s" % name, flush=True)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="directory of mxport-coordinator")
    parser.add_argument("--src", required=True, help="repository root (for proto/)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="mxport-pytest-")
    stubs = os.path.join(work, "stubs")
    os.makedirs(stubs)
    try:
        print("stubs generated with %s" % generate_stubs(args.src, stubs), flush=True)
        sys.path.insert(0, stubs)
        import grpc
        from google.protobuf import json_format
        pb = importlib.import_module("mxport.v1.export_pb2")
        pb_grpc = importlib.import_module("mxport.v1.export_pb2_grpc")
        coordinator = Coordinator(args.bin, work)
    except Exception:
        traceback.print_exc()
        print("0 passed, 1 failed")
        shutil.rmtree(work, ignore_errors=True)
        return 1

    def to_dict(message):
        try:
            return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                             including_default_value_fields=True)
        except TypeError:  # protobuf >= 26 renamed the option
            return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                             always_print_fields_with_no_presence=True)

    def rest(path):
        url = "http://127.0.0.1:%d%s" % (coordinator.rest_port, path)
        with urllib.request.urlopen(url, timeout=RPC_TIMEOUT) as response:
            return response.status, response.read().decode()

    channel = grpc.insecure_channel("127.0.0.1:%d" % coordinator.grpc_port)
    stub = pb_grpc.ExportServiceStub(channel)
    suite = Suite()
    job_id = "py-1"

    def spec(**changes):
        s = pb.JobSpec(job_id=job_id, source_path=os.path.join(work, "ckpt"),
                       output_path=os.path.join(work, "out"), workers_expected=2,
                       labels={"team": "python", "suite": "grpc"})
        for key, value in changes.items():
            setattr(s, key, value)
        return s

    submitted = {}

    def submit():
        job = stub.SubmitJob(pb.SubmitJobRequest(spec=spec()), timeout=RPC_TIMEOUT)
        expect(job.spec.job_id == job_id, "job id %r" % job.spec.job_id)
        expect(job.phase == pb.PENDING, "phase %s" % pb.JobPhase.Name(job.phase))
        expect(job.spec.source_format == "torch", "defaults filled: %r" % job.spec.source_format)
        expect(job.created_at, "created_at is set")
        submitted["job"] = job

    def submit_is_idempotent():
        again = stub.SubmitJob(pb.SubmitJobRequest(spec=spec()), timeout=RPC_TIMEOUT)
        expect(again.created_at == submitted["job"].created_at, "the same job again")
        try:
            stub.SubmitJob(pb.SubmitJobRequest(spec=spec(output_path=work + "/elsewhere")),
                           timeout=RPC_TIMEOUT)
            raise AssertionError("a different spec under the same id was accepted")
        except grpc.RpcError as e:
            expect(e.code() == grpc.StatusCode.ALREADY_EXISTS, "code %s" % e.code())

    def get_matches_rest():
        before = to_dict(stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=RPC_TIMEOUT))
        status, body = rest("/v1/jobs/" + job_id)
        after = to_dict(stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=RPC_TIMEOUT))
        expect(status == 200, "REST status %d" % status)
        expect(before == after, "the job changed between reads: %s / %s" % (before, after))
        from_rest = json.loads(body)
        for key in ("created_at", "updated_at"):
            expect(isinstance(from_rest[key], str) and from_rest[key] == before[key],
                   "%s: REST %r, gRPC %r" % (key, from_rest[key], before[key]))
        expect(from_rest == before, "REST and gRPC differ:\nREST %s\ngRPC %s" % (
            json.dumps(from_rest, sort_keys=True), json.dumps(before, sort_keys=True)))
        expect(before["spec"]["job_id"] == job_id and before["phase"] == "PENDING",
               "GetJob returned %s" % before)

    def rest_unknown_job_is_404():
        try:
            rest("/v1/jobs/no-such-job")
            raise AssertionError("an unknown job was found")
        except urllib.error.HTTPError as e:
            expect(e.code == 404, "HTTP %d" % e.code)

    def list_filters_by_label():
        other = spec(job_id="py-2")
        other.labels["team"] = "other"
        stub.SubmitJob(pb.SubmitJobRequest(spec=other), timeout=RPC_TIMEOUT)
        listed = stub.ListJobs(pb.ListJobsRequest(label_selector={"team": "python"}),
                               timeout=RPC_TIMEOUT)
        expect([j.spec.job_id for j in listed.jobs] == [job_id],
               "listed %s" % [j.spec.job_id for j in listed.jobs])
        every = stub.ListJobs(pb.ListJobsRequest(), timeout=RPC_TIMEOUT)
        expect({j.spec.job_id for j in every.jobs} == {job_id, "py-2"}, "all jobs")

    watched = {"events": [], "error": None}

    def watch_while_cancelling():
        first = threading.Event()

        def reader():
            try:
                for event in stub.WatchJob(pb.WatchJobRequest(job_id=job_id), timeout=60):
                    watched["events"].append(event)
                    first.set()
            except grpc.RpcError as e:
                watched["error"] = e
            first.set()

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        expect(first.wait(RPC_TIMEOUT), "no event within %d s" % RPC_TIMEOUT)
        cancelled = stub.CancelJob(pb.CancelJobRequest(job_id=job_id, reason="python test"),
                                   timeout=RPC_TIMEOUT)
        expect(cancelled.phase == pb.CANCELLED, "CancelJob gave %s" %
               pb.JobPhase.Name(cancelled.phase))
        thread.join(30)
        expect(not thread.is_alive(), "the watch did not end after the job ended")
        expect(watched["error"] is None, "the watch failed: %s" % watched["error"])
        events = watched["events"]
        seqs = [e.seq for e in events]
        expect(seqs == list(range(1, len(events) + 1)), "seqs %s" % seqs)
        expect(events and events[0].type == "submitted", "first event %s" % events[:1])
        last = events[-1]
        expect(last.type == "phase" and last.message.startswith("CANCELLED"),
               "last event %s %r" % (last.type, last.message))
        expect("python test" in last.message, "the reason is in %r" % last.message)
        expect(all(e.job_id == job_id for e in events), "job ids")
        job = stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=RPC_TIMEOUT)
        expect(job.phase == pb.CANCELLED, "phase %s" % pb.JobPhase.Name(job.phase))

    def watch_resumes_after_seq():
        events = list(stub.WatchJob(pb.WatchJobRequest(job_id=job_id, after_seq=1), timeout=30))
        expect([e.seq for e in events] == [e.seq for e in watched["events"][1:]],
               "resumed seqs %s" % [e.seq for e in events])
        status, body = rest("/v1/jobs/%s/events" % job_id)
        expect(status == 200, "REST status %d" % status)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        expect(lines == [to_dict(e) for e in watched["events"]],
               "REST events differ:\n%s\n%s" % (lines, [to_dict(e) for e in watched["events"]]))

    def watch_of_unknown_job_is_not_found():
        try:
            list(stub.WatchJob(pb.WatchJobRequest(job_id="no-such-job"), timeout=RPC_TIMEOUT))
            raise AssertionError("a watch of an unknown job succeeded")
        except grpc.RpcError as e:
            expect(e.code() == grpc.StatusCode.NOT_FOUND, "code %s" % e.code())

    try:
        suite.run("SubmitJob creates a PENDING job", submit)
        suite.run("SubmitJob is idempotent; another spec is ALREADY_EXISTS", submit_is_idempotent)
        suite.run("GetJob equals REST GET /v1/jobs/{id} (MessageToDict)", get_matches_rest)
        suite.run("REST GET of an unknown job is 404", rest_unknown_job_is_404)
        suite.run("ListJobs filters by label", list_filters_by_label)
        suite.run("WatchJob streams seq 1..n ending CANCELLED while CancelJob runs",
                  watch_while_cancelling)
        suite.run("WatchJob resumes after_seq; REST events match", watch_resumes_after_seq)
        suite.run("WatchJob of an unknown job is NOT_FOUND", watch_of_unknown_job_is_not_found)
    finally:
        channel.close()
        exit_status = coordinator.stop()

    def stopped_cleanly():
        expect(exit_status == 0, "exit status %s after SIGTERM:\n%s" %
               (exit_status, coordinator.log_tail()))

    suite.run("SIGTERM stops the coordinator with status 0", stopped_cleanly)
    if suite.failed:
        print("coordinator log (tail):\n" + coordinator.log_tail())
    print("%d passed, %d failed" % (suite.passed, suite.failed))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if suite.failed else 0


if __name__ == "__main__":
    sys.exit(main())
