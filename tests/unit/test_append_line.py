"""gan_core.fileio.append_line: the progress log's writer."""

import json
import os

from gan_core.fileio import append_line
from gan_core.reports.chart import read_progress


def test_lines_are_appended_whole(tmp_path):
    path = tmp_path / "log.jsonl"
    append_line(path, '{"a": 1}')
    append_line(path, '{"b": 2}\n')  # a trailing newline is not doubled
    assert path.read_text() == '{"a": 1}\n{"b": 2}\n'


def test_a_torn_last_line_does_not_swallow_the_next_one(tmp_path):
    """A crash mid-write leaves half a line; the resumed run's first event must still parse."""
    path = tmp_path / "progress.jsonl"
    path.write_text(json.dumps({"event": "progress", "step": 1, "kimg": 0.1, "losses": {"G": 1.0}}) + "\n"
                    + '{"event": "progress", "step": 2, "ki')
    append_line(path, json.dumps({"event": "progress", "step": 2, "kimg": 0.2, "losses": {"G": 0.9}}))
    lines = path.read_text().splitlines()
    assert lines[1] == '{"event": "progress", "step": 2, "ki'  # left as it was: nothing is lost
    assert json.loads(lines[2])["step"] == 2
    assert [p["step"] for p in read_progress(tmp_path)["progress"]] == [1, 2]


def test_new_log_gets_the_usual_file_mode(tmp_path):
    old = os.umask(0o027)
    try:
        append_line(tmp_path / "log.jsonl", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "log.jsonl").stat().st_mode & 0o777 == 0o640
