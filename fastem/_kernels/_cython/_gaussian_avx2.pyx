# Same kernels as _gaussian.pyx, compiled with avx2 flags by setup.py.
include "_gaussian.pyx"
