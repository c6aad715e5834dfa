"""The errors a command raises to stop with a message: its command line is wrong (exit
status 2), or what it was asked cannot be done (exit status 1)."""


class UsageError(Exception):
    """The command line itself is wrong."""


class Failed(Exception):
    """The command cannot do what it was asked; the message says why and what to do."""
