"""The add-on's bpy-free helpers: orbit poses, walk requests, job-list rows, UI text, image files."""

from __future__ import annotations

import math

import pytest

from addon.core import files, formatting, joblist, messages, poses
from addon.core.estimate import Estimate
from addon.core.poller import PollSchedule
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
    ([], 1, 10, "A walk needs at least 2 waypoints and this one has no waypoint"),
    ([Waypoint(4, 1)], 1, 10, "this one has one waypoint, which would give the same image on every frame"),
    ([Waypoint(3, 1), Waypoint(3, 2)], 1, 10, "Two waypoints share frame 3"),
    ([Waypoint(4, 1, True, "[0.5, oops]"), Waypoint(8, 2)], 1, 10, "waypoint at frame 4 is not a list of numbers"),
    ([Waypoint(4, 1, True, "[]"), Waypoint(8, 2)], 1, 10, "waypoint at frame 4 is not a list of numbers"),
    ([Waypoint(4, 1, True, '{"z": 1}'), Waypoint(8, 2)], 1, 10, "waypoint at frame 4 is not a list of numbers"),
    ([Waypoint(4, 1), Waypoint(8, 2)], 10, 5, "frame range is empty"),
])
def test_walk_body_refuses_what_cannot_work(waypoints, start, end, message):
    with pytest.raises(WalkError, match=message):
        walk_body({"job_id": 1}, waypoints, start, end, "slerp", "linear", False, 1.0)


def test_a_stored_vector_is_ignored_unless_used():
    assert waypoint_payload([Waypoint(2, 8, False, "garbage")]) == [{"frame": 2, "seed": 8}]


def test_job_rows_from_the_server_list():
    jobs = [{"id": 3, "title": "cube", "state": "running", "step": 50, "steps": 200, "kimg": 0.8, "eta_s": 95.5,
             "error": None, "estimate": {**ESTIMATE, "step": 4, "eta_s": 120.0, "warning": None}},
            {"id": 4, "title": "", "state": "queued", "step": 0, "steps": 0, "kimg": None, "eta_s": None, "error": None,
             "estimate": None}]
    assert joblist.job_rows(jobs) == [
        {"job_id": "3", "title": "cube", "state": "running", "step": 50, "steps": 200, "kimg": 0.8,
         "progress": 0.25, "eta_s": 95.5, "error": "",
         "estimate": "about 2 min for 196 steps, 180 MB per snapshot, 2.0 GB at the end", "warning": ""},
        {"job_id": "4", "title": "4", "state": "queued", "step": 0, "steps": 0, "kimg": 0.0, "progress": 0.0,
         "eta_s": -1.0, "error": "", "estimate": "", "warning": ""},
    ]
    failed = {"id": 5, "title": "t", "state": "failed", "step": 3, "steps": 9, "kimg": 0.1, "eta_s": None,
              "error": "TrainingConfigError: dataset /srv/latent/datasets/ab/dataset.zip holds 2 images",
              "estimate": None}
    assert joblist.job_rows([failed])[0]["error"] == "dataset dataset.zip holds 2 images"


# A job's "estimate" as the server sends it (server/jobs/schemas.py Estimate)
ESTIMATE = {"step": 1, "sec_per_step": 28.9, "eta_s": 40.1 * 3600, "snapshot_bytes": 180_400_000,
            "snapshots_kept": 11, "disk_bytes": 1_984_400_000,
            "warning": "on this CPU the run needs about 40.1 h: choose a smaller preset (tiny or small) or "
                       "resolution, fewer steps, or train on a GPU"}


def test_the_estimate_says_time_and_disk_in_one_line():
    assert formatting.estimate_text(ESTIMATE, 5000) == (
        "about 40.1 h for 4999 steps, 180 MB per snapshot, 2.0 GB at the end")
    assert formatting.estimate_text(None, 5000) == ""  # not measured yet
    assert [formatting.duration(t) for t in (0.2, 89, 90, 3599, 5400, 47 * 3600, 3 * 86400)] == [
        "1 s", "89 s", "2 min", "60 min", "1.5 h", "47.0 h", "3.0 days"]
    assert [formatting.size(b) for b in (10, 12_345, 999_400, 999_999, 180_400_000, 999_700_000, 2_500_000_000)] == [
        "1 kB", "12 kB", "999 kB", "1 MB", "180 MB", "1.0 GB", "2.5 GB"]


