"""``python -m fastem [-v] script.py args`` / ``python -m fastem [-v] -m module args``:
run an unmodified program with scikit-learn patched (:func:`fastem.patch_sklearn`)
before its first line, as ``python script.py args`` / ``python -m module args`` would
(``sys.argv``, ``sys.path[0]`` and ``__name__ == "__main__"`` as Python sets them).
``-v`` logs fastem's dispatch decisions (the ``"fastem"`` logger at DEBUG) on stderr.
"""
from __future__ import annotations

import logging
import os
import runpy
import sys

USAGE = "usage: python -m fastem [-v] (script.py | -m module) [args ...]"


def run_patched(argv: list[str]) -> int:
    """Run the program ``argv`` names (see the module docstring); returns its exit status
    0 when it ends normally (``SystemExit`` from the program propagates)."""
    from .patching import patch_sklearn

    args = list(argv)
    if args[:1] == ["-v"]:
        args.pop(0)
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger = logging.getLogger("fastem")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    if not args or (args[0] == "-m" and len(args) < 2):
        print(USAGE, file=sys.stderr)
        return 2
    patch_sklearn()
    if args[0] == "-m":
        sys.argv = args[1:]  # run_module sets argv[0] to the module's file
        sys.path.insert(0, os.getcwd())
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
        runpy.run_path(args[0], run_name="__main__")
    return 0
