"""`python -m bridge`: the same as the `callbridge` command."""

from bridge.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