def test_a_slow_run_warning_is_a_sentence_announced_once_while_the_job_runs():
    assert formatting.estimate_warning(ESTIMATE).startswith("On this CPU the run needs about 40.1 h: choose")
    assert formatting.estimate_warning({**ESTIMATE, "warning": None}) == ""
    assert formatting.estimate_warning(None) == ""
    slow = {"id": 1, "state": "running", "estimate": ESTIMATE}
    jobs = [slow, {"id": 2, "state": "running", "estimate": {**ESTIMATE, "warning": None}},
            {"id": 3, "state": "running", "estimate": None}, {"id": 4, "state": "completed", "estimate": ESTIMATE}]
    assert [j["id"] for j in joblist.warned_since({"1": "", "2": "", "3": ""}, jobs)] == [1]
    assert [j["id"] for j in joblist.warned_since({}, jobs)] == [1]  # a running job first seen now: news too
    # once the row holds the warning it is not news any more (the next poll, a reopened file)
    assert joblist.warned_since({"1": formatting.estimate_warning(ESTIMATE)}, jobs) == []
    lines = formatting.wrap(formatting.estimate_warning(ESTIMATE), 40)
    assert len(lines) > 2 and all(len(line) <= 40 for line in lines) and " ".join(lines).endswith("on a GPU")


def test_only_models_in_the_models_folder_can_be_deleted():
    models = [{"id": "scratch", "name": "From scratch", "kind": "scratch"},
              {"id": "job:1:2", "name": "cube step 2", "kind": "job"},
              {"id": "ffhq", "name": "FFHQ", "kind": "imported"}, {"id": "mine", "name": "", "kind": "checkpoint"}]
    assert formatting.library_models(models) == {"ffhq": "FFHQ", "mine": "mine"}


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


def test_a_job_that_ends_is_announced_once():
    jobs = [{"id": 1, "state": "completed"}, {"id": 2, "state": "failed"}, {"id": 3, "state": "cancelled"},
            {"id": 4, "state": "running"}, {"id": 5, "state": "completed"}]
    known = {"1": "running", "2": "queued", "3": "cancelling", "4": "queued", "5": "completed"}
    assert [j["id"] for j in joblist.finished_since(known, jobs)] == [1, 2, 3]
    # the next poll knows they ended: nothing more to say; a job never seen running is news to no one
    assert joblist.finished_since({"1": "completed", "2": "failed", "3": "cancelled"}, jobs) == []
    assert joblist.finished_since({}, jobs) == []
    # interrupted is no end: the server queues it again when it starts
    assert joblist.finished_since({"1": "running"}, [{"id": 1, "state": "interrupted"}]) == []


def test_the_model_in_use_is_said_with_its_step():
    assert joblist.newest_step([{"step": 20}, {"step": 60}, {"step": 40}]) == 60
    assert joblist.newest_step([]) is None
    assert joblist.model_choice("'cube'", [0, 20, 60], True, -1) == "'cube': latest snapshot (step 60 now)"
    assert joblist.model_choice("'cube'", [0, 20, 60], False, 20) == "'cube': step 20 (pinned)"
    assert joblist.model_choice("'cube'", [0, 20], False, 60) == "'cube': step 60 is not in its list: pick a snapshot"
    assert joblist.model_choice("'cube'", [], True, -1) == "'cube': no snapshot yet"


