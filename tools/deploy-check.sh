#!/usr/bin/env bash
# Checks the container images and Kubernetes manifests of deploy/ offline (CI runs it from
# tools/test.sh):
#   1. yamllint on the manifests and tests/deploy;
#   2. kubectl kustomize renders every overlay in deploy/k8s/overlays;
#   3. every rendered object validates against the Kubernetes and JobSet schemas, unknown
#      fields included (tests/deploy/validate.js);
#   4. the manifests agree with the binaries: flags from --help, ports, probes, env, job spec
#      (tests/deploy/check-manifests.js);
#   5. the Dockerfiles lint clean, build with tools/install-deps.sh as CI does, and carry every
#      shared library the binaries load (tests/deploy/check-images.js);
#   6. the checkers' own tests, which feed them broken inputs (node --test tests/deploy/test).
#
#   bash tools/deploy-check.sh [BIN_DIR] [K8S_DIR]    # defaults: build/bin deploy/k8s
#
# BIN_DIR holds the built mxport-coordinator, mxport-worker and mxport. Needs kubectl (it embeds
# kustomize), yamllint, node and npm (tools/install-deps.sh installs the last three); the npm
# packages of tests/deploy are installed with `npm ci` when package-lock.json changes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${1:-build/bin}
K8S_DIR=${2:-deploy/k8s}
TESTS=tests/deploy

die() {
  echo "deploy-check: $*" >&2
  exit 1
}
command -v kubectl >/dev/null ||
  die "kubectl not found: install kubectl 1.27 or newer (kubectl kustomize renders the overlays)"
for tool in yamllint node npm; do
  command -v "$tool" >/dev/null || die "$tool not found: run bash tools/install-deps.sh"
done
for bin in mxport-coordinator mxport-worker mxport; do
  [ -x "$BIN_DIR/$bin" ] || die "$BIN_DIR/$bin not found: build it first (cmake --build build)"
done
BIN_DIR=$(cd "$BIN_DIR" && pwd)
[ -d "$K8S_DIR/overlays" ] || die "$K8S_DIR/overlays not found"

if ! cmp -s "$TESTS/package-lock.json" "$TESTS/node_modules/.mxport-package-lock.json"; then
  echo "deploy-check: npm ci in $TESTS"
  (cd "$TESTS" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$TESTS/package-lock.json" "$TESTS/node_modules/.mxport-package-lock.json"
fi

RENDERED=$(mktemp -d)
trap 'rm -rf "$RENDERED"' EXIT
failed=()
step() {
  local title=$1
  shift
  echo "-- $title"
  "$@" || failed+=("$title")
}
render() {
  local ok=0 dir name
  for dir in "$K8S_DIR"/overlays/*/; do
    name=$(basename "$dir")
    if kubectl kustomize "$dir" >"$RENDERED/$name.yaml"; then
      echo "ok   $name: $(grep -c '^kind: ' "$RENDERED/$name.yaml") objects rendered from $dir"
    else
      echo "FAIL $name: kubectl kustomize $dir"
      rm -f "$RENDERED/$name.yaml"
      ok=1
    fi
  done
  return $ok
}
overlay_args() {
  local file
  for file in "$RENDERED"/*.yaml; do echo "$(basename "$file" .yaml)=$file"; done
}
lint() {
  yamllint -s -c "$TESTS/yamllint.yaml" "$K8S_DIR" "$TESTS" &&
    echo "ok   $(find "$K8S_DIR" "$TESTS" -path '*/node_modules' -prune -o -name '*.yaml' -print |
      wc -l) YAML files"
}

step "yamllint" lint
step "kubectl kustomize ($(kubectl version --client 2>/dev/null | grep -i kustomize || echo kustomize))" render
mapfile -t overlays < <(overlay_args)
step "schema validation" node "$TESTS/validate.js" "$RENDERED"/*.yaml
step "manifests vs binaries in $BIN_DIR" node "$TESTS/check-manifests.js" --bin-dir "$BIN_DIR" "${overlays[@]}"
step "Dockerfiles" node "$TESTS/check-images.js" --bin-dir "$BIN_DIR"
step "checker self-tests" env MXPORT_RENDERED_DIR="$RENDERED" MXPORT_BIN_DIR="$BIN_DIR" \
  node --test --test-reporter=spec "$TESTS/test/"

if [ ${#failed[@]} -gt 0 ]; then
  echo "deploy-check: FAILED: ${failed[*]}"
  exit 1
fi
echo "deploy-check: all checks passed"
