"""``python -m fastem bench ...`` (see :mod:`fastem.cli`) and ``python -m fastem [-v]
script.py args`` / ``python -m fastem [-v] -m module args`` (see :mod:`fastem._run`)."""
from .cli import main

raise SystemExit(main())
