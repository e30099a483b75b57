"""The one exception type users see; the CLI prints it as a single line and exits non-zero."""


class EdgeforgeError(Exception):
    """A problem with the user's input or environment, explained in one line."""
