"""`python -m harness`: the offline commands, the same as `python -m mlopsctl <offline command>`."""

from harness.cli import main

raise SystemExit(main())
