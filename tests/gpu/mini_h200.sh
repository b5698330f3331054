# The long-reasoning `mini` reproduction on one H200, as one self-contained device call (the machine is fresh and bare):
#   bash tests/gpu/mini_h200.sh <git sha> [run name] [extra reproduce args...]
# The GPU kit must sit in .devkit/device (a copy of the shared device kit). Results come back as $OUT/<name>.tgz
# (files under 2 MB: results.json or summary.json, figures, the executed notebook, training metrics; gzipped samples
# under 8 MB) and $OUT/<name>.log.
sha=$1; name=${2:-mini}; shift 2 2>/dev/null
T0=$(date +%s)
bash .devkit/device/setup.sh > $OUT/setup.log 2>&1 || { tail -5 $OUT/setup.log; exit 1; }
W=$PWD/runs/gpu; mkdir -p $W
[ "${RESUME:-0}" = 1 ] || rm -rf "$W/$name"     # a fresh run unless RESUME=1: nothing left from an earlier call is reused
export PYTHONPATH=$PWD THINKFAST_GIT_COMMIT=$sha PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True PYTHONUNBUFFERED=1
export TRITON_CACHE_DIR=$W/triton TORCHINDUCTOR_CACHE_DIR=$W/inductor
echo "setup $(( $(date +%s)-T0 ))s" | tee $OUT/$name.log
# the reference SSD scan for training and the prompts' prefill (mamba-ssm's scan autotunes for tens of seconds per shape)
THINKFAST_REFERENCE=ssd_scan timeout ${LIMIT:-560} python3 -m thinkfast.cli reproduce --preset mini --out $W/$name "$@" 2>&1 | tee -a $OUT/$name.log
echo "reproduce rc ${PIPESTATUS[0]} after $(( $(date +%s)-T0 ))s" | tee -a $OUT/$name.log
# what each cell printed, from the notebook papermill saved after every cell (also when the limit stopped it)
timeout 20 python3 -c "
import json, re, sys
for c in json.load(open(sys.argv[1]))['cells']:
    for o in c.get('outputs', []):
        if o.get('output_type') == 'stream': print(re.sub(r'[^\\n]*\\r', '', ''.join(o['text'])).rstrip())
" $W/$name/reproduce.ipynb > $OUT/$name.cells.log 2>&1
# summarised from its files either way (a run stopped before results.json: greedy, rates, budget curves; any walk
# run: how the walks begin and go on, `walk`)
timeout 30 python3 tests/gpu/summarise_run.py $W/$name $W/$name/summary.json > $OUT/$name.summary.log 2>&1
cd $W/$name && for f in samples-*.jsonl greedy-*.jsonl; do [ -f $f ] && gzip -c $f > $f.gz; done
find . -type f \( -size -2M -o -name '*.jsonl.gz' \) -size -8M ! -name '*.pt' ! -name '*.tmp*' ! -name '*.lock' ! -name '*.jsonl' > $W/.list
tar czf $OUT/$name.tgz -T $W/.list
ls -la $OUT
