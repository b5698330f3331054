# One call on a 2-GPU machine (nvidia-h100-x2): the same distillation on one GPU (2 micro-batches accumulated)
# and on two GPUs (torchrun, one micro-batch each), a random-weight Llama-3.2-1B-shaped teacher with the
# character tokenizer (the GPU machine has no network). Usage: bash tests/gpu/distill_1v2.sh <git sha>
bash .devkit/device/setup.sh >/dev/null 2>&1
export PYTHONPATH=$PWD THINKFAST_GIT_COMMIT=$1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True TRITON_CACHE_AUTOTUNING=1
pack() { tar czf $OUT/$1.tgz --exclude='*.pt' --exclude='*.safetensors' --exclude='*.bin' -C /tmp $1 2>/dev/null; }
python3 tests/gpu/make_teacher.py /tmp/t1b > /tmp/t1b.log 2>&1 || { cat /tmp/t1b.log; exit 1; }
D="--teacher /tmp/t1b --mixer llamba --stages matrix hidden kl --steps matrix=5 hidden=10 kl=200 --data gsm8k:.devkit/data/gsm8k/train.jsonl
   --limit 4000 --bf16 --seq-len 1024 --micro-batch 4 --checkpoint-every 100"
mkdir -p /tmp/d1gpu /tmp/d2gpu /tmp/bf16state
# while GPU 1 waits for the two-process run: Llamba-1B with mamba-ssm's bf16 SSM state against mamba-ssm itself
(CUDA_VISIBLE_DEVICES=1 timeout 240 python3 -m thinkfast.cli bench --out /tmp/bf16state/throughput_h100_bf16state.json \
   --models llamba-1b --ssm-state-dtype bfloat16 --batches 64 256 --prompt-lens 512 --new-tokens 512 \
   --check llamba-1b:256:512:512 > /tmp/bf16state/bench.log 2>&1
 CUDA_VISIBLE_DEVICES=1 timeout 120 python3 -c "import json; from thinkfast.bench import peer_mamba_ssm; print(json.dumps([peer_mamba_ssm('llamba-1b', b, 512, 512, 'cuda') for b in (64, 256)]))" \
   > /tmp/bf16state/peer_mamba.json 2>/tmp/bf16state/peer.log; echo "bf16state rc $?" >> $OUT/rc.txt; pack bf16state) &
T0=$(date +%s); CUDA_VISIBLE_DEVICES=0 timeout ${D_TIMEOUT:-250} python3 -m thinkfast.cli distill $D --grad-accum 2 --out /tmp/d1gpu > /tmp/d1gpu/run.log 2>&1
echo "d1gpu rc $? $(( $(date +%s)-T0 ))s" >> $OUT/rc.txt; pack d1gpu
wait
T0=$(date +%s); CUDA_VISIBLE_DEVICES=0,1 timeout ${D_TIMEOUT:-250} python3 -m torch.distributed.run --nproc_per_node 2 -m thinkfast.cli distill $D --grad-accum 1 --out /tmp/d2gpu > /tmp/d2gpu/run.log 2>&1
echo "d2gpu rc $? $(( $(date +%s)-T0 ))s" >> $OUT/rc.txt; pack d2gpu
cat $OUT/rc.txt
