# One call on a 4-GPU machine (nvidia-h100-x4): three `mini` reproductions of different difficulty side by side
# (GPUs 0-2) and, on GPU 3, the 3B teacher at the batches the first 3B sweep missed plus the generation
# chapter's GPU cells. Usage, from the repository root on the GPU machine:
#   bash tests/gpu/mini_variants.sh <git sha>      (results as .tgz files under $OUT)
# The GPU kit must sit in .devkit/device (a copy of ../shared/device) and GSM8K in .devkit/data/gsm8k.
bash .devkit/device/setup.sh >/dev/null 2>&1
export PYTHONPATH=$PWD THINKFAST_GIT_COMMIT=$1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True TRITON_CACHE_AUTOTUNING=1
pack() { tar czf $OUT/$1.tgz --exclude='*.pt' --exclude='*.safetensors' --exclude='*.bin' -C /tmp $1 2>/dev/null; }
run_mini() { gpu=$1; name=$2; shift 2; T0=$(date +%s)
  mkdir -p /tmp/$name
  CUDA_VISIBLE_DEVICES=$gpu timeout ${MINI_TIMEOUT:-540} python3 -m thinkfast.cli reproduce --preset mini --out /tmp/$name "$@" > /tmp/$name/run.log 2>&1
  echo "$name rc $? $(( $(date +%s)-T0 ))s" >> $OUT/rc.txt; pack $name; }
# the two outer difficulties train with the pure-PyTorch chunked scan (THINKFAST_REFERENCE=ssd_scan): mamba-ssm's
# scan kernels autotune for minutes per process at first use, which the first GPU tries could not afford
THINKFAST_REFERENCE=ssd_scan run_mini 0 mini-easier --param min_steps=3 max_steps=6 max_start=99 max_delta=99 &
run_mini 1 mini &
THINKFAST_REFERENCE=ssd_scan run_mini 2 mini-harder --param min_steps=5 max_steps=10 max_start=500 max_delta=300 &
(
  mkdir -p /tmp/gpu3
  CUDA_VISIBLE_DEVICES=3 timeout 240 python3 -m thinkfast.cli bench --out /tmp/gpu3/throughput_h100_3b_teacher.json \
      --models llama-3.2-3b --batches 128 256 > /tmp/gpu3/bench.log 2>&1
  echo "bench rc $?" >> $OUT/rc.txt
  (cd nbs && CUDA_VISIBLE_DEVICES=3 timeout 240 python3 -m papermill 03_generate.ipynb /tmp/gpu3/03_generate.gpu.ipynb -p device cuda --cwd . > /tmp/gpu3/nb03.log 2>&1)
  echo "nb03 rc $?" >> $OUT/rc.txt; pack gpu3
) &
wait
cat $OUT/rc.txt
