"""Worker processes of vcframe's process pools (``vcframe batch``, ``vcframe compare``).

* :func:`die_with_parent`, run first in every worker: a worker ends when the process that started it dies,
  even by SIGKILL (which no handler of the parent can catch), so a killed run leaves no worker computing
  and writing on its own.
* :func:`stop_pool`: an interrupted run cancels what is waiting and ends its workers now, instead of waiting
  for the rows or items they are running.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: prctl(2) option: the signal this process gets when the thread that created it exits.
_PR_SET_PDEATHSIG = 1
#: How often a worker without prctl checks that its parent is alive, in seconds.
PARENT_POLL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end when ``parent_pid``, the process that started it, dies.

    On Linux the kernel sends SIGKILL the moment the parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a
    daemon thread checks every ``PARENT_POLL_S`` s. A parent that died before this call ends the worker now.
    """
    watched_by_kernel = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            watched_by_kernel = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            watched_by_kernel = False
    if os.getppid() != parent_pid:  # the parent is gone already (this process was re-parented)
        os._exit(1)
    if not watched_by_kernel:
        watch = threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="vcframe-parent", daemon=True)
        watch.start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def stop_pool(executor: ProcessPoolExecutor) -> None:
    """Cancel the pool's pending tasks and end its workers now (an interrupted run must not wait for the
    tasks that are running)."""
    terminate = getattr(executor, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)
