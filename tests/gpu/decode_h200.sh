# The decode work re-measured on one H200, as one self-contained device call:
#   bash tests/gpu/decode_h200.sh <git sha>
# (1) the CUDA tests of the fused Mamba step, the sampler and the engine's graph replay (NB=1: also the engine and
#     Mamba-step chapters' notebooks on the GPU);
# (2) `thinkfast bench` of the three 1B models at b64/b256, p512, n512 with bf16 state (mamba-ssm's precision), with
#     mamba-ssm generate(cg=True) as the peer and end-to-end checks, once with the fused step and once without;
# (3) the step profile; (4) the mini preset's training-step speed. Files: $OUT/decode.log and one JSON per part.
# The Triton cache sits where the mini run's script keeps it, so a mini run right after on the same machine reuses it.
sha=$1; T0=$(date +%s)
bash .devkit/device/setup.sh > $OUT/setup.log 2>&1 || { tail -5 $OUT/setup.log; exit 1; }
W=$PWD/runs/gpu; mkdir -p $W
export PYTHONPATH=$PWD THINKFAST_GIT_COMMIT=$sha PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=$W/triton TORCHINDUCTOR_CACHE_DIR=$W/inductor
L=$OUT/decode.log
t() { echo "== $* ($(( $(date +%s)-T0 )) s)" | tee -a $L; }
t tests
timeout ${T_TESTS:-150} python3 -m pytest -q -x tests/test_mamba_step.py tests/test_sampler.py tests/test_engine_cuda.py 2>&1 | tail -5 | tee -a $L
[ "${NB:-0}" = 1 ] && timeout ${T_NB:-300} python3 -m pytest -q tests/test_notebooks.py -m gpu -k "03_generate or 13_mamba" 2>&1 | tail -5 | tee -a $L
CK="llamba-1b:64:512:512 llamba-1b:256:512:512 mambainllama-1b:256:512:512 llama-3.2-1b:256:512:512"
B="python3 -m thinkfast.cli bench --batches 64 256 --prompt-lens 512 --new-tokens 512 --repeats 3 --ssm-state-dtype bfloat16"
t bench fused
timeout ${T_BENCH:-150} $B --models llamba-1b mambainllama-1b llama-3.2-1b --out $OUT/bench_fused.json --peers mamba-ssm --check $CK 2>&1 | grep -v Warning | tee -a $L
t bench chain
THINKFAST_MAMBA_STEP=0 timeout ${T_CHAIN:-70} $B --models llamba-1b mambainllama-1b --out $OUT/bench_chain.json --check llamba-1b:64:512:512 llamba-1b:256:512:512 2>&1 | grep -v Warning | tee -a $L
t profile
timeout ${T_PROF:-90} python3 tests/gpu/step_profile.py $OUT/step_profile.json 2>&1 | tail -25 | tee -a $L
t train speed
timeout ${T_TRAIN:-90} python3 tests/gpu/train_step_speed.py $OUT/train_step.json 2>&1 | tail -25 | tee -a $L
t done
ls -la $OUT
