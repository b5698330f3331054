# Llamba reliability on the mini preset: one teacher, Llamba variants (tests/gpu/llamba_copy.py VARIANTS) distilled
# side by side on one GPU, V at a time (five at once ran at a third of one's speed each; two or three fit a call):
#   V="base-s0 w32-s0" CHILD=350 bash tests/gpu/llamba_copy.sh <git sha>
# (GPU kit in .devkit/device; results: $OUT/llamba_copy.json, $OUT/copy.log)
T0=$(date +%s)
bash .devkit/device/setup.sh > $OUT/setup.log 2>&1 || { tail -5 $OUT/setup.log; exit 1; }
export PYTHONPATH=$PWD THINKFAST_GIT_COMMIT=$1 PYTHONUNBUFFERED=1 THINKFAST_REFERENCE=ssd_scan OMP_NUM_THREADS=2
W=$PWD/runs/gpu/copy; rm -rf $W; mkdir -p $W
export TRITON_CACHE_DIR=$W/triton TORCHINDUCTOR_CACHE_DIR=$W/inductor
timeout ${PREP:-160} python3 tests/gpu/llamba_copy.py prepare $W > $OUT/copy.log 2>&1
echo "prepared after $(( $(date +%s)-T0 ))s" | tee -a $OUT/copy.log
V=${V:-"base-s1 base-s2 attn-s1 attn-s2 hidden400-s1"}
for v in $V; do timeout ${CHILD:-350} python3 tests/gpu/llamba_copy.py student $W $v > $W/$v.log 2>&1 & done
(sleep 90; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv >> $OUT/copy.log) &
wait
echo "students done after $(( $(date +%s)-T0 ))s" | tee -a $OUT/copy.log
for v in $V; do echo "== $v"; grep -v Warning $W/$v.log | tail -4; done >> $OUT/copy.log 2>&1
timeout 30 python3 tests/gpu/llamba_copy.py collect $W $OUT/llamba_copy.json >> $OUT/copy.log 2>&1
tail -40 $OUT/copy.log
