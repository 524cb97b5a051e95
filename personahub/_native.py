"""Load order of native libraries, settled before anything else is imported.

usearch's wheel carries its own C++ runtime. Loaded first, it wins symbol resolution and
llama.cpp then fails to load any GGUF (``std::bad_cast`` while reading the vocabulary), so a
command that touches dedup before the embedded model could no longer run it. Loading the
system ``libstdc++`` globally first makes both libraries share it.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys


def preload_system_cxx_runtime() -> None:
    """Load the system C++ runtime with RTLD_GLOBAL (Linux only; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):  # not there (e.g. musl): nothing to settle
        ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)
