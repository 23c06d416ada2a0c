"""The one exception type for user mistakes."""


class HCTreeError(Exception):
    """A mistake the user can fix: the message is one sentence saying what and how.

    The CLI prints it as ``error: <message>`` and exits with code 2; anything else
    that escapes is a bug and keeps its traceback.
    """


class Interrupted(Exception):
    """Growth stopped on request (SIGINT/SIGTERM) after saving a checkpoint."""
