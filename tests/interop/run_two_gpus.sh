# The GPU checks of tests/interop/README.md on a machine with two or more GPUs, from a bundle:
#   ../shared/tools/device-bundle.sh .devbundle build/bin/mxport build/bin/mxport-worker \
#     build/bin/mxport-coordinator build/worker/transport/nccl_transport_test \
#     build/bin/nccl_p2p_benchmark
# then, on the GPU machine from the repository root: bash tests/interop/run_two_gpus.sh
# (writes $OUT/x2.txt, or /tmp/out/x2.txt).
export LD_LIBRARY_PATH=$PWD/.devbundle/lib
B=$PWD/.devbundle/bin
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
{
date; nvidia-smi -L
echo "## nccl_transport_test (world size = number of GPUs)"
$B/nccl_transport_test 2>&1 | grep -E "^\[ +(OK|FAILED|PASSED|SKIPPED) " | grep -v "listed below"
python3 tests/fixtures/make_megatron_fixtures.py --out /tmp/fx >/dev/null 2>&1 || echo FIXTURES FAILED
echo "## exports: local-run --transport nccl --workers 2 (worker i on GPU i) vs --transport tcp vs mxport export"
for LM in qwen3_moe_tp2_pp2_ep4:qwen3_moe qwen3_moe_tp2_ep2_etp2:qwen3_moe qwen2_moe_tp2_ep2:qwen2_moe; do
  L=${LM%%:*}; M=${LM##*:}
  $B/mxport local-run --transport nccl --workers 2 --source /tmp/fx/layouts/$L --hf-config /tmp/fx/models/$M/hf --output /tmp/n-$L --max-shard-size 200KB > /tmp/n-$L.log 2>&1; rn=$?
  $B/mxport local-run --transport tcp --workers 2 --source /tmp/fx/layouts/$L --hf-config /tmp/fx/models/$M/hf --output /tmp/t-$L --max-shard-size 200KB > /tmp/t-$L.log 2>&1; rt=$?
  $B/mxport export --source /tmp/fx/layouts/$L --hf-config /tmp/fx/models/$M/hf --output /tmp/r-$L --max-shard-size 200KB > /dev/null 2>&1; re=$?
  if [ $rn$rt$re = 000 ] && diff -r /tmp/n-$L /tmp/t-$L >/dev/null && diff -r /tmp/n-$L /tmp/r-$L >/dev/null; then
    echo "$L: nccl == tcp == mxport export ($(ls /tmp/r-$L | wc -l) files)"
  else echo "$L: MISMATCH or failure (nccl rc $rn, tcp rc $rt, export rc $re)"; tail -c 600 /tmp/n-$L.log; fi
done
L=qwen3_moe_tp2_ep2_modelopt
$B/mxport local-run --transport nccl --workers 2 --quantization nvfp4 --worker-arg=--quant-device=gpu --source /tmp/fx/layouts/$L --hf-config /tmp/fx/models/qwen3_moe/hf --output /tmp/nq --max-shard-size 200KB > /tmp/nq.log 2>&1; rn=$?
$B/mxport export --quantization nvfp4 --source /tmp/fx/layouts/$L --hf-config /tmp/fx/models/qwen3_moe/hf --output /tmp/rq --max-shard-size 200KB >/dev/null 2>&1
if [ $rn = 0 ] && diff -r /tmp/nq /tmp/rq >/dev/null; then echo "$L nvfp4 over nccl, quantized on the GPUs: == mxport export ($(ls /tmp/rq | wc -l) files; $(grep -c 'quantizing on cuda' /tmp/nq.log) workers on cuda)"; else echo "$L nvfp4: MISMATCH rc $rn"; tail -c 600 /tmp/nq.log; fi
echo "## nccl_kill_test.py"
python3 tests/integration/nccl_kill_test.py $B /tmp/fx; echo "rc=$?"
if [ -x $B/nccl_p2p_benchmark ]; then echo "## nccl_p2p_benchmark"; $B/nccl_p2p_benchmark; echo "rc=$?"; fi
} 2>&1 | tee $OUT/x2.txt
