"""The ``backbone`` command's entry point (``python -m backbone`` too).

Ctrl-C while the command line itself is still loading ends the process at once with
one line: nothing has been read or written yet. :func:`backbone.cli.main` then puts
the command's own handler in place."""

from __future__ import annotations

import os
import signal
import sys


def _while_loading(_signum: int, _frame: object) -> None:
    sys.stderr.write("Interrupted: nothing was changed.\n")
    sys.stderr.flush()
    os._exit(130)


def main() -> None:
    signal.signal(signal.SIGINT, _while_loading)
    from backbone.cli import main as run

    run()


if __name__ == "__main__":
    main()
