"""`python -m mailroom` is the `mailroom` command."""

from mailroom.cli import main

raise SystemExit(main())
