"""The error every command raises when its command line is wrong (exit status 2)."""


class UsageError(Exception):
    """The command line itself is wrong."""
