#!/usr/bin/env bash
# The main job on the bundled sample. Until the distributed export lands, this builds mxport
# and inspects the bundled Megatron-style checkpoint (a model_optim_rng.pt written by real
# PyTorch): its tensors, the saved args, iteration and checkpoint version.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target mxport -j "$(nproc)"
./build/bin/mxport inspect tests/fixtures/torch211/model_optim_rng.pt "$@"
