#!/bin/bash
# The GPU check for a machine with an NVIDIA GPU, the CUDA toolkit and PyTorch but no internet and no
# Debian packages (the device tool's H100/H200): configures the headless stack (no Qt, CUDA on, Release)
# into build/gpu with the dependencies carried in .carry/ (made by tests/gpu/carry.sh), builds it, runs
# `ctest -L gpu` and the GPU benchmarks, writes full logs to the output folder ($1, else $OUT, else
# ./gpu-out) and prints a summary table last. Exit status 0 only when every step passed.
#   usage: bash tests/gpu/run.sh [OUTDIR]
# Environment: HEARTH_GPU_BUDGET (seconds for the whole script, default 540), HEARTH_GPU_PARTS (which
# parts run, in this order of priority, default all: "tests infer train sanitizer torch"; a part the
# budget does not reach gets "not started" rows, and a second call on the still-warm machine, which
# keeps build/gpu, can run just those), HEARTH_NVML_CHECK_SECONDS (the energy check's
# window, default 30 here), HEARTH_TELEMETRY_GPU_SECONDS (app-telemetry-gpu's idle window, default 10
# here), HEARTH_GPU_TARGETS (build only these targets instead of every GPU target), HEARTH_GPU_BUILD_ALL=1
# (also build the rest of the tree after the GPU targets; off by default: it costs minutes, checks nothing
# on the GPU, and CI builds it anyway).
#
# Non-obvious choice: every step's timeout is cut from one overall budget, the build's keeping back time
# for the GPU checks and every later step 20 s for the summary, so the parts run in priority order and
# the script always reaches its summary inside the device tool's ten minutes; and the build keeps going
# past errors (-k), so one broken file elsewhere in the tree does not hide the GPU results.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-${OUT:-$repo/gpu-out}}
mkdir -p "$out" && out=$(cd "$out" && pwd)
build=$repo/build/gpu
carry=$repo/.carry/root
budget=${HEARTH_GPU_BUDGET:-540}
t_start=$(date +%s)
status=0
rows=()  # "name|result|figure"

elapsed() { echo $(( $(date +%s) - t_start )); }
remaining() { echo $(( budget - $(elapsed) )); }
# step_timeout MAX RESERVE: MAX seconds, or less so that RESERVE seconds are left for later steps.
step_timeout() { local r=$(( $(remaining) - $2 )); (( r > $1 )) && r=$1; (( r < 5 )) && r=5; echo $r; }
log() { echo "[run.sh +$(elapsed)s] $*" | tee -a "$out/run.log"; }
row() { rows+=("$1|$2|$3"); [[ $2 == ok || $2 == Passed || $2 == Skipped ]] || status=1; }
parts=" ${HEARTH_GPU_PARTS:-tests infer train sanitizer torch} "
part_on() { [[ $parts == *" $1 "* ]]; }

: >"$out/run.log"
touch "$out/run.log.start"  # JSON files newer than this are this run's
log "repo $repo, output $out, budget ${budget}s"

# ---- environment: the carried Debian packages (see tests/gpu/carry.sh and shared/tools/carry-debs) ----
cmake_extra=()
if [ -d "$carry/usr" ]; then
  lib=$carry/usr/lib/x86_64-linux-gnu
  # Links that carry.sh made, in case a copy dropped them.
  [ -e "$lib/libopenblas.so" ] || ln -sfn openblas-pthread/libopenblas.so "$lib/libopenblas.so"
  [ -e "$lib/libopenblas.so.0" ] || ln -sfn openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
  broken=$(find "$carry" -xtype l | wc -l)
  (( broken == 0 )) || log "WARNING: $broken dangling links under .carry (did the symlinks travel?)"
  export CMAKE_PREFIX_PATH=$carry/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export PKG_CONFIG_PATH=$lib/pkgconfig:$carry/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export PKG_CONFIG_SYSROOT_DIR=$carry  # the .pc files say prefix=/usr
  export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export CPATH=$carry/usr/include${CPATH:+:$CPATH}
  export PKG_CONFIG=$carry/usr/bin/pkgconf
  cmake_extra+=(-DPKG_CONFIG_EXECUTABLE="$PKG_CONFIG")
  log "using carried packages in $carry ($(du -sh "$repo/.carry" | cut -f1))"
