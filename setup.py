"""Build the Cython kernels, with OpenMP when the compiler supports it.

Environment:
- ``FASTEM_NO_OPENMP=1``: build without OpenMP (kernels run single-threaded).
- ``FASTEM_NATIVE=1``: add ``-march=native`` (the wheel then only runs on this CPU type).

Besides the baseline extension (x86-64 SSE2), the same source is compiled into
AVX2+FMA and AVX-512 variants when the compiler supports the flags; the backend
imports the best one the running CPU supports, so the wheel stays portable.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

OPENMP_TEST = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d", n > 0);
    return 0;
}
"""


def _compiler() -> str:
    return os.environ.get("CC") or sysconfig.get_config_var("CC").split()[0] or "cc"


def openmp_flags() -> tuple[list, list]:
    """(compile_args, link_args) for OpenMP, or ([], []) when it is off or unavailable."""
    if os.environ.get("FASTEM_NO_OPENMP", "0") not in ("", "0"):
        print("fastem: FASTEM_NO_OPENMP set, building without OpenMP", file=sys.stderr)
        return [], []
    if sys.platform == "win32":
        return ["/openmp"], []
    flags = ["-fopenmp"]
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "omp.c")
        exe = os.path.join(tmp, "omp")
        with open(src, "w") as fh:
            fh.write(OPENMP_TEST)
        result = subprocess.run([_compiler(), *flags, src, "-o", exe], capture_output=True, text=True)
        if result.returncode == 0 and subprocess.run([exe], capture_output=True, text=True).stdout == "1":
            return flags, flags
        print(f"fastem: OpenMP test program failed, building without OpenMP:\n{result.stderr}", file=sys.stderr)
        return [], []
    except OSError as exc:
        print(f"fastem: could not run the compiler for the OpenMP check ({exc}); building without OpenMP",
              file=sys.stderr)
        return [], []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compiler_accepts(flags: list) -> bool:
    """Whether the C compiler builds a trivial program with ``flags``."""
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "isa.c")
        with open(src, "w") as fh:
            fh.write("int main(void) { return 0; }\n")
        cmd = [_compiler(), *flags, src, "-o", os.path.join(tmp, "isa")]
        return subprocess.run(cmd, capture_output=True).returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


compile_args, link_args = openmp_flags()
# -fno-math-errno (sqrt) and -fno-trapping-math (selects such as max) let loops vectorise;
# IEEE results are unchanged, and neither errno nor floating-point traps are used
compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math", *compile_args]
native = os.environ.get("FASTEM_NATIVE", "0") not in ("", "0")
if native:
    compile_args.append("-march=native")

#: the Cython kernel modules (fastem/_kernels/_cython/<name>.pyx)
KERNEL_MODULES = ["_gaussian", "_kmeans", "_discrete"]
# (module suffix, extra flags): ISA variants of each kernel module, chosen at import time
# by fastem._kernels._isa from numpy's CPU feature detection
ISA_VARIANTS = [
    ("", []),
    ("_avx2", ["-mavx2", "-mfma"]),
    ("_avx512", ["-mavx2", "-mfma", "-mavx512f", "-mavx512cd", "-mavx512vl", "-mavx512bw", "-mavx512dq"]),
]
is_x86_64 = sysconfig.get_platform().endswith(("x86_64", "amd64")) and sys.platform != "win32"

extensions = [
    Extension(
        f"fastem._kernels._cython.{module}{suffix}",
        [f"fastem/_kernels/_cython/{module}{suffix}.pyx"],
        include_dirs=[np.get_include()],
        depends=glob.glob("fastem/_kernels/_cython/*.h"),  # the kernels are rebuilt when a header changes
        extra_compile_args=compile_args + flags,
        extra_link_args=link_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for module in KERNEL_MODULES
    for suffix, flags in ISA_VARIANTS
    if not suffix or (is_x86_64 and not native and compiler_accepts(flags))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
