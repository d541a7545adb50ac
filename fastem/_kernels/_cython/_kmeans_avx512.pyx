# Same kernels as _kmeans.pyx, compiled with avx512 flags by setup.py.
include "_kmeans.pyx"
