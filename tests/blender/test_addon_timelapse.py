"""The training chart and the time-lapse in the installed extension, in headless Blender,
against a real server training a tiny job: the chart follows the job while it runs and
after it ends; the time-lapse loads as a movie clip, as a Video Sequencer strip and as an
image sequence on the active object's material, and the clip survives save and reopen.
Every check is emitted as JSON and asserted here."""

from __future__ import annotations

import os

import pytest

from tests.support.addon_session import addon_script
from tests.support.blender import merged, run_blender
from tests.support.jobs import prepared_dataset
from tests.support.server_process import start_server, stop_server

pytestmark = [pytest.mark.blender, pytest.mark.e2e, pytest.mark.slow]

STEPS, EVERY = 40, 20  # snapshots (and time-lapse frames) at steps 0, 20 and 40

SCRIPT = r'''
import numpy as np
media = importlib.import_module(MOD + ".training_media")

def pixels(name):
    img = bpy.data.images.get(name)
    if img is None:
        return None
    values = np.empty(len(img.pixels), np.float32)
    img.pixels.foreach_get(values)
    return hashlib.sha256(values.tobytes()).hexdigest()

charts = []  # each chart the add-on loaded: for which step and state of the job, and what it showed
real_handler = media._chart_fetched
def spy(msg):
    real_handler(msg)
    name = media.CHART_IMAGE.format(msg.context["job_id"])
    img = bpy.data.images.get(name)
    charts.append({"step": msg.context["key"][0], "state": msg.context["key"][1], "found": msg.payload["path"] is not None,
                   "hash": pixels(name), "size": list(img.size) if img else None,
                   "file": os.path.relpath(msg.payload["path"], PROJECT) if msg.payload["path"] else None})
media._chart_fetched = spy

blend = os.path.join(PROJECT, "scene.blend")
bpy.ops.wm.save_as_mainfile(filepath=blend)
connect(URL, TOKEN)
emit({"greyed_before": poll_reason("load_timelapse")})
s.dataset_id, s.dataset_state, s.resolution = DATASET, "ready", "32"
s.job_title, s.preset, s.steps, s.batch, s.snapshot_every, s.augmentation = "tl", "tiny", STEPS, 4, EVERY, "off"
bpy.ops.latent.start_training()
idle = bridge.pump_until_idle(600)  # following lasts until the job has ended and its last chart is in
job = s.jobs[s.job_index]
job_id = job.job_id  # a plain string: the row itself is gone once another file is opened
emit({"trained": {"idle": idle, "state": job.state, "step": job.step, "snapshots": [x.step for x in s.snapshots]},
      "charts": charts})

# -- the time-lapse, three ways
scene = bpy.context.scene
bpy.ops.latent.load_timelapse(mode="MOVIECLIP")
bridge.pump_until_idle(120)
clip = bpy.data.movieclips.get(f"Latent Time-lapse job {job_id}")
emit({"clip": clip and {"frames": clip.frame_duration, "size": list(clip.size), "path": clip.filepath,
                        "fake_user": clip.use_fake_user}})
scene.frame_start = 5
bpy.ops.latent.load_timelapse(mode="VSE")
bridge.pump_until_idle(120)
strips = [{"name": st.name, "type": st.type, "channel": st.channel, "start": st.frame_final_start,
           "frames": st.frame_final_duration, "path": st.filepath} for st in scene.sequence_editor.strips_all]
emit({"strips": strips})
bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
bpy.ops.latent.load_timelapse(mode="SEQUENCE")
bridge.pump_until_idle(120)
img = bpy.data.images.get(f"Latent Time-lapse job {job_id}")
frames_dir = os.path.dirname(bpy.path.abspath(img.filepath))
probe = bpy.data.images.load(os.path.join(frames_dir, "frame_00003.png"))  # a sequence has no size until shown
tree = bpy.data.objects["Cube"].active_material.node_tree
node = tree.nodes.get("Latent Studio Time-lapse")
bsdf = [n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"][0]
user = node.image_user if node else None
emit({"sequence": img and {"source": img.source, "size": list(probe.size), "path": img.filepath,
                           "files": sorted(os.listdir(frames_dir)),
                           "node_image": node.image.name if node else None,
                           "linked": bool(node) and bsdf.inputs["Base Color"].links[0].from_node == node,
                           "user": user and [user.frame_start, user.frame_duration, user.frame_offset]},
      "folders": sorted(os.listdir(os.path.join(PROJECT, "latent_studio", "scene", "timelapse"))),
      "said": [t for lv, t in messages("INFO") if t.startswith("Time-lapse of")],
      "errors": [t for lv, t in messages() if lv == "ERROR"]})

# -- save, reopen: the clip and the sequence stay; the chart is fetched again (it is not saved)
bpy.ops.wm.save_mainfile()
bpy.ops.wm.open_mainfile(filepath=blend)
clip = bpy.data.movieclips.get(f"Latent Time-lapse job {job_id}")
reopened = {"clip_frames": clip.frame_duration if clip else None,
            "chart_saved": bpy.data.images.get(media.CHART_IMAGE.format(job_id)) is not None}
charts.clear()
connect(URL, TOKEN)
reopened["chart_again"] = pump_until(lambda: bpy.data.images.get(media.CHART_IMAGE.format(job_id)) is not None, 60)
emit({"reopened": reopened, "charts_after_reopen": charts})
'''


