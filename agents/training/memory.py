"""Keep the memory an update frees inside the process, so the next update does not fault it in again.

Every update allocates and frees the same large tensors: the batch's frames as floats (a `dmc`
batch, 16 sequences of 18 frames of 3 x 64 x 64, is 14 MB), their two shifted views, the
activations and their gradients. glibc returns a freed block above its mmap threshold to the OS at
once, and trims the top of its heap when more than its trim threshold lies free there, so the next
update maps those pages again and touches each one for the first time: on a `dmc` walker-walk
update, about 7,000 to 16,000 minor page faults and 11 to 34 ms of system time, in an update of
about 110 ms (docs/results.md, 2026-12-06 sixth session). With blocks up to 32 MB served from the
heap and the heap never trimmed below 1 GiB of free space, the same update faults almost never.

The numbers computed do not change (tensors hold the same values wherever they live); the process
keeps its peak working set instead of handing it back between updates.

    retain_freed_memory()     # once, at the start of a training process; True where it applied
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameter numbers (malloc.h)."""
MMAP_THRESHOLD = 32 * 2**20
"""Blocks below this come from the heap: the largest value glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)."""
TRIM_THRESHOLD = 2**30
"""Free space the heap's top may hold before glibc gives it back to the OS."""


def retain_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds as above (fixing them, which also turns off glibc's own
    adjustment of them); True when both were set, False where there is no glibc (macOS, Windows,
    musl) or it refused, which leaves the allocator as it was."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the running process's symbols, the C library's included
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):  # musl's mallopt does nothing
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


__all__ = ["retain_freed_memory"]
