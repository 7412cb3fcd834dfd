# Copyright (c) mmcyc contributors. All rights reserved.
"""Run a stage's tools as children that do not outlive their parent."""
import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import List, Mapping, Optional, Sequence

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to a child's process group, if any member is left."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def run_children(jobs: Sequence[Sequence[Sequence[str]]],
                 env: Optional[Mapping[str, str]] = None,
                 grace_s: float = 10.0) -> None:
    """Run jobs concurrently, each a sequence of commands run in order.

    Every command runs in a process group of its own, so that its
    dataloader workers and launcher children go with it. SIGINT, SIGTERM or
    SIGHUP to the parent stop every running group (SIGTERM, then SIGKILL
    for what is left after ``grace_s``) before the parent exits with the
    signal's conventional status (128 + signal number;
    ``KeyboardInterrupt`` for SIGINT): ``subprocess.run`` left a stage's
    training running, writing checkpoints, after the main job was stopped.
    A command that fails stops the other jobs the same way. SIGKILL of the
    parent cannot be caught; the groups then need ``kill -- -PGID``.

    Must be called from the main thread (it installs signal handlers).

    Args:
        jobs (Sequence[Sequence[Sequence[str]]]): The jobs; job ``j`` runs
            ``jobs[j][0]``, then ``jobs[j][1]`` once that succeeded, ...
        env (Mapping[str, str], optional): The children's environment.
        grace_s (float): Seconds between SIGTERM and SIGKILL.

    Raises:
        subprocess.CalledProcessError: For the first command that exits
            with a non-zero status (the other jobs are stopped).
    """
    pending = [list(job) for job in jobs if len(job)]
    running: List[Optional[subprocess.Popen]] = [None] * len(pending)
    started: List[subprocess.Popen] = []
    received = []

    def start(j: int) -> None:
        running[j] = subprocess.Popen(
            list(pending[j].pop(0)),
            env=None if env is None else dict(env),
            start_new_session=True)
        started.append(running[j])

    def stop_all(sig: int) -> None:
        for proc in running:
            if proc is not None:
                signal_group(proc, sig)

    def forward(signum, frame):
        # no waiting here: the interrupted main loop may hold Popen's lock
        if not received:
            stop_all(signal.SIGTERM)
        received.append((signum, time.monotonic()))

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    failure = None
    try:
        for j in range(len(pending)):
            start(j)
        while any(proc is not None for proc in running):
            time.sleep(0.2)
            if received and time.monotonic() - received[0][1] > grace_s:
                stop_all(signal.SIGKILL)
            for j, proc in enumerate(running):
                if proc is None or proc.poll() is None:
                    continue
                if proc.returncode and not received and failure is None:
                    failure = subprocess.CalledProcessError(
                        proc.returncode, proc.args)
                    received.append((None, time.monotonic()))
                    stop_all(signal.SIGTERM)
                running[j] = None
                if pending[j] and not received:
                    start(j)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in running:  # the parent itself failed: stop the children
            if proc is not None and proc.poll() is None:
                signal_group(proc, signal.SIGKILL)
                proc.wait()
    if received:  # members that outlived their group's leader
        for proc in started:
            signal_group(proc, signal.SIGKILL)
    if failure is not None:
        raise failure
    if received:
        if received[0][0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + received[0][0])


def run_child(cmd: Sequence[str],
              env: Optional[Mapping[str, str]] = None,
              grace_s: float = 10.0) -> None:
    """Run one command in its own process group and wait for it.

    See :func:`run_children` (one job of one command).

    Args:
        cmd (Sequence[str]): The command line.
        env (Mapping[str, str], optional): The child's environment.
        grace_s (float): Seconds between SIGTERM and SIGKILL.

    Raises:
        subprocess.CalledProcessError: If the child exits with a non-zero
            status.
    """
    run_children([[cmd]], env=env, grace_s=grace_s)


def stop_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have Linux send ``sig`` to this process when its parent dies.

    For the workers of a launcher (torchrun): a launcher killed with
    SIGKILL cannot stop its workers, which then trained on and wrote
    checkpoints. ``prctl(PR_SET_PDEATHSIG)``; if the parent died before the
    call, ``sig`` is sent at once.

    Args:
        sig (int): The signal. Defaults to SIGTERM.

    Returns:
        bool: Whether it is in place (False off Linux).
    """
    if not sys.platform.startswith('linux'):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent is already gone
        os.kill(os.getpid(), sig)
    return True


def stop_with_launcher() -> bool:
    """:func:`stop_with_parent` in a torchrun worker (``TORCHELASTIC_RUN_ID``
    set); nothing otherwise. Returns whether it is in place."""
    if 'TORCHELASTIC_RUN_ID' not in os.environ:
        return False
    return stop_with_parent()
