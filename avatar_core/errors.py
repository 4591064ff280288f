"""One error type for setup and start-up problems, each carrying a one-line fix for the user."""


class StackError(RuntimeError):
    """A setup or start-up failure the user can fix; str() is one line saying what to do."""
