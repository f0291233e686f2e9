#!/usr/bin/env bash
# Kill -9 of one worker process during the transfer: the coordinator declares it LOST (no
# heartbeat within the TTL), starts a new generation, the job completes once the worker comes
# back, the output is byte-identical to the single-process export, and files committed before
# the kill are not rewritten. Usage: worker_kill_test.sh BIN_DIR FIXTURES_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
FIXTURES=$(cd "$2" && pwd)
WORK=$(mktemp -d)
PY=python3
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT
fail() {
  echo "FAIL $*"
  curl -s "$REST/v1/jobs/kill/events" 2>/dev/null | tail -15
  curl -s "$REST/v1/jobs/kill" 2>/dev/null | $PY -c "import json,sys; j=json.load(sys.stdin); print([(w['index'], w['state'], w['activity']) for w in j['workers']])"
  echo "0 passed, 1 failed"
  exit 1
}

"$BIN/mxport-coordinator" --grpc-address 127.0.0.1:0 --rest-port 0 --db "$WORK/state.db" \
  --port-file "$WORK/ports.json" --tick-interval 0.5 --heartbeat-ttl 6 --log-level warn &
pids+=("$!")
for _ in $(seq 300); do [ -s "$WORK/ports.json" ] && break; sleep 0.1; done
[ -s "$WORK/ports.json" ] || fail "the coordinator did not start"
GP=$($PY -c "import json; print(json.load(open('$WORK/ports.json'))['grpc'])")
RP=$($PY -c "import json; print(json.load(open('$WORK/ports.json'))['rest'])")
REST=http://127.0.0.1:$RP
job() { curl -sf "$REST/v1/jobs/kill"; }
field() { $PY -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

LAYOUT=$FIXTURES/layouts/qwen3_moe_tp2_pp2_ep4
HF=$FIXTURES/models/qwen3_moe/hf
curl -sf -X POST "$REST/v1/jobs" -d "{\"job_id\": \"kill\", \"source_path\": \"$LAYOUT\",
  \"hf_config_dir\": \"$HF\", \"output_path\": \"$WORK/out\", \"workers_expected\": 3,
  \"max_shard_size\": \"102400\"}" >/dev/null || fail "submit"
start_worker() {
  "$BIN/mxport-worker" --coordinator 127.0.0.1:$GP --job kill --index "$1" \
    --max-read-rate 40000 --chunk-bytes 4096 &
  WORKER_PID=$!
  pids+=("$WORKER_PID")
}
start_worker 0
start_worker 1
VICTIM=$WORKER_PID
start_worker 2
for _ in $(seq 600); do
  n=$(job | field 'len(j.get("committed", []))' 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 1 ] && break
  sleep 0.1
done
[ "${n:-0}" -ge 1 ] || fail "no file was committed before the kill"
BEFORE=$(job)
kill -9 "$VICTIM"
# The coordinator notices the silence and moves to a new generation.
for _ in $(seq 300); do
  gen=$(job | field 'j["generation"]' 2>/dev/null)
  [ "${gen:-0}" -ge 1 ] && break
  sleep 0.1
done
[ "${gen:-0}" -ge 1 ] || fail "no new generation after the worker died"
start_worker 1  # the pod comes back with the same index
for _ in $(seq 1200); do
  phase=$(job | field 'j["phase"]' 2>/dev/null)
  [ "$phase" = "SUCCEEDED" ] || [ "$phase" = "FAILED" ] && break
  sleep 0.1
done
AFTER=$(job)
[ "$phase" = "SUCCEEDED" ] || fail "job ended $phase: $(echo "$AFTER" | field 'j["message"]')"
$PY - "$BEFORE" "$AFTER" <<'PY' || fail "journal check"
import json, sys
before, after = json.loads(sys.argv[1]), json.loads(sys.argv[2])
b = {c["path"]: c for c in before["committed"]}
a = {c["path"]: c for c in after["committed"]}
for path, c in b.items():
    assert a[path]["token"] == c["token"] and a[path]["generation"] == c["generation"], path
assert int(after["restarts"]) >= 1
print("%d files committed before the kill kept, %d committed after" % (len(b), len(a) - len(b)))
PY
curl -sf "$REST/v1/jobs/kill/events" | grep -q '"worker_lost"' || fail "no worker_lost event"
"$BIN/mxport" export --source "$LAYOUT" --hf-config "$HF" --output "$WORK/reference" \
  --max-shard-size 100KiB >/dev/null || fail "reference export"
for f in "$WORK"/reference/*; do
  cmp -s "$f" "$WORK/out/$(basename "$f")" || fail "$(basename "$f") differs"
done
echo "1 passed, 0 failed"
