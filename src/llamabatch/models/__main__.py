"""`python -m llamabatch.models`: see llamabatch.models.command."""
from .command import main

raise SystemExit(main())
