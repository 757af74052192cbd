#!/usr/bin/env bash
# Every row of the performance table (README "Performance", bench/README.md), ours and
# Magenta's graph in the same run where the baseline can run. Output: bench/results/<row>.txt
# (the printed table) and .json. Run on a quiet machine: other jobs on the 2 cores skew both
# sides, though the same-run ratios stay meaningful.
#
#   bench/run_all.sh                 # everything (about an hour on 2 cores)
#   bench/run_all.sh train_mel2_512  # one row (names below)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
OUT=bench/results
mkdir -p "$OUT"
QUARTER='enc_rnn_size=[512,512],dec_rnn_size=[256,256],z_size=256'
SERVED=${SERVED_MODEL:-$( (ls -d saved_models/mel_2bar/[0-9]*/ 2>/dev/null || true) | sort -V | tail -1)}

declare -A ROWS=(
  [train_mel2_512]="bench/bench_train.py --config=cat-mel_2bar_small --batch=512 --baseline"
  [train_mel2_64]="bench/bench_train.py --config=cat-mel_2bar_small --batch=64 --steps=30 --baseline"
  [train_hier16_quarter]="bench/bench_train.py --config=hierdec-mel_16bar --batch=64 --hparams=$QUARTER --steps=5 --warmup=2 --baseline"
  [train_hier16_full]="bench/bench_train.py --config=hierdec-mel_16bar --batch=64 --steps=2 --warmup=1"
  [infer_mel2]="bench/bench_infer.py --suite=mel2 --jit_compile --session --bfloat16 --baseline"
  [infer_hier16_quarter]="bench/bench_infer.py --suite=hier16 --hparams=$QUARTER --jit_compile --session --bfloat16 --baseline --runs=10"
  [infer_hier16_full]="bench/bench_infer.py --suite=hier16 --jit_compile --session --baseline --runs=5 --warmup=1"
  [bandwidth]="bench/bench_bandwidth.py"
  [products_mel2_64]="bench/bench_bandwidth.py --config=cat-mel_2bar_small --rows=64"
  [small_products]="bench/bench_small_products.py"
  [convert]="bench/bench_convert.py --baseline"
  [serving]="bench/bench_serving.py --saved_model=$SERVED"
  [serving_tuned]="bench/bench_serving.py --saved_model=$SERVED --server_flags=--tensorflow_intra_op_parallelism=1 --batching_parameters_file=bench/batching_parameters.config"
  [serving_big]="bench/bench_serving.py --untrained_config=cat-mel_2bar_big --batching_parameters_file=bench/batching_parameters.config --paired_calls=30"
  [build]="bench/bench_build.py --make_midi=13359"
)
ORDER=(train_mel2_512 train_mel2_64 train_hier16_quarter train_hier16_full infer_mel2
       infer_hier16_quarter infer_hier16_full bandwidth products_mel2_64 small_products convert serving
       serving_tuned serving_big build)

for row in "${@:-${ORDER[@]}}"; do
  cmd=${ROWS[$row]:?unknown row $row (known: ${ORDER[*]})}
  json=""
  [[ $row != serving* && $row != bandwidth && $row != *products* ]] && json="--json_out=$OUT/$row.json"
  echo "== $row: $PY $cmd" | tee "$OUT/$row.txt"
  # shellcheck disable=SC2086
  $PY $cmd $json 2>&1 | grep -v -E '^(W0000|I0000|WARNING: All log messages)|^E0000 .*Unable to register' \
    | tee -a "$OUT/$row.txt"
  sed -i 's/.*\r//' "$OUT/$row.txt"  # a progress bar's redraws: keep its last state
done
