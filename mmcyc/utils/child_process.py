# Copyright (c) mmcyc contributors. All rights reserved.
"""Run a stage's tool as a child that does not outlive its parent."""
import os
import signal
import subprocess
import time
from typing import Mapping, Optional, Sequence

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to a child's process group, if any member is left."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def run_child(cmd: Sequence[str],
              env: Optional[Mapping[str, str]] = None,
              grace_s: float = 10.0) -> None:
    """Run ``cmd`` in its own process group and wait for it.

    ``subprocess.run`` leaves a child running when its parent is killed: a
    stage's training went on writing checkpoints after the main job was
    stopped. Here the child (with its dataloader workers and any launcher
    children) gets a process group of its own, and SIGINT, SIGTERM or SIGHUP
    to the parent stop that whole group before the parent exits with the
    signal's conventional status (128 + signal number; ``KeyboardInterrupt``
    for SIGINT): SIGTERM first, SIGKILL for what is left after ``grace_s``.
    SIGKILL of the parent cannot be caught; the group then needs
    ``kill -- -PGID``.

    Args:
        cmd (Sequence[str]): The command line.
        env (Mapping[str, str], optional): The child's environment.
        grace_s (float): Seconds between SIGTERM and SIGKILL.

    Raises:
        subprocess.CalledProcessError: If the child exits with a non-zero
            status.
    """
    proc = subprocess.Popen(list(cmd), env=None if env is None else dict(env),
                            start_new_session=True)
    received = []

    def forward(signum, frame):
        # no waiting here: the interrupted main loop may hold Popen's lock
        if not received:
            signal_group(proc, signal.SIGTERM)
        received.append((signum, time.monotonic()))

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        while True:
            try:
                returncode = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if received and time.monotonic() - received[0][1] > grace_s:
                    signal_group(proc, signal.SIGKILL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:  # the parent itself failed: stop the child
            signal_group(proc, signal.SIGKILL)
            proc.wait()
    if received:
        signal_group(proc, signal.SIGKILL)  # members that outlived the leader
        if received[0][0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + received[0][0])
    if returncode:
        raise subprocess.CalledProcessError(returncode, list(cmd))
