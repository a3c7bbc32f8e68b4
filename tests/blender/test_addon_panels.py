"""Every panel's draw() against a recording layout, in the installed extension in headless Blender.

The recorder stands in for bpy's UILayout: it records each call and checks it the way
Blender would only at draw time in a real window, namely that `prop(data, name)` names a
property `data` has, `operator(idname)` names a registered operator (and any property set
on its result exists), layout methods, keywords and icons exist. The panels are drawn in
several states (no connection; a running task, a dataset, jobs, snapshots, waypoints) and a
line trace makes sure every statement of every draw() ran in at least one of them.
"""

from __future__ import annotations

import textwrap

import pytest

from addon.core import limits
from tests.support.blender import run_blender

pytestmark = pytest.mark.blender

DRAW_SCRIPT = textwrap.dedent(
    r'''
    import ast, importlib, inspect, os, sys, threading, types

    MOD = "bl_ext.user_default.latent_studio"
    install_extension(ADDON_ZIP)
    bridge = importlib.import_module(MOD + ".bridge")
    panels = importlib.import_module(MOD + ".panels")
    preferences = importlib.import_module(MOD + ".preferences")
    render_dataset = importlib.import_module(MOD + ".render_dataset")
    watch = importlib.import_module(MOD + ".watch")
    UI_FUNCS = bpy.types.UILayout.bl_rna.functions
    UI_PROPS = bpy.types.UILayout.bl_rna.properties
    ICONS = set(UI_FUNCS["label"].parameters["icon"].enum_items.keys())
    directions = importlib.import_module(MOD + ".directions")
    panels_directions = importlib.import_module(MOD + ".panels_directions")
    panels_projection = importlib.import_module(MOD + ".panels_projection")
    UI_FILES = (panels.__file__, preferences.__file__, panels_directions.__file__, panels_projection.__file__)
    problems = []

    def caller():
        """file:line of the draw code that made the call being checked."""
        for info in inspect.stack(0)[2:]:
            if info.filename in UI_FILES or info.function == "broken_draw":
                return f"{os.path.basename(info.filename)}:{info.lineno}"
        return "?"

    def has_prop(data, name):
        rna = getattr(data, "bl_rna", None)
        return rna is not None and name in rna.properties.keys()

    class OperatorProperties:
        """What layout.operator() returns: setting a property checks that it exists."""
        def __init__(self, idname, rna):
            object.__setattr__(self, "_idname", idname)
            object.__setattr__(self, "_rna", rna)
        def __setattr__(self, name, value):
            if self._rna is None:
                return
            prop = self._rna.properties.get(name)
            if prop is None:
                problems.append(f"{caller()}: operator {self._idname} has no property {name!r}")
            elif prop.type == "ENUM" and value not in prop.enum_items.keys():
                problems.append(f"{caller()}: {self._idname}.{name} has no item {value!r}")

    def operator_rna(idname):
        module, _, name = idname.partition(".")
        try:
            return getattr(getattr(bpy.ops, module), name).get_rna_type()
        except (AttributeError, KeyError):
            return None

    class Layout:
        """Records UILayout calls; every check failure goes to `problems`."""
        def __getattr__(self, name):
            fn = UI_FUNCS.get(name)
            if fn is None:
                problems.append(f"{caller()}: UILayout has no {name!r}")
                return lambda *a, **k: Layout()
            return lambda *args, **kwargs: self._call(name, fn, args, kwargs)

        def __setattr__(self, name, value):
            if name not in UI_PROPS.keys():
                problems.append(f"{caller()}: UILayout has no attribute {name!r}")

        def _call(self, name, fn, args, kwargs):
            inputs = [p.identifier for p in fn.parameters if not p.is_output]
            if len(args) > len(inputs):
                problems.append(f"{caller()}: {name}() takes {len(inputs)} arguments, got {len(args)}")
            params = dict(zip(inputs, args))
            for key, value in kwargs.items():
                if key not in inputs:
                    problems.append(f"{caller()}: {name}() has no keyword {key!r}")
                params[key] = value
            if "icon" in params and params["icon"] not in ICONS:
                problems.append(f"{caller()}: no icon {params['icon']!r}")
            if name == "prop" and not has_prop(params.get("data"), params.get("property")):
                problems.append(f"{caller()}: {type(params.get('data')).__name__} has no property "
                                f"{params.get('property')!r}")
            if name == "template_list":
                if not isinstance(getattr(bpy.types, params["listtype_name"], None), type):
                    problems.append(f"{caller()}: no UIList {params['listtype_name']!r}")
                for data, prop in (("dataptr", "propname"), ("active_dataptr", "active_propname")):
                    if not has_prop(params[data], params[prop]):
                        problems.append(f"{caller()}: template_list: no property {params[prop]!r}")
            if name == "operator":
                rna = operator_rna(params["operator"])
                if rna is None:
                    problems.append(f"{caller()}: operator {params['operator']!r} is not registered")
                return OperatorProperties(params["operator"], rna)
            if name == "icon":
                return 0
            return Layout()

    class FakePanel:
        def __init__(self, target=None):
            object.__setattr__(self, "layout", Layout())
            object.__setattr__(self, "_target", target)
        def __getattr__(self, name):  # preferences draw() reads its own properties
            return getattr(self._target, name)

    # -- which draw statements ran (a line trace over the UI modules) ---------------------
    ran = set()
    def tracer(frame, event, arg):
        if frame.f_code.co_filename not in UI_FILES:
            return None
        def lines(frame, event, arg):
            if event == "line":
                ran.add((frame.f_code.co_filename, frame.f_lineno))
            return lines
        return lines

    def draw_statements():
        out = {}
        for path in UI_FILES:
            tree = ast.parse(open(path).read())
            for fn in ast.walk(tree):
                if isinstance(fn, ast.FunctionDef) and fn.name in ("draw", "draw_item"):
                    for stmt in ast.walk(fn):
                        if isinstance(stmt, ast.stmt) and stmt is not fn:
                            out[(path, stmt.lineno)] = ast.get_source_segment(open(path).read(), stmt).splitlines()[0]
        return out

    context = bpy.context
    s = context.scene.latent
    status = context.window_manager.latent_status
    prefs = context.preferences.addons[MOD].preferences
    panel_classes = [getattr(bpy.types, n) for n in dir(bpy.types) if n.startswith("LATENT_PT_")]
    list_classes = {n: getattr(bpy.types, n) for n in dir(bpy.types) if n.startswith("LATENT_UL_")}

    def draw_everything():
        sys.settrace(tracer)
        try:
            for cls in panel_classes:
                cls.draw(FakePanel(), context)
            type(prefs).draw(FakePanel(prefs), context)
            for item in s.jobs:
                list_classes["LATENT_UL_jobs"].draw_item(None, context, Layout(), s, item, 0, s, "job_index", 0)
            for item in s.snapshots:
                list_classes["LATENT_UL_snapshots"].draw_item(None, context, Layout(), s, item, 0, s,
                                                              "snapshot_index", 0)
            for item in s.waypoints:
                list_classes["LATENT_UL_waypoints"].draw_item(None, context, Layout(), s, item, 0, s,
                                                              "waypoint_index", 0)
        finally:
            sys.settrace(None)

    # 1. a fresh, unsaved file: not connected, nothing uploaded, no jobs, orbit renders
    draw_everything()

    # 2. busy: a message, a running task, a dataset render, a prepared dataset, jobs, snapshots,
    #    sample and generated images, waypoints (one with a stored vector)
    status.message, status.message_level = "Dataset 1 ready", "WARNING"
    gate = threading.Event()
    def waiting(task):
        task.progress(0.5, "half way")
        gate.wait(30)
    bridge.runner.submit("wait", waiting, label="Wait")
    bridge.pump()
    s.source = "TIMELINE"
    s.temp_dir = "/tmp/latent-studio-x"  # the unsaved file chose a temporary folder
    render_dataset.current = types.SimpleNamespace(index=1, total=4, progress_text=lambda: "1/4 views")
    s.dataset_id, s.dataset_state = "abc", "ready"
    s.dataset_summary, s.dataset_rejected = "3 accepted, 1 rejected", "a.png: too small"
    s.preview_image = bpy.data.images.new("preview", 4, 4).name
    for i, state in enumerate(("running", "failed")):
        job = s.jobs.add()
        job.job_id, job.title, job.state, job.step, job.steps, job.eta_s = str(i + 1), f"job {i}", state, 5, 10, 70.0
    s.jobs[1].error = "Training stopped because of a problem on the server"
    s.jobs[1].estimate = "about 40.1 h for 4999 steps, 180 MB per snapshot, 2.0 GB at the end"
    s.jobs[1].warning = "On this CPU the run needs about 40.1 h: choose a smaller preset (tiny or small)"
    s.job_index = 1
    snap = s.snapshots.add()
    snap.step, snap.kimg = 10, 0.04
    s.sample_image = bpy.data.images.new("grid", 4, 4).name
    s.sample_step = 10
    s.training_notice, s.notice_image = "Training 'job 0' finished", bpy.data.images.new("grid 1", 4, 4).name
    s.walk_image, s.walk_id = "Latent Walk Scene_001", "4"  # its server copy can be deleted
    watch.schedule.stop()  # selecting job 2 asked for its snapshots: no server here to ask
    s.last_image = bpy.data.images.new("Latent seed 3", 4, 4).name
    bpy.ops.latent.add_waypoint(seed=1)
    context.scene.frame_set(9)
    bpy.ops.latent.add_waypoint(seed=2)
    s.waypoints[1].use_vector = True
    s.model_source = "BASE"
    for direction_id, preview in (("coarse:0", "/tmp/strip.png"), ("fine:1", "")):  # one with a preview strip
        item = context.scene.latent_directions.add()
        item.direction_id, item.name, item.preview = direction_id, direction_id, preview
    directions.preview_icon = lambda item: 7 if item.preview else 0  # headless Blender makes no icons
    draw_everything()
    render_dataset.current = None
    gate.set()
    bridge.pump_until_idle(10)

    # 3. an image folder as the source, every message level, a job's snapshots as the model
    s.source = "FOLDER"
    s.model_source = "JOB"
    s.sample_step = -1
    for level in ("ERROR", "INFO"):
        status.message_level = level
        draw_everything()

    # 4. the delete buttons ask first: what invoke() passes to invoke_confirm must exist there
    confirm = {p.identifier: p for p in bpy.types.WindowManager.bl_rna.functions["invoke_confirm"].parameters}
    asked = {}
    class ConfirmRecorder:
        def invoke_confirm(self, operator, event, **kwargs):
            for key, value in kwargs.items():
                if key not in confirm:
                    problems.append(f"invoke_confirm() has no keyword {key!r}")
                elif confirm[key].type == "ENUM" and value not in confirm[key].enum_items.keys():
                    problems.append(f"invoke_confirm() {key} has no item {value!r}")
            asked[operator.bl_label] = [kwargs.get("title"), kwargs.get("message"), kwargs.get("confirm_text")]
            return {"RUNNING_MODAL"}
    importlib.import_module(MOD + ".properties").set_model_items(
        [{"id": "ffhq", "name": "FFHQ", "kind": "imported", "resolution": 32}], s)
    s.base_model = "ffhq"
    asking = types.SimpleNamespace(window_manager=ConfirmRecorder(), scene=context.scene)
    for name in ("delete_job", "delete_model", "delete_walk"):
        cls = getattr(bpy.types, "LATENT_OT_" + name)
        operator = types.SimpleNamespace(bl_label=cls.bl_label, question=lambda c, cls=cls: cls.question(None, c))
        cls.invoke(operator, asking, None)
    emit({"confirm": asked})

    missing = {f"{os.path.basename(p)}:{n}": text for (p, n), text in draw_statements().items() if (p, n) not in ran}
    # the online-access hint shows only when Blender's online access is off
    if bpy.app.online_access:
        missing = {k: v for k, v in missing.items() if not (k.startswith("preferences.py") and "layout.label" in v)}
    emit({"problems": problems, "missing": missing, "statements": len(draw_statements()),
          "panels": sorted(c.__name__ for c in panel_classes), "lists": sorted(list_classes)})

    # the recorder itself catches each kind of mistake
    problems.clear()
    def broken_draw(self, context):
        self.layout.prop(context.scene.latent, "no_such_property")
        self.layout.operator("latent.no_such_operator")
        self.layout.operator("latent.job_action").actoin = "cancel"
        self.layout.operator("latent.job_action").action = "explode"
        self.layout.label(text="x", icon="NO_SUCH_ICON")
        self.layout.lable(text="x")
        self.layout.row(algin=True)
        self.layout.template_list("LATENT_UL_nothing", "", s, "jobs", s, "job_index")
    broken_draw(FakePanel(), context)
    emit({"broken": problems})

    # the enums the server validates are built from addon/core/limits.py
    props = s.bl_rna.properties
    emit({"enums": {n: list(props[n].enum_items.keys())
                    for n in ("crop", "resolution", "preset", "augmentation", "interpolation", "easing")},
          "ranges": {n: [props[n].hard_min, props[n].hard_max] for n in ("psi", "walk_psi", "count", "gen_seed", "batch")}})
    '''
)


