"""The ``cairn`` console script: the same command line and MCP server as the Rust
binary (``cairn --help``), run in this process by the native module."""

from __future__ import annotations

import signal
import sys
import threading
from typing import List, Optional

from ._native import _cli_main


def main(argv: Optional[List[str]] = None) -> int:
    """Runs ``cairn`` with ``argv`` (default: the process's arguments) and exits with
    its exit code."""
    args = sys.argv[1:] if argv is None else argv
    # The native command runs with the GIL released, where Python's own SIGINT handler
    # (KeyboardInterrupt) would never get to run: let Ctrl-C end the process as it
    # ends the Rust binary.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = _cli_main(["cairn", *args])
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
