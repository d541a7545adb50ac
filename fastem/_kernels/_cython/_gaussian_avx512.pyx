# Same kernels as _gaussian.pyx, compiled with avx512 flags by setup.py.
include "_gaussian.pyx"