def test_every_panel_draws_only_existing_properties_and_operators(addon_zip, tmp_path):
    r = {}
    for item in run_blender(f"ADDON_ZIP = {str(addon_zip)!r}\n" + DRAW_SCRIPT, home=tmp_path / "home", timeout=240):
        r.update(item)
    assert r["problems"] == []
    assert r["missing"] == {}, "draw() statements no state exercised"
    assert r["statements"] > 80
    assert r["panels"] == ["LATENT_PT_dataset", "LATENT_PT_directions", "LATENT_PT_explore", "LATENT_PT_generate", "LATENT_PT_main",
                           "LATENT_PT_training", "LATENT_PT_walk",
                           "LATENT_PT_waypoint_from_image"]
    assert r["lists"] == ["LATENT_UL_jobs", "LATENT_UL_snapshots", "LATENT_UL_waypoints"]
    broken = "\n".join(r["broken"])
    for expected in ("no property 'no_such_property'", "'latent.no_such_operator' is not registered",
                     "latent.job_action has no property 'actoin'", "job_action.action has no item 'explode'",
                     "no icon 'NO_SUCH_ICON'", "UILayout has no 'lable'", "row() has no keyword 'algin'",
                     "no UIList 'LATENT_UL_nothing'"):
        assert expected in broken, broken
    assert len(r["broken"]) == 8
    assert r["confirm"] == {
        "Delete Job": ["Delete Job", "Delete job 'job 1' on the server, with all its snapshots and sample grids? "
                       "Images already in Blender stay.", "Delete"],
        "Delete Model": ["Delete Model", "Delete base model 'FFHQ' from the server's models folder, with the .pkl it "
                         "came from? Jobs trained from it keep their snapshots.", "Delete"],
        "Delete Server Copy": ["Delete Server Copy", "Delete walk 4 on the server? Its frames in Blender "
                               "(Latent Walk Scene_001) stay and keep playing.", "Delete"]}

    # the enums and ranges the server validates are built from addon/core/limits.py
    assert r["enums"] == {
        "crop": list(limits.values(limits.CROP_MODES)), "resolution": [str(x) for x in limits.RESOLUTIONS],
        "preset": list(limits.values(limits.PRESETS)), "augmentation": list(limits.values(limits.AUGMENTATIONS)),
        "interpolation": list(limits.values(limits.INTERPOLATIONS)), "easing": list(limits.values(limits.EASINGS)),
    }
    assert r["ranges"] == {"psi": [limits.PSI_MIN, limits.PSI_MAX], "walk_psi": [limits.PSI_MIN, limits.PSI_MAX],
                           "count": [1, limits.SEEDS_PER_REQUEST], "gen_seed": [0, limits.MAX_SEED],
                           "batch": [1, limits.MAX_BATCH]}
