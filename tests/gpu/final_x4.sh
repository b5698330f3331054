# GPU jobs for one call on a 4-GPU machine (nvidia-h100-x4), each self-contained (the machine goes back ~30 s after a
# call, so nothing carries over between calls); results come back as one .tgz per job under $OUT.
#   bash tests/gpu/final_x4.sh 1 <git sha>     GPU0 the mini reproduction (preset), GPU1 mini at the earlier difficulty
#                                              (the calibration run), about 460 s each; GPUs 2-3: the distillation on one
#                                              GPU, then on two (torchrun), 240 s each, with Llamba-1B bf16-state
#                                              throughput and mamba-ssm's generate on GPU 3 meanwhile
#   KL_STEPS=300 CKPT_EVERY=150 bash tests/gpu/final_x4.sh 3 <git sha> S   the 1- and 2-GPU distillations side by side for S s,
#                                              packed every minute (give the device call S + 90 s: setup and the
#                                              CPU-built teacher take about 50 s, and packing comes after; a checkpoint
#                                              of the 1B student held training 24-37 s before the background writer: CKPT_EVERY;
#                                              REPEAT=1 adds a second 1-GPU run on GPU 3, the same settings again)
#                                              results/distill_1v2/ holds two phase-3 calls (see its README); with REPEAT=1
#                                              give S = 510 (a 600 s call): at 450 s the 1-GPU runs lost their last checkpoint;
#                                              FSDP=1: the 2-GPU run shards the student (--fsdp) instead of DDP, folder d2fsdp
# (a phase 2, resuming phase 1's runs on the same warm machine, was dropped: a second call never found the machine.)
# The GPU kit must sit in .devkit/device (a copy of ../shared/device) and GSM8K in .devkit/data/gsm8k.
phase=$1; sha=$2; budget=${3:-420}
case $phase in 1|3) ;; *) echo "phase $phase: allowed 1 or 3" >&2; exit 2;; esac
bash .devkit/device/setup.sh >/dev/null 2>&1
W=$PWD/runs/gpu; mkdir -p $W
export PYTHONPATH=$PWD THINKFAST_GIT_COMMIT=$sha PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True TRITON_CACHE_AUTOTUNING=1
export TRITON_CACHE_DIR=$W/triton TORCHINDUCTOR_CACHE_DIR=$W/inductor
# only files under 2 MB travel back (metrics, logs, results; not checkpoints, temporaries or the data cache: the device
# returns files of at most 16 MiB, and a 1-GPU pack with a stray large file once never came back)
pack() { [ -d $W/$1 ] || return 0; (cd $W && find $1 -type f -size -2M ! -name '*.pt' ! -name '*.tmp*' > $W/.$1.list &&
         tar czf $OUT/.$1.tgz -T $W/.$1.list 2>/dev/null && mv $OUT/.$1.tgz $OUT/$1.tgz); }
run_mini() { gpu=$1; name=$2; t=$3; shift 3; T0=$(date +%s); mkdir -p $W/$name
  CUDA_VISIBLE_DEVICES=$gpu THINKFAST_REFERENCE=ssd_scan timeout $t python3 -m thinkfast.cli reproduce --preset mini --out $W/$name "$@" \
    > $W/$name/run.phase$phase.log 2>&1
  echo "phase $phase $name rc $? $(( $(date +%s)-T0 ))s" | tee -a $W/$name/calls.txt >> $OUT/rc.txt; pack $name; }
D="--teacher $W/t1b --mixer llamba --stages matrix hidden kl --steps matrix=5 hidden=10 kl=${KL_STEPS:-200} --data gsm8k:.devkit/data/gsm8k/train.jsonl
   --limit 4000 --dtype bfloat16 --seq-len 1024 --micro-batch 4 --checkpoint-every ${CKPT_EVERY:-25}"
d1() { n=${3:-d1gpu}; T0=$(date +%s); mkdir -p $W/$n; CUDA_VISIBLE_DEVICES=$1 THINKFAST_REFERENCE=ssd_scan timeout $2 python3 -m thinkfast.cli distill $D \
         --grad-accum 2 --out $W/$n >> $W/$n/run.log 2>&1; echo "phase $phase $n rc $? $(( $(date +%s)-T0 ))s" >> $OUT/rc.txt; pack $n; }
d2() { n=${3:-d2gpu}; T0=$(date +%s); mkdir -p $W/$n; CUDA_VISIBLE_DEVICES=$1 THINKFAST_REFERENCE=ssd_scan timeout $2 python3 -m torch.distributed.run \
         --nproc_per_node 2 -m thinkfast.cli distill $D --grad-accum 1 $4 --out $W/$n >> $W/$n/run.log 2>&1
       echo "phase $phase $n rc $? $(( $(date +%s)-T0 ))s" >> $OUT/rc.txt; pack $n; }
if [ $phase = 1 ]; then
  run_mini 0 mini 555 &
  run_mini 1 mini-calibration 555 --param min_steps=4 max_steps=8 max_start=200 max_delta=150 &
  python3 tests/gpu/make_teacher.py $W/t1b > $W/t1b.log 2>&1 || { cat $W/t1b.log; }
  mkdir -p $W/bf16state
  (CUDA_VISIBLE_DEVICES=3 timeout 200 python3 -m thinkfast.cli bench --out $W/bf16state/throughput_h100_bf16state.json \
     --models llamba-1b --ssm-state-dtype bfloat16 --batches 64 256 --prompt-lens 512 --new-tokens 512 \
     --check llamba-1b:256:512:512 > $W/bf16state/bench.log 2>&1
   CUDA_VISIBLE_DEVICES=3 timeout 60 python3 -c "import json; from thinkfast.bench import peer_mamba_ssm; print(json.dumps([peer_mamba_ssm('llamba-1b', b, 512, 512, 'cuda') for b in (64, 256)]))" \
     > $W/bf16state/peer_mamba.json 2>$W/bf16state/peer.log; echo "bf16state rc $?" >> $OUT/rc.txt; pack bf16state) & B=$!
  d1 2 240; wait $B; d2 2,3 240
elif [ $phase = 3 ]; then      # the 1- and 2-GPU distillations side by side, longer
  python3 tests/gpu/make_teacher.py $W/t1b > $W/t1b.log 2>&1 || { cat $W/t1b.log; }
  (while sleep 60; do pack d1gpu; pack d2gpu; pack d1gpu-b; pack d2fsdp; done) & P=$!  # what has finished comes back if the call is cut
  d1 0 $budget & A=$!
  if [ -n "$FSDP" ]; then d2 1,2 $budget d2fsdp --fsdp & C=$!   # the 2-GPU run with the student sharded instead of DDP
  else d2 1,2 $budget & C=$!; fi
  if [ -n "$REPEAT" ]; then d1 3 $budget d1gpu-b & E=$!; fi   # a second 1-GPU run: the run-to-run spread of the same settings
  wait $A $C $E; kill $P 2>/dev/null
fi
wait
(cd $W && du -ak d1gpu d2gpu d1gpu-b d2fsdp 2>/dev/null | sort -n | tail -8) > $OUT/du.txt
cat $OUT/rc.txt
