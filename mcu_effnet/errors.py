"""The one exception type the command line turns into a single error line and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a wrong argument, an unreadable file, a model that does not fit.

    The message is one line that names the thing at fault and what is wrong with it; the CLI
    prints it as ``mcu-effnet: error: <message>`` and exits with status 2, without a traceback.
    """
