"""The run folder: one run at a time per `output_dir` (a lock naming its holder), and a full disk reported as such."""

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from smoke_runs import SMOKE_ENV, prepare_smoke_run

from r1video.runs import LOCK_NAME, UNREADABLE_LOCK_GRACE_S, RunLockedError, run_lock

REPO = Path(__file__).resolve().parents[1]
GRPO_SMOKE = str(REPO / "recipes/tiny/grpo_smoke.yaml")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_run_on_a_locked_output_dir_is_refused_naming_the_holder(tmp_path):
    prepare_smoke_run(tmp_path)  # a recipe that would run: only the lock refuses it
    with run_lock(str(tmp_path / "out")):
        second = subprocess.run(
            [sys.executable, "-m", "r1video.grpo", "--config", GRPO_SMOKE, "--output_dir", str(tmp_path / "out")],
            cwd=tmp_path, env=SMOKE_ENV, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert second.returncode == 1
        assert "r1video grpo: error:" in second.stderr and "Traceback" not in second.stderr, second.stderr[-2000:]
        assert f"in use by process {os.getpid()} on host {socket.gethostname()}" in second.stderr
        assert json.loads((tmp_path / "out" / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / "out" / LOCK_NAME).exists(), "the lock is released at exit"


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, caplog):
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    with caplog.at_level(logging.WARNING), run_lock(str(tmp_path)):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert "stale lock" in caplog.text
    assert not lock.exists()


def test_a_lock_held_elsewhere_is_refused_and_kept(tmp_path):
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": "another-host"}))  # its pid cannot be checked from here
    with pytest.raises(RunLockedError, match="on host another-host"), run_lock(str(tmp_path)):
        pass
    assert json.loads(lock.read_text())["host"] == "another-host"


def test_only_the_main_process_takes_the_lock(tmp_path):
    with run_lock(str(tmp_path)):
        with run_lock(str(tmp_path), main_process=False):  # another rank of the same run
            pass
        assert (tmp_path / LOCK_NAME).exists()


def test_the_lock_is_released_when_the_run_fails(tmp_path):
    with pytest.raises(RuntimeError, match="the run failed"), run_lock(str(tmp_path)):
        raise RuntimeError("the run failed")
    assert not (tmp_path / LOCK_NAME).exists()


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unprivileged user and mount namespaces for a small tmpfs")
def test_a_full_disk_is_reported_as_no_space_naming_the_checkpoint(tmp_path):
    prepare_smoke_run(tmp_path)
    (tmp_path / "small").mkdir()
    # A 1 MiB tmpfs in a private mount namespace: the tiny model's first checkpoint (about 2.7 MB) does not fit.
    train = [sys.executable, "-m", "r1video.grpo", "--config", GRPO_SMOKE, "--output_dir", "small/out",
             "--max_steps", "2", "--save_steps", "2"]  # fmt: skip
    mount_and_train = ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs small && exec "$@"', "sh"]
    full = subprocess.run(
        mount_and_train + train, cwd=tmp_path, env=SMOKE_ENV, capture_output=True, text=True, timeout=300
    )
    assert full.returncode != 0
    assert "OSError: [Errno 28] No space left on the device while writing small/out/checkpoint-2" in full.stderr, (
        full.stderr[-3000:]
    )


@pytest.mark.parametrize(
    "content", [b"", b"\x00\x17garbage", b'{"pid": "x"}', b"[]"], ids=["empty", "garbage", "bad-pid", "list"]
)
def test_an_unreadable_lock_is_taken_over_with_a_warning_once_it_is_not_being_written(tmp_path, caplog, content):
    # On 666becb such a lock (a crash or a full disk while it was written) refused every run until deleted by hand.
    lock = tmp_path / LOCK_NAME
    lock.write_bytes(content)
    old = time.time() - 60
    os.utime(lock, (old, old))
    with caplog.at_level(logging.WARNING), run_lock(str(tmp_path)):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert "its holder cannot be read" in caplog.text and "60 s old" in caplog.text
    assert not lock.exists()


def test_a_fresh_unreadable_lock_is_waited_for_not_taken_at_once(tmp_path):
    lock = tmp_path / LOCK_NAME
    lock.write_bytes(b"")  # as a starting run leaves it for a moment, between creating and writing it
    start = time.monotonic()
    with run_lock(str(tmp_path)):
        waited = time.monotonic() - start
    assert UNREADABLE_LOCK_GRACE_S - 0.5 <= waited < UNREADABLE_LOCK_GRACE_S + 5
