"""The one exception type that the CLI turns into a single clear error line."""


class TextimgError(Exception):
    """Bad input or a refused operation: the message is shown to the user as it is, no traceback."""