def test_generated_images_are_named_by_seed_and_model():
    assert formatting.still_name(13, {"job_id": 3, "step": 60}) == "Latent seed 13 (job 3 step 60)"
    assert formatting.still_name(13, {"model_id": "ffhq"}) == "Latent seed 13 (ffhq)"
    assert formatting.still_file(13, {"job_id": 3, "step": 60}) == "latent_job_3_step_60_seed000013.png"
    assert formatting.still_file(1, {"model_id": "../../etc/x y"}) == "latent_______etc_x_y_seed000001.png"
    assert len(formatting.still_name(1, {"model_id": "m" * 200})) == 63
    assert formatting.safe_name("Scene.001 (v2)") == "Scene_001__v2_" and formatting.safe_name("") == "untitled"


def test_server_text_loses_server_paths_and_exception_names():
    assert messages.server_text("ValueError: cannot read /srv/latent/jobs/3/run/a.png") == "cannot read a.png"
    assert messages.server_text(r"cannot read C:\data\latent\a.png") == "cannot read a.png"
    assert messages.server_text("see GET /api/v1/models, 1/2 done") == "see GET /api/v1/models, 1/2 done"
    assert messages.server_text(None) == ""


@pytest.mark.parametrize("error, expected", [
    ("", "The server could not prepare the dataset (the server's log has the details). Upload & Prepare again."),
    ("no images found in /srv/x/source (looked for .png, .jpg)",
     "The upload holds no images the server can read. Render the dataset (or pick a folder of images) again."),
    ("no usable images in upload: 4 duplicate, 1 odd_new_code",
     "None of the uploaded images could be used: 4 are duplicates, 1 odd new code. Change the renders or the "
     "dataset settings, then Upload & Prepare again."),
    ("the preparation process stopped unexpectedly (exit code -9)",
     "The server hit an internal problem while preparing the dataset (the server's log has the details). "
     "Upload & Prepare again; if it fails again, report it with the server's log."),
    ("DatasetError: background colour must look like #RRGGBB, got 'x'",
     "The server could not prepare the dataset: background colour must look like #RRGGBB, got 'x'"),
])
def test_dataset_failures_say_what_to_do(error, expected):
    assert messages.dataset_failure(error) == expected


def test_job_failures_and_refusals_in_words():
    assert messages.job_failure("training crashed: RuntimeError: CUDA out of memory") == (
        "Training stopped because of a problem on the server (the server's log has the details). "
        "Continue the job to retry.")
    assert messages.job_failure(None) == "Training stopped with an error (the server's log has the details)"
    assert messages.refusal(404, "snapshot_not_found", "job 1 has no snapshot at step 60") == (
        "The server refused: job 1 has no snapshot at step 60. Refresh Jobs and pick a snapshot the job has.")
    assert messages.refusal(500, "internal_error", "Traceback /srv/x.py").startswith("The server hit an internal")
    assert messages.refusal(503, "server_busy", "busy; try again in 5 seconds") == (
        "The server refused: busy; try again in 5 seconds")


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_estimates_from_the_pace_so_far():
    clock = FakeClock()
    pace = Estimate(clock)
    assert pace.text(0, 64, "view") == "0/64 views"
    assert pace.remaining(0, 64) is None
    clock.now += 6.0
    assert pace.text(5, 64, "view") == "5/64 views, 1.2 s per view, about 1m10s left"
    assert pace.remaining(64, 64) == 0.0
    assert pace.fraction_text(0.0, "preparing") == "preparing 0%"
    assert pace.fraction_text(0.25, "preparing") == "preparing 25%, about 0m18s left"


def test_polling_backs_off_while_the_server_is_away_and_resumes():
    sched = PollSchedule(interval=2.0, max_wait=30.0)
    assert not sched.due(0.0)
    sched.start(10.0)
    assert sched.due(10.0)
    assert [sched.failed(10.0) for _ in range(5)] == [4.0, 8.0, 16.0, 30.0, 30.0]
    assert sched.active and not sched.due(39.0) and sched.due(40.0)
    assert sched.succeeded(40.0, keep_following=True) is True  # the outage is over
    assert sched.due(42.0) and not sched.due(41.9)
    assert sched.succeeded(42.0, keep_following=False) is False
    assert not sched.active and not sched.due(1000.0)