def test_chart_follows_training_and_the_timelapse_loads_three_ways(addon_zip, tmp_path):
    server = start_server(tmp_path / "data")
    project = tmp_path / "project"
    project.mkdir()
    try:
        dataset = prepared_dataset(server)
        r = merged(run_blender(addon_script(addon_zip, f"""
            URL, TOKEN, PROJECT, DATASET = {server.base_url!r}, {server.token!r}, {str(project)!r}, {dataset['id']!r}
            STEPS, EVERY = {STEPS}, {EVERY}
            """, SCRIPT), home=tmp_path / "home", timeout=900))
    finally:
        stop_server(server.process)
    assert r["greyed_before"] == "Select a training job (Training panel)"
    assert r["trained"] == {"idle": True, "state": "completed", "step": STEPS, "snapshots": [0, 20, 40]}

    # the chart: fetched while the job ran and once more at its end, and it changed as the job went on
    charts = [c for c in r["charts"] if c["found"]]
    assert len(charts) >= 2, r["charts"]
    assert any(c["state"] == "running" for c in charts), r["charts"]
    assert charts[-1]["state"] == "completed" and charts[-1]["step"] == STEPS
    assert charts[0]["hash"] != charts[-1]["hash"]
    assert all(c["size"] == [1200, 660] for c in charts)
    assert {c["file"] for c in charts} == {os.path.join("latent_studio", "scene", "charts", "chart_job1.png")}

    # a frame per snapshot: 128 px grids (4x4 of 32 px) shown at 256 px over a 20 px caption strip
    assert r["clip"] == {"frames": 3, "size": [256, 276], "fake_user": True,
                         "path": "//latent_studio/scene/timelapse/job1_001/timelapse_job1.mp4"}
    assert len(r["strips"]) == 1
    strip = r["strips"][0]
    assert strip["type"] == "MOVIE" and strip["channel"] == 1 and strip["start"] == 5 and strip["frames"] == 3
    assert strip["name"] == "Latent Time-lapse job 1"
    assert strip["path"] == "//latent_studio/scene/timelapse/job1_002/timelapse_job1.mp4"
    seq = r["sequence"]
    assert seq["source"] == "SEQUENCE" and seq["size"] == [256, 276]
    assert seq["path"] == "//latent_studio/scene/timelapse/job1_003/frame_00001.png"
    assert seq["files"] == ["frame_00001.png", "frame_00002.png", "frame_00003.png"]
    assert seq["node_image"] == "Latent Time-lapse job 1" and seq["linked"]
    assert seq["user"] == [5, 3, 0]
    assert r["folders"] == ["job1_001", "job1_002", "job1_003"]
    assert len(r["said"]) == 3 and "movie clip" in r["said"][0] and "Video Sequencer" in r["said"][1]
    assert "on 'Cube'" in r["said"][2]
    assert r["errors"] == []

    assert r["reopened"] == {"clip_frames": 3, "chart_saved": False, "chart_again": True}
    assert r["charts_after_reopen"] and r["charts_after_reopen"][-1]["state"] == "completed"
