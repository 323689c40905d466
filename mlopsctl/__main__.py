"""`python -m mlopsctl`: the platform's command line."""

from mlopsctl.cli import main

raise SystemExit(main())
