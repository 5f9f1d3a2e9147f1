#!/usr/bin/python3
"""facrnn_results: the older name of the facrnn_py package, kept so that
existing scripts and notebooks keep working. Everything is re-exported from
facrnn_py (see its docstring); new code should `import facrnn_py`."""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

from facrnn_py import *  # noqa: E402,F401,F403
from facrnn_py import __all__  # noqa: E402,F401
