#!/usr/bin/env bash
# Installs every Debian package the build, tests and fixtures need. Idempotent: packages already
# present are skipped, and apt-get runs only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev
  libabsl-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libspdlog-dev libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev libcpp-httplib-dev libcli11-dev zlib1g-dev libssl-dev libxxhash-dev xxhash
  python3-torch python3-numpy python3-grpcio python3-grpc-tools
  chromium
)
# --- deploy checks (tools/deploy-check.sh): yamllint, and node/npm where the machine has none ---
PACKAGES+=(yamllint)
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
# --- end deploy checks ---

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
