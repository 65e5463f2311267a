"""What a user watching a sync sees: on a terminal one live line that never wraps, at 80 and
200 columns and after a resize (the real CLI in a pseudo-terminal, its output replayed on a
VT100 screen by pyte), and in a log file plain lines without control codes."""

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from types import SimpleNamespace

import pyte
import pytest

from aiclicks_pipeline.checkpoints import SyncResult
from aiclicks_pipeline.progress import SyncProgress
from aiclicks_pipeline.sandbox import run_sandbox

from .support import REPO, START, run_args

ROWS = 40


def progress_at(waiting_s=37.2, rate_limited=2):
    """A SyncProgress on the facts of a run part way (the counters a run fills)."""
    progress = SyncProgress(out=open(os.devnull, "w", encoding="utf-8"), mode="tty")
    progress.result = SyncResult(
        domains_total=40, domains_fresh=3, planned_requests=412, domains_committed=12
    )
    progress.checkpoints, progress.checkpoint = 9, 4
    stats = SimpleNamespace(requests=185, rows_extracted=123456,
                            rate_limited=rate_limited)
    # the key pool's answers (keypool.KeyPool): 60 requests a minute, a wait under way
    throttle = SimpleNamespace(
        waiting_s=lambda: waiting_s, requests_per_second=lambda: 1.0, eta_s=lambda left: left * 1.0
    )
    progress.context = SimpleNamespace(stats=stats, session=SimpleNamespace(throttle=throttle))
    return progress


def test_the_live_line_fits_every_width_and_keeps_the_percent_eta_and_wait_longest():
    progress = progress_at()
    for columns in range(10, 241):
        line = progress.live_line(columns)
        assert len(line) <= columns - 1, (columns, line)
        assert "44%" in line, (columns, line)
        if columns >= 30:
            assert "ETA 4 min" in line and "wait" in line and "37 s" in line, (columns, line)
    # 80 columns: every fact, in short labels
    at_80 = progress.live_line(80)
    for fact in ("44%", "cp 4/9", "12/37 dom", "185/412 req", "123,456 rows", "ETA 4 min", "wait 37 s"):
        assert fact in at_80, at_80
    # 200 columns: a bar and every fact in full words
    at_200 = progress.live_line(200)
    assert at_200.startswith("\u2588" * 9) and "checkpoint 4/9" in at_200
    for fact in ("12/37 domains committed", "185/412 requests", "ETA 4 min at 60/min",
                 "2 x 429", "waiting 37 s for the rate limit"):
        assert fact in at_200, at_200
    # the plain line (logs) has every fact whatever the width
    assert progress.line() == (
        "aiclicks: 44%, checkpoint 4/9, 12/37 domains committed, 185/412 requests, "
        "123,456 rows, ETA 4 min at 60/min, 2 x 429, waiting 37 s for the rate limit"
    )


def set_window(fd, columns, rows=ROWS):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def run_in_a_terminal(sandbox, folder, columns, resize_to=None, exit_code=0):
    """The CLI in a pseudo-terminal of `columns`; its output replayed on a pyte screen. Returns
    the screen at the end and each live line seen (the cursor's row whenever it held one),
    with the width it was drawn at. `resize_to`: the terminal is narrowed part way."""
    master, slave = pty.openpty()
    set_window(slave, columns)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__AICLICKS", "AICLICKS_"))}
    environment.update(SOURCES__AICLICKS__API_KEY=sandbox.api_key, TERM="xterm",
                       PYTHONIOENCODING="utf-8")
    args = [a for a in run_args(sandbox, folder) if a != "--quiet"]
    process = subprocess.Popen(
        [sys.executable, "-m", "aiclicks_pipeline", *args, "--checkpoint-requests", "15"],
        stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=environment, close_fds=True,
    )
    os.close(slave)
    screen = pyte.Screen(columns, ROWS)
    stream = pyte.ByteStream(screen)
    live, width = [], columns
    deadline = time.monotonic() + 240
    try:
        while True:
            assert time.monotonic() < deadline, "the sync did not end"
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            stream.feed(chunk)
            row = screen.display[screen.cursor.y].rstrip()
            if "%" in row and ("req" in row or "ETA" in row):
                live.append((width, row))
            if resize_to and width != resize_to and sum(1 for w, _ in live if w == columns) >= 3:
                set_window(master, resize_to)
                screen.resize(ROWS, resize_to)
                width = resize_to
    finally:
        os.close(master)
        process.wait(timeout=30)
    assert process.returncode == exit_code
    return screen, live


