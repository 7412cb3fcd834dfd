#!/usr/bin/env bash
# GPU smoke test (~5 min): every stage at 448, full width, AMP; then the benchmarks on CUDA.
P=${PYTHON:-python}; O=${OUT:-work_dirs/gpu_smoke}; mkdir -p "$O"; timeout 120 "$P" benchmarks/gpu_smoke.py --device cuda --out "$O/smoke.json"
for b in "bench_cycle_head.py --naive-iters 1" "bench_cyc_step.py --size 448 --widen-factor 1 --pairs 8 --iters 3" "bench_cam.py --size 448 --widen-factor 1 --batch-size 8 --iters 3 --images 4 --amp" "bench_cam_refiner.py" "bench_random_walk.py"; do n=${b%%.py*}; timeout 35 "$P" benchmarks/$b --device cuda --json "$O/$n.json" || echo "$n: exit $?"; done
