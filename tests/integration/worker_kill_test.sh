#!/usr/bin/env bash
# Kill -9 of one worker process in the middle of the transfer: the coordinator declares it LOST
# (no heartbeat within the TTL), starts a new generation, the job completes once the worker comes
# back, the output is byte-identical to the single-process export, and files committed before
# the kill are not rewritten (same token, generation, hash and inode).
#
# The schedule is made deterministic by pacing rather than timing: 8 workers for the 8 rank
# files, so each reads one; only the victim (index 7, a last-stage rank file) reads slowly
# (--max-read-rate), so the output files of the first stage, which need none of its bytes,
# are committed early while it still has its file to send. The kill waits for evidence of that
# state in the job status and journal: a commit, the victim transferring, and at least SLACK
# seconds left before it could possibly finish (its paced reads of bytes_total cannot end
# before TRANSFERRING + bytes_total / RATE). Afterwards the test checks that premise (the victim
# wrote no file, so all its bytes were reads). Polls have deadlines; nothing waits a fixed time.
#
# Usage: worker_kill_test.sh BIN_DIR FIXTURES_DIR
set -euo pipefail
BIN=$(cd "$1" && pwd)
FIXTURES=$(cd "$2" && pwd)
source "$(dirname "$0")/lib.sh"
WORK=$(mktemp -d)
[ -z "${KEEP_WORK:-}" ] || echo "work directory: $WORK"
trap 'kill_tracked; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT
JOB="kill"
REST=
WORKERS=8
VICTIM=7
RATE=2000   # victim's read pacing, bytes/s: its 36 KiB of tensors take ~18 s
SLACK=5     # seconds the victim must still need when the kill is decided (covers its latency)
fail() {
  echo "FAIL $*"
  if [ -n "$REST" ]; then
    job_events 2>/dev/null | grep -v '"lease_granted"' | tail -25 || true
    job_field '[(w["index"], w["state"], w["activity"], w["bytes_done"], w["bytes_total"])
                for w in j["workers"]]' 2>/dev/null || true
  fi
  echo "0 passed, 1 failed"
  exit 1
}

"$BIN/mxport-coordinator" --grpc-address 127.0.0.1:0 --rest-port 0 --db "$WORK/state.db" \
  --port-file "$WORK/ports.json" --tick-interval 0.5 --heartbeat-ttl 6 --log-level warn &
track_pid $!
wait_port_file "$WORK/ports.json" || fail "the coordinator did not start"
GP=$(port_from "$WORK/ports.json" grpc)
REST=http://127.0.0.1:$(port_from "$WORK/ports.json" rest)

LAYOUT=$FIXTURES/layouts/qwen3_moe_tp2_pp2_ep4
HF=$FIXTURES/models/qwen3_moe/hf
curl -sf -X POST "$REST/v1/jobs" -d "{\"job_id\": \"$JOB\", \"source_path\": \"$LAYOUT\",
  \"hf_config_dir\": \"$HF\", \"output_path\": \"$WORK/out\", \"workers_expected\": $WORKERS,
  \"max_shard_size\": \"102400\"}" >/dev/null || fail "submit"
start_worker() {  # index [worker flags...]
  local index=$1
  shift
  "$BIN/mxport-worker" --coordinator "127.0.0.1:$GP" --job "$JOB" --index "$index" \
    --chunk-bytes 4096 "$@" &
  LAST_PID=$!
  track_pid "$LAST_PID"
}
for w in $(seq 0 $((WORKERS - 1))); do
  [ "$w" -eq "$VICTIM" ] || start_worker "$w"
done
start_worker "$VICTIM" --max-read-rate "$RATE"
VICTIM_PID=$LAST_PID