else
  log "no .carry/root: relying on the system's packages (run tests/gpu/carry.sh where there is internet)"
fi
[ -d "$repo/.carry/testdata" ] && cmake_extra+=(-DHEARTH_TESTDATA="$repo/.carry/testdata")
# The python that has PyTorch (the GPU machine's plain python3 does; here /usr/bin/python3 does).
py=""
for c in "$(command -v python3 || true)" /usr/bin/python3; do
  [ -x "$c" ] && "$c" -c 'import torch' 2>/dev/null && { py=$c; break; }
done
[ -n "$py" ] || py=$(command -v python3 || true)
[ -n "$py" ] && cmake_extra+=(-DHEARTH_PYTHON="$py")
[ -x /usr/local/cuda/bin/nvcc ] && export PATH=/usr/local/cuda/bin:$PATH
# Build only for the GPU that is here (sm_90 on H100/H200): half the nvcc time of CI's 80;90.
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
[[ $cc =~ ^[0-9]+$ ]] && cmake_extra+=(-DCMAKE_CUDA_ARCHITECTURES="$cc")

{
  echo "== date: $(date -u)"; echo "== uname: $(uname -a)"; echo "== nproc: $(nproc)"
  echo "== nvidia-smi:"; nvidia-smi 2>&1 | head -20
  echo "== nvcc:"; nvcc --version 2>&1 | tail -2
  echo "== c++:"; c++ --version 2>&1 | head -1
  echo "== cmake: $(cmake --version 2>&1 | head -1); ninja: $(ninja --version 2>&1)"
  echo "== python3: $py $($py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -1)"
  echo "== git: $(git -C "$repo" log -1 --format='%h %s' 2>&1)"
} >>"$out/run.log" 2>&1

# ---- configure and build ----
if command -v ninja >/dev/null; then gen=(-G Ninja); keep_going=(-k 0); else gen=(-G "Unix Makefiles"); keep_going=(-k); fi
t=$(step_timeout 120 300)
log "configure (${gen[1]}, timeout ${t}s)"
t0=$(date +%s)
if timeout "$t" cmake -S "$repo" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DHEARTH_GUI=OFF \
     -DHEARTH_CUDA=ON -DHEARTH_TESTS=ON "${cmake_extra[@]}" >"$out/build.log" 2>&1; then
  row configure ok "$(( $(date +%s) - t0 )) s"
else
  row configure FAILED "see build.log"
  tail -30 "$out/build.log"
fi

