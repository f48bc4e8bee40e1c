"""The one exception type the command line turns into a single error line and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a wrong argument, an unreadable file, a model that does not fit.

    The message is one line that names the thing at fault and what is wrong with it; the CLI
    prints it as ``mcu-effnet: error: <message>`` and exits with status 2, without a traceback.

    The library speaks of values and of its own parameter names ("resolution 4 is below the
    minimum of 8 px"); ``options`` lists the parameter names the message mentions, and the
    CLI alone turns each into its flag (``resolution`` -> ``--resolution``).
    """

    def __init__(self, message: str, *, options: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.options = options
