"""run_child: a killed parent takes its child's process group with it."""
import os
import signal
import subprocess
import sys
import time

import pytest

from mmcyc.utils import run_child

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

# the parent: run_child on a child that records its pid and the pid of a
# grandchild (like a dataloader worker), then sleeps
PARENT = '''
import sys
sys.path.insert(0, {repo!r})
from mmcyc.utils import run_child
child = ("import os, subprocess, sys, time; "
         "g = subprocess.Popen([sys.executable, '-c', "
         "'import time; time.sleep(120)']); "
         "open({pids!r} + '.tmp', 'w').write(f'{{os.getpid()}} {{g.pid}}'); "
         "os.replace({pids!r} + '.tmp', {pids!r}); time.sleep(120)")
run_child([sys.executable, '-c', child])
'''


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    with open(f'/proc/{pid}/stat') as f:
        return f.read().split(')')[-1].split()[0] != 'Z'


def wait_for(predicate, timeout=120.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize('sig, status', [(signal.SIGTERM, 128 + 15),
                                         (signal.SIGHUP, 128 + 1)])
def test_killed_parent_stops_the_child_group(tmp_path, sig, status):
    pids = str(tmp_path / 'pids')
    parent = subprocess.Popen(
        [sys.executable, '-c', PARENT.format(repo=REPO, pids=pids)])
    try:
        assert wait_for(lambda: os.path.exists(pids)), 'child never started'
        child, grandchild = map(int, open(pids).read().split())
        assert alive(child) and alive(grandchild)
        parent.send_signal(sig)
        assert parent.wait(timeout=120) == status
        assert wait_for(lambda: not alive(child) and not alive(grandchild)), \
            'the child group outlived its parent'
    finally:
        if parent.poll() is None:
            parent.kill()


def test_failing_child_raises_with_its_status():
    with pytest.raises(subprocess.CalledProcessError) as info:
        run_child([sys.executable, '-c', 'raise SystemExit(3)'])
    assert info.value.returncode == 3


def test_child_gets_the_environment(tmp_path):
    out = tmp_path / 'env'
    run_child([sys.executable, '-c',
               f"import os; open({str(out)!r}, 'w').write(os.environ['X_Y'])"],
              env=dict(os.environ, X_Y='42'))
    assert out.read_text() == '42'


def test_jobs_run_concurrently_and_in_order(tmp_path):
    """Two jobs overlap in time; each job's commands run one after another."""
    from mmcyc.utils.child_process import run_children
    log = tmp_path / 'log'

    def step(name, sleep):
        return [sys.executable, '-c',
                f'import time; t = time.time(); time.sleep({sleep}); '
                f"open({str(log)!r}, 'a').write(f'{name} {{t}} "
                f"{{time.time()}}\\n')"]

    run_children([[step('a1', 1.0), step('a2', 0.1)], [step('b1', 1.0)]])
    spans = {}
    for line in log.read_text().split('\n'):
        if line:
            name, begin, end = line.split()
            spans[name] = (float(begin), float(end))
    assert spans['a2'][0] >= spans['a1'][1]  # in order within a job
    assert spans['b1'][0] < spans['a1'][1]  # the jobs overlap


def test_a_failing_job_stops_the_others(tmp_path):
    from mmcyc.utils.child_process import run_children
    marker = tmp_path / 'finished'
    slow = [sys.executable, '-c',
            f"import time; time.sleep(60); open({str(marker)!r}, 'w')"]
    fail = [sys.executable, '-c', 'import time; time.sleep(0.5); exit(2)']
    begin = time.time()
    with pytest.raises(subprocess.CalledProcessError) as info:
        run_children([[slow], [fail]])
    assert info.value.returncode == 2
    assert time.time() - begin < 30 and not marker.exists()


# a torchrun worker that records its pid and whether it asked to stop with
# its launcher, then sleeps
WORKER = '''
import os, sys, time
sys.path.insert(0, {repo!r})
from mmcyc.utils.child_process import stop_with_launcher
asked = stop_with_launcher() if {ask!r} else False
open({pids!r} + '.tmp', 'w').write(f'{{os.getpid()}} {{asked}}')
os.replace({pids!r} + '.tmp', {pids!r})
time.sleep(120)
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='PR_SET_PDEATHSIG is Linux only')
@pytest.mark.parametrize('ask', [True, False])
def test_torchrun_worker_stops_with_its_killed_launcher(tmp_path, free_port,
                                                        ask):
    """SIGKILL to torchrun: a worker that called stop_with_launcher (as the
    tools do) ends; one that did not trains on (the issue's report)."""
    pids = str(tmp_path / 'pids')
    script = tmp_path / 'worker.py'
    script.write_text(WORKER.format(repo=REPO, pids=pids, ask=ask))
    launcher = subprocess.Popen(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=1',
         f'--master_port={free_port}', str(script)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    worker = None
    try:
        assert wait_for(lambda: os.path.exists(pids), timeout=60)
        with open(pids) as f:
            worker, asked = f.read().split()
        worker = int(worker)
        assert asked == str(ask)
        time.sleep(1.0)
        assert alive(worker)  # not stopped while its launcher lives
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=10)
        assert wait_for(lambda: not alive(worker), timeout=10) == ask
    finally:
        try:
            os.killpg(launcher.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if worker is not None and alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_stop_with_launcher_outside_torchrun(monkeypatch):
    from mmcyc.utils.child_process import stop_with_launcher
    monkeypatch.delenv('TORCHELASTIC_RUN_ID', raising=False)
    assert stop_with_launcher() is False
