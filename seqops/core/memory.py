"""Give freed memory back to the operating system between the phases of a big job.

glibc's allocator keeps the heap pages that pandas and NumPy freed (the "RSS never goes down"
effect), so the peaks of consecutive phases (validate, then publish) add up. ``malloc_trim`` returns
them, as Dask's workers do; elsewhere than glibc this only collects garbage.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release() -> None:
    """Collect garbage, then return the allocator's free pages to the OS (where it can)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
