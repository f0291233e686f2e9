# shellcheck shell=bash
# Helpers shared by the integration tests (source it; it sets no shell options):
#   track_pid PID          remember a process this test started; kill_tracked kills them (-9)
#   poll_until SECS CMD... run CMD until it succeeds; return 1 once SECS have passed
#   wait_port_file FILE    wait (30 s) until the coordinator has written its --port-file
#   port_from FILE KEY     the "grpc" or "rest" port from that file
#   json_get EXPR          read JSON on stdin, print the Python expression EXPR of it (as j)
#   job_json               GET $REST/v1/jobs/$JOB (the job, as the API shows it)
#   job_field EXPR         json_get EXPR on the job
#   job_events             GET $REST/v1/jobs/$JOB/events (newline-delimited JSON)
#   job_ended              true once the job's phase is SUCCEEDED, FAILED or CANCELLED
#   wait_job_end SECS      poll until the job ends; prints the final phase
# The REST helpers need REST (http://host:port) and JOB set by the caller. Polling sleeps only
# between checks of a condition; no helper waits a fixed time for something to happen.

PY=${PY:-python3}
TRACKED_PIDS=()

track_pid() { TRACKED_PIDS+=("$1"); }

kill_tracked() {
  local pid
  for pid in "${TRACKED_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

poll_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1  # the polling period
  done
}

wait_port_file() { poll_until 30 test -s "$1"; }

port_from() { $PY -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

json_get() { $PY -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

job_json() { curl -sf "$REST/v1/jobs/$JOB"; }

job_field() {
  local body
  body=$(job_json) || return 1
  json_get "$1" <<<"$body"
}

job_events() { curl -sf "$REST/v1/jobs/$JOB/events"; }

job_ended() {
  local phase
  phase=$(job_field 'j["phase"]' 2>/dev/null) || return 1
  case "$phase" in SUCCEEDED | FAILED | CANCELLED) return 0 ;; *) return 1 ;; esac
}

wait_job_end() {
  poll_until "$1" job_ended || true
  job_field 'j["phase"]' 2>/dev/null || echo UNKNOWN
}
