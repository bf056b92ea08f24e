"""``python -m llamabatch.server``: the same as ``llamabatch serve``."""
from . import main

raise SystemExit(main())
