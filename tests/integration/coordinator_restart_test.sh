#!/usr/bin/env bash
# Kill -9 of the coordinator in the middle of a job, then a restart on the same database: the
# job, its events, tokens and commits survive, the workers reconnect, the job completes in a
# new generation, files committed before the kill are not rewritten, and the output equals the
# single-process export. Usage: coordinator_restart_test.sh BIN_DIR FIXTURES_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
FIXTURES=$(cd "$2" && pwd)
source "$(dirname "$0")/lib.sh"
WORK=$(mktemp -d)
trap 'kill_tracked; rm -rf "$WORK"' EXIT
JOB=restart  # used by the helpers of lib.sh
fail() { echo "FAIL $*"; echo "0 passed, 1 failed"; exit 1; }

read -r GP RP < <($PY -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
REST=http://127.0.0.1:$RP
start_coordinator() {
  rm -f "$WORK/ports.json"
  "$BIN/mxport-coordinator" --grpc-address 127.0.0.1:$GP --rest-port $RP --db "$WORK/state.db" \
    --port-file "$WORK/ports.json" --tick-interval 1 --log-level warn &
  COORD=$!
  track_pid "$COORD"
  wait_port_file "$WORK/ports.json" || fail "the coordinator did not start"
}

LAYOUT=$FIXTURES/layouts/qwen3_moe_tp2_pp2_ep4
HF=$FIXTURES/models/qwen3_moe/hf
start_coordinator
curl -sf -X POST "$REST/v1/jobs" -d "{\"job_id\": \"restart\", \"source_path\": \"$LAYOUT\",
  \"hf_config_dir\": \"$HF\", \"output_path\": \"$WORK/out\", \"workers_expected\": 3,
  \"max_shard_size\": \"102400\"}" >/dev/null || fail "submit"
for w in 0 1 2; do  # paced reads so the job is still running when the coordinator dies
  "$BIN/mxport-worker" --coordinator 127.0.0.1:$GP --job restart --index $w \
    --max-read-rate 20000 --chunk-bytes 4096 &
  track_pid "$!"
done
# Kill the coordinator right after the first file is committed.
committed() { BEFORE=$(job_json) && [ "$(json_get 'len(j.get("committed", []))' <<<"$BEFORE")" -ge 1 ]; }
poll_until 60 committed || fail "no file was committed before the kill"
kill -9 "$COORD"
wait "$COORD" 2>/dev/null
phase_before=$(json_get 'j["phase"]' <<<"$BEFORE")
[ "$phase_before" != "SUCCEEDED" ] || fail "the job ended before the kill"
start_coordinator
phase=$(wait_job_end 120)
AFTER=$(job_json)
[ "$phase" = "SUCCEEDED" ] || fail "job ended $phase: $(json_get 'j["message"]' <<<"$AFTER")"

# Journal intact: commits from before kept their token and generation; restarts counted.
$PY - "$BEFORE" "$AFTER" <<'PY' || fail "journal check"
import json, sys
before, after = json.loads(sys.argv[1]), json.loads(sys.argv[2])
b = {c["path"]: c for c in before["committed"]}
a = {c["path"]: c for c in after["committed"]}
for path, c in b.items():
    assert a[path]["token"] == c["token"] and a[path]["generation"] == c["generation"], path
assert int(after["restarts"]) >= 1, after["restarts"]
assert int(after["generation"]) > int(before["generation"])
tokens_before = max(int(c["token"]) for c in b.values())
new = [int(c["token"]) for p, c in a.items() if p not in b]
assert new and min(new) > tokens_before, (tokens_before, new)
print("journal: %d commits kept, %d new with larger tokens" % (len(b), len(new)))
PY
job_events > "$WORK/events.ndjson" || fail "events"
$PY - "$WORK/events.ndjson" <<'PY' || fail "event log"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
seqs = [int(e["seq"]) for e in events]
assert seqs == list(range(1, len(seqs) + 1)), seqs
assert any("the coordinator restarted" in e["message"] for e in events)
print("events: %d, contiguous" % len(events))
PY
"$BIN/mxport" export --source "$LAYOUT" --hf-config "$HF" --output "$WORK/reference" \
  --max-shard-size 100KiB >/dev/null || fail "reference export"
for f in "$WORK"/reference/*; do
  cmp -s "$f" "$WORK/out/$(basename "$f")" || fail "$(basename "$f") differs"
done
echo "1 passed, 0 failed"
