"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class EdgeTicketError(Exception):
    """A user-facing error: its message is one line that names the fix."""

    exit_code = 2
