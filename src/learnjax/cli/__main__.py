"""`python -m learnjax.cli`."""

from learnjax.cli import main

raise SystemExit(main())
