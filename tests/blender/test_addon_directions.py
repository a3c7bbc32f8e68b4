"""Semantic directions in headless Blender against the real server: Fetch Directions (list and
preview strips), amounts as ordinary animatable scene properties, Bake Walk sending exactly
the evaluated F-curves of every frame (read back from the server's walk record), removing a
direction without its keys landing on another, and drivers followed frame by frame."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.support.addon_session import addon_script
from tests.support.blender import merged, run_blender
from tests.support.jobs import write_tiny_base_model
from tests.support.server_process import start_server, stop_server

pytestmark = [pytest.mark.blender, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("directions") / "data"
    write_tiny_base_model(data / "models" / "tinybase.safetensors")
    server = start_server(data)
    yield server
    stop_server(server.process)


def _walk_params(server, walk_id: int) -> dict:
    """The walk's record as the server stored it."""
    db = sqlite3.connect(f"file:{server.data_dir / 'latent-studio.sqlite3'}?mode=ro", uri=True)
    try:
        (params,) = db.execute("SELECT params FROM walks WHERE id=?", (walk_id,)).fetchone()
    finally:
        db.close()
    return json.loads(params)


def test_keyframed_directions_are_baked_exactly_as_evaluated(real_server, addon_zip, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    r = merged(run_blender(addon_script(addon_zip, f"""
        URL, TOKEN, PROJECT = {real_server.base_url!r}, {real_server.token!r}, {str(project)!r}
        """, r'''
        directions = importlib.import_module(MOD + ".directions")
        scene = bpy.context.scene
        opts = scene.latent_direction_options
        items = scene.latent_directions
        bpy.ops.wm.save_as_mainfile(filepath=os.path.join(PROJECT, "scene.blend"))
        emit({"connection": connect(URL, TOKEN)})
        bpy.ops.latent.refresh_models()
        bridge.pump_until_idle(60)
        s.model_source = "BASE"
        emit({"no_model": poll_reason("fetch_directions"), "nothing_to_remove": poll_reason("remove_direction")})
        s.base_model = "tinybase"

        # -- fetch: 3 coarse directions, then 2 fine ones join them
        opts.layers, opts.count, opts.preview_amount = "coarse", 3, 4.0
        bpy.ops.latent.fetch_directions()
        bridge.pump_until_idle(120)
        items[0].amount = 2.5  # set before the next fetch: it must stay
        opts.layers, opts.count = "fine", 2
        bpy.ops.latent.fetch_directions()
        bridge.pump_until_idle(120)
        emit({"fetched": [[it.direction_id, it.name, it.layer_start, it.layer_end, os.path.isfile(it.preview),
                           it.model] for it in items],
              "kept_amount": items[0].amount,
              "fetch_report": [t for lv, t in messages("INFO") if "directions of" in t][-1:],
              "errors": messages("ERROR")})
        # fetching coarse again updates in place: no duplicates
        opts.layers, opts.count = "coarse", 2
        bpy.ops.latent.fetch_directions()
        bridge.pump_until_idle(120)
        emit({"after_refetch": [it.direction_id for it in items]})

        # -- key the amounts like an artist: I over the slider at two frames, one key LINEAR
        scene.frame_start, scene.frame_end = 1, 8
        def key(index, frame, value):
            items[index].amount = value
            assert scene.keyframe_insert(f"latent_directions[{index}].amount", frame=frame)
        key(0, 1, 0.0); key(0, 6, 6.0)             # coarse:0, Bezier ease
        key(3, 2, -3.0); key(3, 5, 4.0)            # fine:0
        fc3 = directions.amount_curve(scene, 3)
        fc3.keyframe_points[0].interpolation = "LINEAR"
        items[1].amount = 1.5                      # coarse:1: constant, not keyed
        items[2].amount = 0.0                      # coarse:2: not moving, not sent
        key(4, 1, 0.0)                             # fine:1: a key dragged past the range in the Graph Editor
        fc4 = directions.amount_curve(scene, 4)
        fc4.keyframe_points.insert(8, 150.0)
        fc4.update()
        frames = range(1, 9)
        evaluated = {it.direction_id: ([directions.amount_curve(scene, i).evaluate(f) for f in frames]
                                       if directions.amount_curve(scene, i) else None)
                     for i, it in enumerate(items)}
        shown = {it.direction_id: [] for it in items}  # what Blender itself shows on each frame
        for f in frames:
            scene.frame_set(f)
            for it in items:
                shown[it.direction_id].append(it.amount)
        scene.frame_set(3)
        sampled = directions.sample(scene, 1, 8)

        # -- bake the walk
        for frame, seed in ((1, 1), (8, 2)):
            scene.frame_set(frame)
            bpy.ops.latent.add_waypoint(seed=seed)
        scene.frame_set(3)
        bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
        bpy.data.objects["Cube"].select_set(True)
        bpy.ops.latent.bake_walk()
        bridge.pump_until_idle(300)
        emit({"evaluated": evaluated, "shown": shown, "sampled": sampled, "walk_id": s.walk_id,
              "frame_after": scene.frame_current, "bake_errors": messages("ERROR"),
              "walk_image": s.walk_image})

        # -- remove coarse:1: the keys of fine:0 and fine:1 move down with them
        before = [directions.amount_curve(scene, i).evaluate(4) if directions.amount_curve(scene, i) else None
                  for i in range(len(items))]
        try:
            bpy.ops.latent.remove_direction(index=9)
            bad_remove = None
        except RuntimeError as exc:
            bad_remove = str(exc)
        bpy.ops.latent.remove_direction(index=1)
        after = [directions.amount_curve(scene, i).evaluate(4) if directions.amount_curve(scene, i) else None
                 for i in range(len(items))]
        emit({"removed": {"ids": [it.direction_id for it in items], "before": before, "after": after,
                          "bad": bad_remove}})

        # -- a driver on an amount: sampled by stepping through the frames
        fcd = items[1].driver_add("amount")
        fcd.driver.type = "SCRIPTED"
        fcd.driver.expression = "frame / 2"
        scene.frame_set(5)
        emit({"driven": directions.sample(scene, 1, 4)[1][2], "frame_after_driver": scene.frame_current})
        '''), home=tmp_path / "home", timeout=900))

    assert r["connection"].startswith("Server "), r["connection"]
    assert r["no_model"].startswith("Choose a base model") and r["nothing_to_remove"] == "There is no direction to remove"
    assert not r["errors"], r["errors"]
    fetched = r["fetched"]
    assert [f[0] for f in fetched] == ["coarse:0", "coarse:1", "coarse:2", "fine:0", "fine:1"]
    assert [f[1] for f in fetched] == ["Coarse 1", "Coarse 2", "Coarse 3", "Fine 1", "Fine 2"]
    assert [f[2:4] for f in fetched] == [[0, 3]] * 3 + [[5, 8]] * 2  # the 32 px model's ranges
    assert all(f[4] for f in fetched) and all(f[5] == "tinybase" for f in fetched)
    assert r["kept_amount"] == 2.5
    assert r["after_refetch"] == ["coarse:0", "coarse:1", "coarse:2", "fine:0", "fine:1"]
    assert r["fetch_report"] and "2 fine directions of tinybase: 2 new, 0 updated" in r["fetch_report"][0]

    # what Bake Walk samples is the F-curves' evaluation, clamped as Blender clamps what it shows
    ev, shown = r["evaluated"], r["shown"]
    sampled = {d_id: amounts for _label, d_id, amounts in r["sampled"]}
    assert sampled["coarse:0"] == ev["coarse:0"] == shown["coarse:0"]
    assert sampled["fine:0"] == ev["fine:0"] == shown["fine:0"]
    assert ev["fine:0"][:4] == [-3.0, -3.0, pytest.approx(-2.0 / 3.0), pytest.approx(5.0 / 3.0)]  # linear from its key
    assert max(ev["fine:1"]) == 150.0 and sampled["fine:1"] == shown["fine:1"] and max(sampled["fine:1"]) == 100.0
    assert sampled["coarse:1"] == [1.5] * 8 and sampled["coarse:2"] == [0.0] * 8
    assert r["frame_after"] == 3 and not r["bake_errors"], r["bake_errors"]
    assert r["walk_image"]

    # the server's record of the walk holds exactly those amounts, frame by frame
    stored = _walk_params(real_server, int(r["walk_id"]))["directions"]
    assert [d["id"] for d in stored] == ["coarse:0", "coarse:1", "fine:0", "fine:1"]  # coarse:2 never moves
    for d in stored:
        assert d["amounts"] == sampled[d["id"]], d["id"]
    listing = {}
    for layers in ("coarse", "fine"):
        import requests

        body = requests.get(real_server.api(f"models/tinybase/directions?layers={layers}&k=3"),
                            headers=real_server.headers, timeout=60).json()
        listing.update({d["id"]: d for d in body["directions"]})
    for d in stored:
        assert d["layers"] == listing[d["id"]]["layers"] and d["vector"] == listing[d["id"]]["vector"]

    removed = r["removed"]
    assert removed["ids"] == ["coarse:0", "coarse:2", "fine:0", "fine:1"]
    assert "Choose a direction to remove" in removed["bad"]
    assert removed["after"] == [removed["before"][0], removed["before"][2], removed["before"][3], removed["before"][4]]
    assert r["driven"] == pytest.approx([0.5, 1.0, 1.5, 2.0], abs=1e-5) and r["frame_after_driver"] == 5
