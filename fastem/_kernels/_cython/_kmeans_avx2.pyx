# Same kernels as _kmeans.pyx, compiled with avx2 flags by setup.py.
include "_kmeans.pyx"
