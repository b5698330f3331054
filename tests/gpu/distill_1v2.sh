# One call on a 2-GPU machine (nvidia-h100-x2): the same distillation on one GPU (2 micro-batches accumulated)
# and on two GPUs (torchrun, one micro-batch each), a random-weight Llama-3.2-1B-shaped teacher with the
# character tokenizer (the GPU machine has no network). Usage: bash tests/gpu/distill_1v2.sh <git sha>
bash .devkit/device/setup.sh >/dev/null 2>&1
export PYTHONPATH=$PWD THINKFAST_GIT_COMMIT=$1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True TRITON_CACHE_AUTOTUNING=1
pack() { tar czf $OUT/$1.tgz --exclude='*.pt' --exclude='*.safetensors' --exclude='*.bin' -C /tmp $1 2>/dev/null; }
python3 tests/gpu/make_teacher.py /tmp/t1b > /tmp/t1b.log 2>&1 || { cat /tmp/t1b.log; exit 1; }
D="--teacher /tmp/t1b --mixer llamba --stages matrix hidden kl --steps matrix=5 hidden=10 kl=200 --data gsm8k:.devkit/data/gsm8k/train.jsonl
   --limit 4000 --bf16 --seq-len 1024 --micro-batch 4 --checkpoint-every 100"
mkdir -p /tmp/d1gpu /tmp/d2gpu
T0=$(date +%s); CUDA_VISIBLE_DEVICES=0 timeout ${D_TIMEOUT:-250} python3 -m thinkfast.cli distill $D --grad-accum 2 --out /tmp/d1gpu > /tmp/d1gpu/run.log 2>&1
echo "d1gpu rc $? $(( $(date +%s)-T0 ))s" >> $OUT/rc.txt; pack d1gpu
T0=$(date +%s); CUDA_VISIBLE_DEVICES=0,1 timeout ${D_TIMEOUT:-250} python3 -m torch.distributed.run --nproc_per_node 2 -m thinkfast.cli distill $D --grad-accum 1 --out /tmp/d2gpu > /tmp/d2gpu/run.log 2>&1
echo "d2gpu rc $? $(( $(date +%s)-T0 ))s" >> $OUT/rc.txt; pack d2gpu
cat $OUT/rc.txt
