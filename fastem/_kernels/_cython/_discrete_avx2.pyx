# Same kernels as _discrete.pyx, compiled with avx2 flags by setup.py.
include "_discrete.pyx"
