"""Run one compiled em_stats configuration a few times, for a profiler.

Instruction-level profile of the Cython kernels (counts, not seconds: repeatable on a
noisy machine; valgrind runs the AVX2 build, as it does not emulate AVX-512)::

    OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --toggle-collect='*omp_fn*' \\
        --callgrind-out-file=cg.out "$(python -c 'import sys; print(sys.executable)')" \\
        benchmarks/profile_kernel.py diag 16 8
    callgrind_annotate cg.out | head -40

(``--toggle-collect='*omp_fn*'`` keeps only the OpenMP regions, i.e. the kernels.)
Arguments: covariance_type, n_features, n_components, [n_samples=20000], [backend=cython].
"""
import sys

from fastem import kernels
from fastem.bench import Config, make_problem


def main(covariance_type: str, n_features: str, n_components: str, n_samples: str = "20000",
         backend: str = "cython") -> None:
    problem = make_problem(Config(int(n_samples), int(n_features), int(n_components), covariance_type, "float64"))
    for _ in range(3):
        kernels.em_stats(problem.X, problem.weights, problem.means, problem.precisions_cholesky, covariance_type,
                         backend=backend, n_threads=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
