# Same kernels as _discrete.pyx, compiled with avx512 flags by setup.py.
include "_discrete.pyx"