# Evidence of mid-transfer, from one status snapshot (kept as BEFORE for the journal check):
# READY once a file is committed while the victim is transferring and cannot have finished yet
# (its bytes_total, all reads since it writes no file, need bytes_total / RATE seconds from the
# start of the transfer; SLACK of them must be left); MISSED once that can no longer happen.
WINDOW=
mid_transfer() {
  BEFORE=$(job_json) || return 1
  job_events > "$WORK/events.before" || return 1
  WINDOW=$($PY - "$BEFORE" "$WORK/events.before" "$VICTIM" "$RATE" "$SLACK" <<'PY'
import calendar, json, sys, time
j = json.loads(sys.argv[1])
events = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
victim, rate, slack = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
def seconds(rfc3339):  # "2026-01-02T03:04:05.123456789Z", UTC
    whole, _, frac = rfc3339.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
if j["phase"] in ("SUCCEEDED", "FAILED", "CANCELLED") or int(j["generation"]) > 0:
    print("MISSED: the job is %s in generation %s" % (j["phase"], j["generation"]))
    sys.exit()
starts = [seconds(e["time"]) for e in events
          if e["type"] == "phase" and e["message"].startswith("TRANSFERRING")]
w = [w for w in j.get("workers", []) if int(w["index"]) == victim]
if not starts or not w or w[0]["activity"] != "transferring" or not int(w[0]["bytes_total"]):
    sys.exit()  # not yet
w = w[0]
left = starts[0] + int(w["bytes_total"]) / rate - time.time()
if left < slack:
    print("MISSED: worker %d may finish in %.1f s" % (victim, left))
elif j.get("committed") and w["state"] == "HEALTHY":
    print("READY: killing worker %d (%s, %s bytes to send) at least %.1f s before it can finish; "
          "%d files committed" % (victim, ", ".join(w["coordinates"]), w["bytes_total"], left,
                                  len(j["committed"])))
PY
  ) || return 1
  [ -n "$WINDOW" ]
}
poll_until 60 mid_transfer || fail "the transfer did not start"
echo "$WINDOW"
case "$WINDOW" in READY*) ;; *) fail "no commit while worker $VICTIM was mid-transfer" ;; esac
kill -9 "$VICTIM_PID"
wait "$VICTIM_PID" 2>/dev/null || true
GEN_BEFORE=$(json_get 'j["generation"]' <<<"$BEFORE")
# Inodes of the files committed before the kill: an atomic rewrite would change them.
(cd "$WORK/out" && json_get '"\n".join(c["path"] for c in j["committed"])' <<<"$BEFORE" |
  xargs stat -c '%n %i') > "$WORK/inodes.before"

# The coordinator notices the silence and moves to a new generation.
new_generation() { [ "$(job_field 'j["generation"]' 2>/dev/null || echo 0)" -gt "$GEN_BEFORE" ]; }
poll_until 60 new_generation || fail "no new generation after the worker died"
start_worker "$VICTIM"  # the pod comes back with the same index (unpaced now)
phase=$(wait_job_end 120)
AFTER=$(job_json) || fail "job status"
[ "$phase" = "SUCCEEDED" ] || fail "job ended $phase: $(json_get 'j["message"]' <<<"$AFTER")"

$PY - "$BEFORE" "$AFTER" <<'PY' || fail "journal check"
import json, sys
before, after = json.loads(sys.argv[1]), json.loads(sys.argv[2])
b = {c["path"]: c for c in before["committed"]}
a = {c["path"]: c for c in after["committed"]}
for path, c in b.items():
    for k in ("token", "generation", "content_hash", "committed_at"):
        assert a[path][k] == c[k], (path, k, c[k], a[path][k])
assert int(after["restarts"]) >= 1, after["restarts"]
assert int(after["generation"]) > int(before["generation"]), (before["generation"],
                                                               after["generation"])
later = [p for p, c in a.items() if int(c["generation"]) > int(before["generation"])]
assert later, "nothing was committed by a later generation"
print("%d files committed before the kill kept, %d committed by later generations"
      % (len(b), len(later)))
PY
(cd "$WORK/out" && cut -d' ' -f1 "$WORK/inodes.before" | xargs stat -c '%n %i') \
  > "$WORK/inodes.after"
cmp -s "$WORK/inodes.before" "$WORK/inodes.after" || fail "files committed before the kill were rewritten"
job_events > "$WORK/events.ndjson" || fail "events"
grep -q '"worker_lost"' "$WORK/events.ndjson" || fail "no worker_lost event"
# The kill window assumed the victim wrote no file in generation 0 (all its bytes were reads).
$PY - "$WORK/events.ndjson" "$VICTIM" <<'PY' || fail "the victim held a file lease in generation 0"
import json, sys
victim = " to worker %s " % sys.argv[2]
for e in map(json.loads, open(sys.argv[1])):
    if e["type"] == "lease_granted" and int(e["generation"]) == 0:
        assert not (e["message"].startswith("files/") and victim in e["message"]), e["message"]
PY
"$BIN/mxport" export --source "$LAYOUT" --hf-config "$HF" --output "$WORK/reference" \
  --max-shard-size 100KiB >/dev/null || fail "reference export"
for f in "$WORK"/reference/*; do
  cmp -s "$f" "$WORK/out/$(basename "$f")" || fail "$(basename "$f") differs"
done
[ "$(ls -A "$WORK/reference" | sort)" = "$(ls -A "$WORK/out" | sort)" ] ||
  fail "file sets differ (staging leftovers?): $(ls -A "$WORK/out" | tr "\n" " ")"
echo "1 passed, 0 failed"
