"""``python -m fastem bench ...``: see :mod:`fastem.cli`."""
from .cli import main

raise SystemExit(main())