@pytest.fixture
def slow_sandbox():
    # 28 requests through 8 per 2.5 s: the run waits for the rate limit three times, and
    # each wait lasts a second or more even when a busy machine takes 1.5 s for the 8 requests,
    # so the display (drawn every 0.5 s, a wait shown from 0.5 s) catches one. With 1.5 s
    # windows a loaded CI machine once showed no wait at all.
    with run_sandbox(seed=5, domains=3, prompts=(5, 10), start=START, frozen=True,
                     rate_limit=8, rate_window=2.5) as sandbox:
        yield sandbox


@pytest.mark.parametrize("columns", [80, 200])
def test_on_a_terminal_one_live_line_that_never_wraps(slow_sandbox, tmp_path, columns):
    screen, live = run_in_a_terminal(slow_sandbox, tmp_path, columns)

    assert len(live) >= 5, live
    for _, row in live:
        assert len(row) <= columns - 1, row
    assert any("ETA " in row for _, row in live)
    assert any("wait" in row for _, row in live)
    if columns == 200:
        assert any("requests" in row and "domains committed" in row and " rows" in row
                   and "\u2588" in row for _, row in live), live
    # nothing of the live line is left on the screen: it was redrawn in place and cleared
    shown = "\n".join(screen.display)
    assert "% " not in shown.replace("%,", "") and "req," not in shown, shown
    assert "Sync finished after" in shown and "Syncing 3 of 3 domain(s) into duckdb file" in shown


def test_the_live_line_follows_a_resize(slow_sandbox, tmp_path):
    screen, live = run_in_a_terminal(slow_sandbox, tmp_path, 200, resize_to=60)

    narrowed = [row for width, row in live if width == 60]
    assert narrowed, live
    assert all(len(row) <= 59 for row in narrowed), narrowed
    assert any(len(row) > 60 for width, row in live if width == 200), live


def test_in_a_log_file_plain_lines_without_control_codes(slow_sandbox, tmp_path):
    log = tmp_path / "sync.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__AICLICKS", "AICLICKS_"))}
    environment["SOURCES__AICLICKS__API_KEY"] = slow_sandbox.api_key
    args = [a for a in run_args(slow_sandbox, tmp_path) if a != "--quiet"]
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "aiclicks_pipeline", *args, "--checkpoint-requests", "15"],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=environment, timeout=240,
        )
    assert done.returncode == 0
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text
    lines = [line for line in text.splitlines() if line.startswith("aiclicks: ")]
    assert len(lines) >= 3, text  # one a checkpoint
    assert all(", checkpoint " in line and " requests, " in line and " rows" in line for line in lines)
    assert text.startswith("Syncing 3 of 3 domain(s) into duckdb file ")


def test_a_warning_during_the_run_gets_a_line_of_its_own(slow_sandbox, tmp_path):
    """A domain the API answers 404 for is skipped with a warning while the live line is up:
    the warning clears it first, so no live-line text is glued to the warning."""
    gone = sorted(slow_sandbox.account.domain_ids())[1]
    slow_sandbox.set_faults(hidden_404_domains={gone})

    screen, live = run_in_a_terminal(slow_sandbox, tmp_path, 120, exit_code=3)

    (warning,) = [row.rstrip() for row in screen.display if "Skipping domain" in row]
    assert warning.startswith(f"WARNING aiclicks_pipeline: Skipping domain {gone}: "), warning
    assert live and "%" not in warning
