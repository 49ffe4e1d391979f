#!/usr/bin/env bash
# Runs the numerics-sensitive tests under other kernels of this CPU and with one thread,
# so that a tolerance that holds on one CPU only fails here, before a submission, and not
# on the next machine. Each configuration changes which SIMD kernels, BLAS kernels or
# thread counts compute the same sums (and so their rounding):
#   torch-default  ATEN_CPU_CAPABILITY=default   torch's portable kernels (no AVX2/AVX-512)
#   torch-avx2     ATEN_CPU_CAPABILITY=avx2      torch's AVX2 kernels, MKL's AVX2 code path
#   numpy-no512    NPY_DISABLE_CPU_FEATURES      numpy's AVX-512 dispatch targets off
#   openblas       OPENBLAS_CORETYPE=Haswell     another OpenBLAS kernel (numpy, scipy)
#   one-thread     OMP/MKL/OpenBLAS/torch at 1   another summation split across threads
# Usage: bash scripts/check_numerics.sh [CONFIG ...] [-- PYTEST_ARGS]  (default: all five,
# on the test folders below; needs `bash scripts/setup.sh test` first). Exits 1 if any
# configuration fails, and names them.
set -uo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || { echo "check_numerics: run 'bash scripts/setup.sh test' first" >&2; exit 2; }

# The tests that compare computed numbers: DSP, the console and its twin, metrics, the
# network, the methods, training, the DAW export's rendering, and the mixes of `invert`.
tests=(tests/dsp tests/console tests/twin tests/metrics tests/models tests/methods tests/train tests/daw
       tests/test_extra_mixes.py tests/test_api.py)

declare -A env_of=(
    [torch-default]="ATEN_CPU_CAPABILITY=default"
    [torch-avx2]="ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2"
    [numpy-no512]="NPY_DISABLE_CPU_FEATURES=X86_V4,AVX512_ICL,AVX512_SPR"
    [openblas]="OPENBLAS_CORETYPE=Haswell"
    [one-thread]="OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"
)
order=(torch-default torch-avx2 numpy-no512 openblas one-thread)

configs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    [ -n "${env_of[$1]+x}" ] || { echo "check_numerics: unknown configuration $1 (choose from ${order[*]})" >&2; exit 2; }
    configs+=("$1"); shift
done
[ "${1:-}" = "--" ] && shift
[ ${#configs[@]} -gt 0 ] || configs=("${order[@]}")

failed=()
for name in "${configs[@]}"; do
    echo "check_numerics: $name (${env_of[$name]})"
    # shellcheck disable=SC2086
    if ! env ${env_of[$name]} "$py" -m pytest -q -p no:cacheprovider "${tests[@]}" "$@"; then
        failed+=("$name")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "check_numerics: FAILED under: ${failed[*]}" >&2
    exit 1
fi
echo "check_numerics: passed under: ${configs[*]}"
