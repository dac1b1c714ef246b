"""The exit status of every `appliance` command (README "Command line"): 0 it did what was
asked, 1 the operation failed (a peer did not answer, a file could not be written), 2 bad
usage or a refused request (an unknown name, a bad value)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