if [ -f "$build/CMakeCache.txt" ]; then
  # First the GPU targets (by convention their names hold "gpu" or "cuda"; not the CPU emulations
  # "*-emulated", which CI runs), so that a build that runs
  # out of time still leaves the GPU checks to run; then everything else.
  if [ "${gen[1]}" = Ninja ]; then
    gpu_targets=$(ninja -C "$build" -t targets all 2>/dev/null | sed -nE 's/^([A-Za-z0-9_.-]+): .*/\1/p' | grep -E 'gpu|cuda' | grep -v -E 'emulated|^cmake_object_order|\.a$' | sort -u)
  else
    gpu_targets=$(cmake --build "$build" --target help 2>/dev/null | sed -nE 's/^\.\.\. ([A-Za-z0-9_.-]+).*/\1/p' | grep -E 'gpu|cuda' | grep -v -E 'emulated|^cmake_object_order|\.a$' | sort -u)
  fi
  read -ra targets <<<"${HEARTH_GPU_TARGETS:-$(echo $gpu_targets)}"
  t=$(step_timeout 300 150)
  log "build GPU targets (${targets[*]}), $(nproc) jobs, timeout ${t}s"
  t0=$(date +%s)
  timeout "$t" cmake --build "$build" --parallel "$(nproc)" --target "${targets[@]}" -- "${keep_going[@]}" >>"$out/build.log" 2>&1
  rc=$?
  if (( rc == 0 )); then row "build GPU targets" ok "$(( $(date +%s) - t0 )) s, ${#targets[@]} targets"
  elif (( rc == 124 )); then row "build GPU targets" TIMEOUT "after ${t} s"
  else row "build GPU targets" FAILED "see build.log"; grep -E '^FAILED:|error:' "$out/build.log" | head -20; fi
  if [ -z "${HEARTH_GPU_TARGETS:-}" ] && [ "${HEARTH_GPU_BUILD_ALL:-0}" = 1 ]; then
    t=$(step_timeout 360 150)
    log "build everything else, timeout ${t}s"
    t0=$(date +%s)
    skip=$(wc -l <"$out/build.log")
    timeout "$t" cmake --build "$build" --parallel "$(nproc)" -- "${keep_going[@]}" >>"$out/build.log" 2>&1
    rc=$?
    errors=$(tail -n +$((skip + 1)) "$out/build.log" | grep -c -E '^FAILED:|\*\*\* \[')
    if (( rc == 0 )); then row "build all" ok "$(( $(date +%s) - t0 )) s"
    elif (( rc == 124 )); then row "build all" TIMEOUT "after ${t} s (GPU targets came first)"
    else row "build all" FAILED "$errors failed steps, see build.log"; grep -E '^FAILED:|error:' "$out/build.log" | head -20; fi
  fi

  # ---- gpu-labelled tests ----
  export HEARTH_TELEMETRY_GPU_SECONDS=${HEARTH_TELEMETRY_GPU_SECONDS:-10}
  export HEARTH_NVML_CHECK_SECONDS=${HEARTH_NVML_CHECK_SECONDS:-30}
  if part_on tests; then
  # A gtest executable that failed to build shows up only as <target>_NOT_BUILT, without labels: name
  # those of GPU targets (their names say gpu) as failures instead of letting -L gpu drop them.
  while read -r nb; do
    row "$nb" FAILED "test executable not built"
  done < <(cd "$build" && ctest -N 2>/dev/null | sed -nE 's/^ *Test +#[0-9]+: ([^ ]*(gpu|cuda)[^ ]*_NOT_BUILT)$/\1/p' | sort -u)
  t=$(step_timeout 300 20)
  log "ctest -L gpu (timeout ${t}s)"
  (cd "$build" && timeout "$t" ctest -L gpu --output-on-failure -V --timeout 240 \
     --output-junit "$build/ctest-gpu.xml") >"$out/ctest-gpu.log" 2>&1
  rc=$?
  (( rc == 124 )) && row "ctest -L gpu" TIMEOUT "after ${t} s"
  ntests=0
  # Lines like "1/2 Test #1: Suite.Name ....   Passed   64.31 sec" (or "***Failed", "***Skipped").
  while IFS='|' read -r num name result secs; do
    ntests=$((ntests + 1))
    figure=$(grep -E "^$num: RESULT " "$out/ctest-gpu.log" | sed -E "s/^$num: RESULT //" | paste -sd ';' -)
    row "$name" "$result" "${figure:-$secs s}"
  done < <(sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#([0-9]+): ([^ ]+) \.+[ *]*([A-Za-z][A-Za-z ]*[a-z]) +([0-9.]+) sec.*/\1|\2|\3|\4/p' \
             "$out/ctest-gpu.log")
  (( ntests > 0 )) || row "ctest -L gpu" FAILED "no gpu tests ran (rc $rc), see ctest-gpu.log"
  log "ctest: $ntests gpu tests, rc $rc"
  fi

  # ---- GPU benchmarks (tests/bench programs that need a GPU); their JSON files go to $build and are
  # appended to bench.log at the end (the device tool returns at most 8 files from the output folder) ----
  : >"$out/bench.log"
  if part_on infer; then
  gpu_benches=(bench-gpu)  # add new GPU benchmark programs here (each takes --json FILE, prints RESULT lines)
  for b in "${gpu_benches[@]}"; do
    if [ ! -x "$build/$b" ]; then row "$b" FAILED "not built"; continue; fi
    t=$(step_timeout 60 20)
    log "$b (timeout ${t}s)"
    echo "== $b" >>"$out/bench.log"
    if timeout "$t" "$build/$b" --json "$build/$b.json" >>"$out/bench.log" 2>&1; then
      while read -r _ name value unit; do row "$b $name" ok "$value $unit"; done \
        < <(sed -n '/^== '"$b"'$/,$p' "$out/bench.log" | grep '^RESULT ')
    else
      row "$b" FAILED "see bench.log"
    fi
  done

  # ---- inference on the GPU: the TinyLlama-shaped 1.1B model (22 layers, random weights) in BF16 and
  # the Q4_K_M mix, pp512 and tg128 against this GPU's copy bandwidth and BF16 GEMM rate (issue 6's
  # targets). Writing the two models takes about a minute of CPU; they are cached in $build/bench-models.
  if [ -x "$build/bench-gpu-infer" ]; then
    t=$(step_timeout 200 20)
    log "bench-gpu-infer (timeout ${t}s)"
    echo "== bench-gpu-infer" >>"$out/bench.log"
    if timeout "$t" "$build/bench-gpu-infer" --device cuda --layers 22 --types BF16,Q4_K_M -p 512 -n 128 \
         --dir "$build/bench-models" --json "$build/bench-gpu-infer.json" >>"$out/bench.log" 2>&1; then
      while read -r _ name value unit; do row "bench-gpu-infer $name" ok "$value $unit"; done \
        < <(sed -n '/^== bench-gpu-infer$/,$p' "$out/bench.log" | grep '^RESULT ')
    else
      rc=$?
      row "bench-gpu-infer" "$( (( rc == 124 )) && echo TIMEOUT || echo FAILED)" "see bench.log"
    fi
  else
    row "bench-gpu-infer" FAILED "not built"
  fi
  fi  # infer

  # ---- training on the GPU (issue 6): Hearth's DeviceTrainer (bench-gpu-train) against transformers +
  # PEFT (tests/bench/peft_train_bench.py; a plain-torch network, labelled so, where they are missing)
  # with the same llama shape (24 x 1024, 16 heads, ff 2816, vocab 32000: 374 M parameters), batch 8 x
  # seq 512, BF16 mixed precision, random init. Targets: full fine-tuning MFU >= 40 % of the cuBLAS BF16
  # GEMM rate measured by bench-gpu-train, and LoRA tokens/s >= 1.5x the reference's. The target rows say
  # met / missed / n/a and leave the exit status alone (they are figures, not checks); a program that
  # fails is a FAILED row. About 90 s when it runs; the LoRA base (a 750 MB BF16 GGUF) is cached in
  # $build/bench-models; the JSON files go to $build (the output folder returns at most 8 files).
  # A training-only run: HEARTH_GPU_TARGETS=bench-gpu-train bash tests/gpu/run.sh
  train_shape=(--layers 24 --embd 1024 --heads 16 --ff 2816 --vocab 32000 --batch 8 --seq 512
               --warmup 2 --steps 8 --min-seconds 2)
  # train_section NAME: the lines of bench.log under the header "== NAME", up to the next header.
  train_section() { awk -v h="== $1" '$0 == h {on = 1; next} /^== / {on = 0} on' "$out/bench.log"; }
  # train_value NAME KEY: the number on the line "RESULT KEY <number> ..." of section NAME.
  train_value() { train_section "$1" | sed -nE "s/^RESULT $2 ([0-9.eE+-]+)( .*)?$/\1/p" | tail -1; }
  # train_rows NAME: a summary row per RESULT line of section NAME (gemm_bf16 is bench-gpu's row already).
  train_rows() {
    local _r key value unit
    while read -r _r key value unit; do
      [ "$key" = gemm_bf16 ] || row "${1%% *} $key" ok "$value $unit"
    done < <(train_section "$1" | grep '^RESULT ')
  }
  # train_why NAME PROGRAM: the program's last one-line message ("PROGRAM: ...") in section NAME.
  train_why() { train_section "$1" | sed -nE "s/^$2: //p" | tail -1 | cut -c1-120; }
  # train_run NAME MAX RESERVE COMMAND...: runs COMMAND into bench.log under "== NAME" with
  # step_timeout MAX RESERVE; returns its status, or 125 (and a TIMEOUT row) when under 30 s are left.
  train_run() {
    local name=$1 t
    t=$(step_timeout "$2" "$3"); shift 3
    if (( t < 30 )); then row "$name" TIMEOUT "not started: $(remaining) s of the budget left"; return 125; fi
    log "$name (timeout ${t}s)"
    echo "== $name" >>"$out/bench.log"
    timeout "$t" "$@" >>"$out/bench.log" 2>&1
    local rc=$?
    (( rc == 124 )) && row "$name" TIMEOUT "after ${t} s"
    return $rc
  }
  # ge X LIMIT: "met" when X >= LIMIT, else "missed" (floats).
  ge() { awk -v x="$1" -v l="$2" 'BEGIN { print ((x + 0 >= l + 0) ? "met" : "missed") }'; }

  if part_on train; then
  for m in full lora; do
    name="bench-gpu-train $m"
    if [ ! -x "$build/bench-gpu-train" ]; then row "$name" FAILED "not built"; continue; fi
    if [ $m = full ]; then max=60; else max=80; fi
    train_run "$name" $max 20 "$build/bench-gpu-train" --method $m "${train_shape[@]}" \
      --dir "$build/bench-models" --json "$build/bench-gpu-train-$m.json"
    rc=$?
    if (( rc == 0 )); then train_rows "$name"
    elif (( rc != 124 && rc != 125 )); then row "$name" FAILED "$(train_why "$name" bench-gpu-train)"; fi
  done
  if [ -n "$py" ]; then
    train_run peft_train_bench 100 20 env PYTHONUNBUFFERED=1 "$py" "$repo/tests/bench/peft_train_bench.py" \
      --method both "${train_shape[@]}" --json "$build/peft-train-bench.json"
    rc=$?
    train_rows peft_train_bench  # what it measured, also when one method failed
    (( rc != 0 && rc != 124 && rc != 125 )) && row peft_train_bench FAILED "$(train_why peft_train_bench peft_train_bench)"
  else
    row peft_train_bench FAILED "no python with torch"
  fi
  # The targets (rows that do not change the exit status).
  mfu=$(train_value "bench-gpu-train full" full_mfu)
  if [ -n "$mfu" ]; then rows+=("target: full fine-tuning MFU >= 40 %|$(ge "$mfu" 40)|$mfu % of the measured BF16 GEMM rate")
  else rows+=("target: full fine-tuning MFU >= 40 %|n/a|no figure (bench-gpu-train full did not finish)"); fi
  ref_impl=$(train_section peft_train_bench | sed -nE 's/^RESULT peft_lora_tokens_per_s [^[]*\[(.*)\]$/\1/p' | tail -1)
  for m in lora full; do
    h=$(train_value "bench-gpu-train $m" ${m}_tokens_per_s); r=$(train_value peft_train_bench peft_${m}_tokens_per_s)
    if [ -n "$h" ] && [ -n "$r" ]; then
      ratio=$(awk -v a="$h" -v b="$r" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
      figure="${ratio}x: Hearth $h vs $r tok/s [$(train_section peft_train_bench | sed -nE "s/^RESULT peft_${m}_tokens_per_s [^[]*\[(.*)\]\$/\1/p" | tail -1)]"
    else
      ratio="" figure="no figure (Hearth: ${h:-none}, reference: ${r:-none})"
    fi
    if [ $m = lora ]; then
      rows+=("target: LoRA tokens/s >= 1.5x transformers+PEFT|$([ -n "$ratio" ] && ge "$ratio" 1.5 || echo n/a)|$figure")
      [[ -z $ref_impl || $ref_impl == transformers* ]] || rows+=("  (the reference above is not PEFT)|n/a|${ref_impl:0:90}")
    else
      rows+=("full fine-tuning tokens/s, Hearth / reference|info|$figure")
    fi
  done
  fi  # train

  # ---- compute-sanitizer on the kernel tests (issue 6): memcheck and racecheck (shared memory) ----
  # HEARTH_SANITIZER_QUICK makes the kernel tests run their small shapes (the sanitizers slow every
  # kernel down by 10-100x); a row passes when the tool reports "ERROR SUMMARY: 0 errors" (or 0 hazards).
  if part_on sanitizer; then
  san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  : >"$out/sanitizer.log"  # every run in one file: the device tool returns at most 8 files
  for run in "memcheck gpu-test-cuda-kernels" "racecheck gpu-test-cuda-kernels" \
             "memcheck gpu-test-cuda-train-kernels" "racecheck gpu-test-cuda-train-kernels" \
             "memcheck gpu-test-cuda-train-attention"; do
    read -r tool test <<<"$run"
    kbin=$build/tests/$test
    if [ ! -x "$san" ] || [ ! -x "$kbin" ]; then row "compute-sanitizer $tool $test" FAILED "no compute-sanitizer or test binary"; continue; fi
    t=$(step_timeout 60 20)
    if (( t < 15 )); then row "compute-sanitizer $tool $test" TIMEOUT "not started: $(remaining) s of the budget left"; continue; fi
    log "compute-sanitizer --tool $tool $test (timeout ${t}s)"
    slog=$build/sanitizer-$tool-$test.log
    HEARTH_SANITIZER_QUICK=1 timeout "$t" "$san" --tool "$tool" --error-exitcode 99 "$kbin" >"$slog" 2>&1
    rc=$?
    { echo "== compute-sanitizer --tool $tool $test (rc $rc)"; cat "$slog"; } >>"$out/sanitizer.log"
    summary=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$slog" | tail -1 | sed -E 's/^=+ *//')
    if (( rc == 0 )) && grep -qE '(ERROR|RACECHECK) SUMMARY: 0 (errors|hazards)' "$slog"; then
      row "compute-sanitizer $tool $test" ok "$summary"
    elif (( rc == 124 )); then row "compute-sanitizer $tool $test" TIMEOUT "after ${t} s"
    else row "compute-sanitizer $tool $test" FAILED "rc $rc: ${summary:-see sanitizer.log}"; fi
  done
  fi  # sanitizer
fi

# ---- cross-check of the benchmark's figures through PyTorch (same GPU, independent code path) ----
if part_on torch && [ -n "$py" ] && (( $(remaining) > 30 )); then
  log "PyTorch cross-check"
  echo "== torch cross-check" >>"$out/bench.log"
  if timeout "$(step_timeout 40 5)" "$py" - >>"$out/bench.log" 2>&1 <<'EOF'
import torch
assert torch.cuda.is_available(), "torch sees no GPU"
def timed(fn, warm, reps):
    for _ in range(warm): fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps): fn()
    b.record(); b.synchronize()
    return a.elapsed_time(b) / reps / 1e3
n = 8192
x = torch.rand(n, n, device="cuda", dtype=torch.bfloat16) * 2 - 1
y = torch.rand(n, n, device="cuda", dtype=torch.bfloat16) * 2 - 1
s = timed(lambda: x @ y, 3, 20)
print(f"RESULT torch_gemm_bf16 {2 * n**3 / s / 1e12:.1f} TFLOP/s")
src = torch.empty(2 << 30, dtype=torch.uint8, device="cuda"); dst = torch.empty_like(src)
s = timed(lambda: dst.copy_(src), 3, 20)
print(f"RESULT torch_copy_bandwidth {2 * src.numel() / s / 1e9:.0f} GB/s")
EOF
  then
    while read -r _ name value unit; do row "torch $name" ok "$value $unit"; done \
      < <(sed -n '/^== torch cross-check$/,$p' "$out/bench.log" | grep '^RESULT ')
  else
    row "torch cross-check" FAILED "see bench.log"
  fi
fi

# The benchmarks' JSON files, at the end of bench.log.
for j in "$build"/bench-gpu.json "$build"/bench-gpu-infer.json "$build"/bench-gpu-train-*.json "$build"/peft-train-bench.json; do
  [ -f "$j" ] && [ "$j" -nt "$out/run.log.start" ] && { echo "== json $(basename "$j")"; cat "$j"; echo; } >>"$out/bench.log"
done
rm -f "$out/run.log.start"

# ---- summary (last) ----
{
  echo
  echo "GPU check summary ($(date -u +%F\ %T) UTC, $(elapsed) s; logs in $out)"
  printf '%-62s %-9s %s\n' "test" "result" "key figure"
  printf '%-62s %-9s %s\n' "----" "------" "----------"
  for r in "${rows[@]}"; do IFS='|' read -r a b c <<<"$r"; printf '%-62s %-9s %s\n' "$a" "$b" "$c"; done
  echo "overall: $([ $status -eq 0 ] && echo PASSED || echo FAILED)"
} | tee "$out/summary.txt" | tee -a "$out/run.log"
exit $status
