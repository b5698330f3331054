# DDP against FSDP on two GPUs (nvidia-h100-x2, or GPUs 0-1 of a bigger host), about 5 minutes: a small random Llama
# (4 layers, width 256, tied embeddings) distilled to Llamba with bf16, gradient checkpointing and accumulation, the
# scan through the PyTorch reference and then through mamba-ssm's kernels (sharded); the losses of the stages per run
# are printed and the logs land in $OUT. Never run yet (written after session 5's GPU budget was spent).
#   bash tests/gpu/fsdp_check.sh <git sha>
# The GPU kit must sit in .devkit/device (a copy of ../shared/device) and GSM8K in .devkit/data/gsm8k.
sha=${1:?give the git sha}
bash .devkit/device/setup.sh >/dev/null 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 THINKFAST_GIT_COMMIT=$sha
W=/tmp/fsdpcheck; mkdir -p $W
python3 - $W/teacher <<'PY'
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
from thinkfast.generate import char_tokenizer
tok = char_tokenizer(); torch.manual_seed(0)
LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=8,
                             num_key_value_heads=4, tie_word_embeddings=True)).save_pretrained(sys.argv[1])
tok.save_pretrained(sys.argv[1])
PY
A="--teacher $W/teacher --mixer llamba --stages matrix hidden kl --steps matrix=4 hidden=4 kl=8 --data gsm8k:.devkit/data/gsm8k/train.jsonl
   --limit 200 --dtype bfloat16 --seq-len 512 --micro-batch 2 --grad-accum 2 --checkpoint-every 3 --gradient-checkpointing"
R="timeout 200 python3 -m torch.distributed.run --nproc_per_node 2 -m thinkfast.cli distill $A"
CUDA_VISIBLE_DEVICES=0,1 THINKFAST_REFERENCE=ssd_scan $R --out $W/ddp > $OUT/ddp.log 2>&1; echo "ddp rc $?"
CUDA_VISIBLE_DEVICES=0,1 THINKFAST_REFERENCE=ssd_scan $R --out $W/fsdp --fsdp > $OUT/fsdp.log 2>&1; echo "fsdp rc $?"
CUDA_VISIBLE_DEVICES=0,1 $R --out $W/fsdp-kernels --fsdp > $OUT/fsdp-kernels.log 2>&1; echo "fsdp-kernels rc $?"
for n in ddp fsdp fsdp-kernels; do for s in matrix hidden kl; do
  python3 -c "import json, sys; print('$n $s', [round(json.loads(l)['loss'], 5) for l in open('$W/$n/$s/metrics.jsonl')])" 2>/dev/null || echo "$n $s: none"
done; done | tee $OUT/losses.txt
