"""The add-on's bpy-free helpers: orbit poses, walk requests, job-list rows, UI text, image files."""

from __future__ import annotations

import math

import pytest

from addon.core import files, formatting, joblist, poses
from addon.core.walks import WalkError, Waypoint, walk_body, waypoint_payload

TAU = 2 * math.pi


def test_even_orbit_covers_the_circle_without_repeating_the_first_view():
    views = poses.orbit_poses(8, 0.0, TAU, 0.1, 0.5, "EVEN", 0, 0.0)
    assert [round(az, 9) for az, _el, _f in views] == [round(i * TAU / 8, 9) for i in range(8)]
    assert all(0.1 <= el <= 0.5 for _az, el, _f in views)
    assert {f for _az, _el, f in views} == {1.0}
    # a partial arc includes both ends
    arc = poses.orbit_poses(3, 0.0, 1.0, 0.2, 0.2, "EVEN")
    assert [az for az, _el, _f in arc] == [0.0, 0.5, 1.0]
    assert poses.orbit_poses(1, 0.0, 1.0, 0.0, 0.4)[0][1] == pytest.approx(0.2)


def test_random_orbit_is_seeded_and_stays_in_range():
    a = poses.orbit_poses(50, 0.0, 3.0, 0.4, -0.2, "RANDOM", 7, 0.2)  # elevations given in either order
    assert a == poses.orbit_poses(50, 0.0, 3.0, -0.2, 0.4, "RANDOM", 7, 0.2)
    assert a != poses.orbit_poses(50, 0.0, 3.0, -0.2, 0.4, "RANDOM", 8, 0.2)
    assert all(0 <= az <= 3 and -0.2 <= el <= 0.4 and 0.8 <= f <= 1.2 for az, el, f in a)
    assert len({round(f, 6) for _az, _el, f in a}) > 40


def test_no_views_is_a_clear_error():
    with pytest.raises(poses.PoseError, match="at least 1"):
        poses.orbit_poses(0, 0.0, TAU, 0.0, 0.0)


def test_walk_body_sorts_waypoints_and_reads_stored_vectors():
    body = walk_body({"job_id": 1}, [Waypoint(9, 2), Waypoint(1, 5, True, "[0.5, -1.25]")], 1, 12, "slerp", "smooth",
                     False, 0.7)
    assert body == {"model": {"job_id": 1}, "waypoints": [{"frame": 1, "z": [0.5, -1.25]}, {"frame": 9, "seed": 2}],
                    "frame_start": 1, "frame_end": 12, "interpolation": "slerp", "easing": "smooth", "loop": False,
                    "psi": 0.7}


@pytest.mark.parametrize("waypoints, start, end, message", [
    ([], 1, 10, "Add at least one waypoint"),
    ([Waypoint(3, 1), Waypoint(3, 2)], 1, 10, "Two waypoints share frame 3"),
    ([Waypoint(4, 1, True, "[0.5, oops]")], 1, 10, "waypoint at frame 4 is not a list of numbers"),
    ([Waypoint(4, 1, True, "[]")], 1, 10, "waypoint at frame 4 is not a list of numbers"),
    ([Waypoint(4, 1, True, '{"z": 1}')], 1, 10, "waypoint at frame 4 is not a list of numbers"),
    ([Waypoint(4, 1)], 10, 5, "frame range is empty"),
])
def test_walk_body_refuses_what_cannot_work(waypoints, start, end, message):
    with pytest.raises(WalkError, match=message):
        walk_body({"job_id": 1}, waypoints, start, end, "slerp", "linear", False, 1.0)


def test_a_stored_vector_is_ignored_unless_used():
    assert waypoint_payload([Waypoint(2, 8, False, "garbage")]) == [{"frame": 2, "seed": 8}]


def test_job_rows_from_the_server_list():
    jobs = [{"id": 3, "title": "cube", "state": "running", "step": 50, "steps": 200, "kimg": 0.8, "eta_s": 95.5},
            {"id": 4, "title": "", "state": "queued", "step": 0, "steps": 0, "kimg": None, "eta_s": None}]
    assert joblist.job_rows(jobs) == [
        {"job_id": "3", "title": "cube", "state": "running", "step": 50, "steps": 200, "kimg": 0.8,
         "progress": 0.25, "eta_s": 95.5},
        {"job_id": "4", "title": "4", "state": "queued", "step": 0, "steps": 0, "kimg": 0.0, "progress": 0.0,
         "eta_s": -1.0},
    ]


def test_snapshot_rows_are_oldest_first_and_the_selection_survives_a_refresh():
    rows = joblist.snapshot_rows([{"step": 20, "kimg": 0.2}, {"step": 10, "kimg": 0.1}])
    assert rows == [{"step": 10, "kimg": 0.1}, {"step": 20, "kimg": 0.2}]
    assert joblist.index_of([10, 20, 30], 20) == 1
    assert joblist.index_of([10, 20, 30], 99, fallback=2) == 2
    assert joblist.index_of([], "7") == 0


def test_eta_text():
    assert formatting.eta(-1.0) == "-"
    assert formatting.eta(249) == "4m09s"
    assert formatting.eta(3900) == "1h05m"


def test_report_summary():
    report = {"resolution": 64, "counts": {"accepted": 5, "rejected": 1},
              "rejected": [{"file": "a.jpg", "code": "too_small", "reason": "smaller than 64px"}]}
    assert formatting.summarize_report(report) == ("5 accepted, 1 rejected, 64px", "a.jpg: smaller than 64px")
    assert formatting.summarize_report({"resolution": None, "counts": {"accepted": 3}, "rejected": []}) == (
        "3 accepted, 0 rejected", "")


def test_model_items_start_with_scratch_and_skip_duplicates():
    models = [{"id": "scratch", "name": "From scratch", "kind": "scratch", "resolution": None},
              {"id": "job:1:2", "name": "cube step 2", "kind": "job", "resolution": 32},
              {"id": "job:1:2", "name": "again", "kind": "job", "resolution": 32},
              {"id": "ffhq", "name": "", "kind": "imported", "resolution": None}]
    assert formatting.model_items(models) == [
        formatting.SCRATCH_ITEM, ("job:1:2", "cube step 2 (32px)", "job: job:1:2"), ("ffhq", "ffhq", "imported: ffhq")]


def test_images_in_a_folder_and_its_class_folders(tmp_path):
    (tmp_path / "b.PNG").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "c.exr").write_bytes(b"x")  # the dataset builder does not read EXR
    assert files.list_images(str(tmp_path)) == ["a.jpg", "b.PNG"]
    assert files.list_images(str(tmp_path / "missing")) == []
    classes = tmp_path / "by_class"
    (classes / "cats").mkdir(parents=True)
    assert not files.has_images(str(classes))
    (classes / "cats" / "1.png").write_bytes(b"x")
    assert files.has_images(str(classes))
