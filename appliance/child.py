"""How the appliance starts a Python module in a child process: this interpreter, the working directory off the
child's ``sys.path``."""

from __future__ import annotations

import sys


def module_argv(module: str, *args: str) -> list[str]:
    """``python -P -m MODULE ARGS…`` for this interpreter.

    ``-m`` alone puts the working directory first on the child's ``sys.path``, so a file there named like a
    standard module (an operator's ``copy.py``) would replace it and the child would die importing; ``-P``
    (Python >= 3.11) keeps the working directory off.
    """
    return [sys.executable, "-P", "-m", module, *args]
