"""The one exception type a user sees.

Every problem that comes from the user's input (a bad checkpoint, a bad flag, a missing tool) is
raised as :class:`JpqError` with a message that fits on one line. The command line prints it as
``jpq-hw: error: <message>`` and exits with status 2; anything else is a bug and keeps its traceback.
"""


class JpqError(Exception):
    """A user-facing error: one line that names the problem."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
