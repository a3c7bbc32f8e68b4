"""Sidebar panels in the 3D Viewport, tab "Latent"."""

from __future__ import annotations

import bpy

from . import bridge, render_dataset, training_media, watch
from .core.formatting import eta, wrap
from .core.joblist import model_choice


def _image_thumb(layout, img):
    layout.template_icon(icon_value=layout.icon(img), scale=8.0)
    layout.label(text=f"Image: {img.name}", icon="IMAGE_DATA")


def _wrapped(layout, text, icon):
    """A long sentence as several labels (a label never wraps), the icon on the first."""
    col = layout.column(align=True)
    for i, line in enumerate(wrap(text)):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")


class _LatentPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Latent"


class LATENT_UL_jobs(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0, flt_flag=0):
        row = layout.row(align=True)
        row.label(text=item.title or item.job_id)
        row.label(text=item.state)
        row.prop(item, "progress", text=f"{item.step}/{item.steps}", slider=True, emboss=False)
        row.label(text=eta(item.eta_s))


class LATENT_UL_snapshots(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0, flt_flag=0):
        pinned = not data.use_latest and item.step == data.pinned_step
        layout.label(text=f"step {item.step}  ({item.kimg:.1f} kimg)", icon="PINNED" if pinned else "NONE")


class LATENT_UL_waypoints(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0, flt_flag=0):
        row = layout.row(align=True)
        row.prop(item, "frame", text="Frame", emboss=False)
        if item.use_vector:
            row.label(text="stored w" if item.vector_space == "W" else "stored vector")
        else:
            row.prop(item, "seed", text="Seed", emboss=False)
        row.label(text=f"mix {item.mix_seed} from {item.mix_from_layer}" if item.mix else "")


class LATENT_PT_main(_LatentPanel, bpy.types.Panel):
    bl_label = "Latent Studio"
    bl_idname = "LATENT_PT_main"

    def draw(self, context):
        layout = self.layout
        status = context.window_manager.latent_status
        row = layout.row(align=True)
        row.label(text=status.connection, icon="WORLD")
        row.operator("latent.check_connection", text="", icon="FILE_REFRESH")
        if status.message:
            icon = {"ERROR": "ERROR", "WARNING": "INFO"}.get(status.message_level, "CHECKMARK")
            layout.label(text=status.message[:120], icon=icon)
        for task in bridge.runner.active():
            row = layout.row(align=True)
            fraction, text = bridge.progress.get(task.id, (task.fraction, task.status))
            row.progress(factor=fraction, text=f"{task.label}: {text}")
            row.operator("latent.cancel_task", text="", icon="CANCEL").task_id = task.id
        if not bpy.data.filepath:
            _unsaved_file(layout, context.scene.latent)


def _unsaved_file(layout, s):
    """An unsaved file has no folder for the add-on's files: say so, and offer both ways out."""
    box = layout.box()
    if s.temp_dir:
        box.label(text="Unsaved file: files go to a temporary folder", icon="INFO")
        box.label(text=s.temp_dir)
        box.label(text="Saving the .blend copies them beside it")
        return
    box.label(text="Unsaved file: nowhere to keep renders and walks", icon="ERROR")
    row = box.row(align=True)
    row.operator("wm.save_as_mainfile", text="Save .blend", icon="FILE_TICK")
    row.operator("latent.use_temp_folder", icon="FILE_FOLDER")


class LATENT_PT_dataset(_LatentPanel, bpy.types.Panel):
    bl_label = "Dataset"
    bl_parent_id = "LATENT_PT_main"

    def draw(self, context):
        layout = self.layout
        s = context.scene.latent
        layout.prop(s, "source")
        layout.prop(s, "dataset_dir")
        if s.source == "ORBIT":
            col = layout.column(align=True)
            col.prop(s, "view_count")
            col.prop(s, "spacing")
            row = col.row(align=True)
            row.prop(s, "azimuth_min")
            row.prop(s, "azimuth_max")
            row = col.row(align=True)
            row.prop(s, "elevation_min")
            row.prop(s, "elevation_max")
            col.prop(s, "distance")
            col.prop(s, "distance_jitter")
            row = col.row(align=True)
            row.prop(s, "random_light_rotation")
            row.prop(s, "random_world_rotation")
            col.prop(s, "seed")
        if s.source != "FOLDER":
            row = layout.row(align=True)
            row.prop(s, "render_size")
            row.prop(s, "render_samples")
            session = render_dataset.current
            if session is not None:
                layout.progress(factor=session.index / max(1, session.total),
                                text=f"{session.progress_text()} (Esc cancels)")
            else:
                samples = s.render_samples or "the scene's"
                views = s.view_count if s.source == "ORBIT" else "timeline"
                layout.label(text=f"{views} views, {s.render_size} px, {samples} samples each", icon="TIME")
                layout.operator("latent.render_dataset", icon="RENDER_STILL")
        row = layout.row(align=True)
        row.prop(s, "resolution")
        row.prop(s, "crop")
        layout.operator("latent.upload_dataset", icon="EXPORT")
        if s.dataset_id:
            row = layout.row(align=True)
            row.label(text=f"Dataset {s.dataset_id}: {s.dataset_state}")
            row.operator("latent.delete_dataset", text="", icon="TRASH")
        if s.dataset_summary:
            layout.label(text=s.dataset_summary)
            for line in s.dataset_rejected.splitlines()[:5]:
                layout.label(text=line, icon="ERROR")
        img = bpy.data.images.get(s.preview_image) if s.preview_image else None
        if img is not None:
            _image_thumb(layout, img)


class LATENT_PT_training(_LatentPanel, bpy.types.Panel):
    bl_label = "Training"
    bl_parent_id = "LATENT_PT_main"

    def draw(self, context):
        layout = self.layout
        s = context.scene.latent
        row = layout.row(align=True)
        row.prop(s, "base_model")
        row.operator("latent.refresh_models", text="", icon="FILE_REFRESH")
        row = layout.row(align=True)
        row.operator("latent.refresh_models", text="Rescan Folder", icon="FILE_FOLDER").rescan = True
        row.operator("latent.delete_model", icon="TRASH")
        col = layout.column(align=True)
        col.prop(s, "job_title")
        col.prop(s, "preset")
        col.prop(s, "steps")
        col.prop(s, "batch")
        col.prop(s, "snapshot_every")
        col.prop(s, "keep_snapshots")
        col.prop(s, "augmentation")
        col.prop(s, "precision")
        col.prop(s, "gpus")
        col.prop(s, "mirror")
        col.prop(s, "tileable")
        layout.operator("latent.start_training", icon="PLAY")
        row = layout.row()
        row.label(text="Jobs")
        row.operator("latent.refresh_jobs", text="", icon="FILE_REFRESH")
        layout.template_list("LATENT_UL_jobs", "", s, "jobs", s, "job_index", rows=3)
        row = layout.row(align=True)
        row.operator("latent.job_action", text="Cancel", icon="CANCEL").action = "cancel"
        row.operator("latent.job_action", text="Continue", icon="PLAY").action = "resume"
        row.operator("latent.delete_job", text="Delete", icon="TRASH")
        job = watch.selected_job(s)
        if job is not None and job.error:
            layout.label(text=job.error, icon="ERROR")
        if job is not None and job.warning:  # a run that would take very long: before anything else
            _wrapped(layout.box(), job.warning, "ERROR")
        if job is not None and job.estimate:
            _wrapped(layout, f"Estimate: {job.estimate}", "TIME")
        if job is not None:
            layout.label(text=f"Snapshots of '{job.title}'")
            layout.template_list("LATENT_UL_snapshots", "", s, "snapshots", s, "snapshot_index", rows=3)
            layout.prop(s, "use_latest")
        img = bpy.data.images.get(s.sample_image) if s.sample_image else None
        if img is not None:
            layout.label(text=f"Samples at step {s.sample_step}" if s.sample_step >= 0 else "Samples")
            _image_thumb(layout, img)
        training_media.draw(layout, s)  # the progress chart and the time-lapse buttons
        if s.training_notice:
            _training_notice(layout, s)


def _training_notice(layout, s):
    box = layout.box()
    row = box.row()
    row.label(text=s.training_notice, icon="INFO")
    row.operator("latent.dismiss_notice", text="", icon="X")
    img = bpy.data.images.get(s.notice_image) if s.notice_image else None
    if img is not None and img.name != s.sample_image:  # the selected job's samples are shown above
        _image_thumb(box, img)


def _seamless(layout, s, prefix):
    """The Seamless choice and Size multiplier of Generate (prefix "gen") or Bake Walk ("walk")."""
    row = layout.row(align=True)
    row.prop(s, f"{prefix}_seamless")
    sub = row.row(align=True)
    sub.active = getattr(s, f"{prefix}_seamless") != "OFF"  # a bigger image exists only seamless
    sub.prop(s, f"{prefix}_size_multiplier", text="Size")


def _material_options(layout, s):
    """What Apply to Material and Bake Walk build besides Base Color (no branches: every
    option is always shown, greyed out while it does not apply)."""
    m = s.material
    box = layout.box()
    box.label(text="Material", icon="MATERIAL")
    row = box.row(align=True)
    row.prop(m, "use_bump")
    sub = row.row(align=True)
    sub.active = m.use_bump
    sub.prop(m, "bump_strength")
    box.prop(m, "scale")
    box.row(align=True).prop(m, "projection", expand=True)
    row = box.row(align=True)
    row.active = m.projection == "BOX"
    row.prop(m, "box_coordinates", text="")
    row.prop(m, "box_blend")
    box.prop(m, "all_selected")


def _model_in_use(layout, s):
    """Which network Generate and Bake Walk will use, with its step."""
    if s.model_source == "BASE":
        layout.label(text=f"Base model: {s.base_model}", icon="FILE_3D")
        return
    job = watch.selected_job(s)
    if job is None:
        layout.label(text="Select a training job in the Training panel", icon="INFO")
        return
    steps = [x.step for x in s.snapshots] if s.snapshots_job == job.job_id else []
    layout.label(text=model_choice(f"'{job.title}'", steps, s.use_latest, s.pinned_step), icon="FILE_3D")


class LATENT_PT_generate(_LatentPanel, bpy.types.Panel):
    bl_label = "Generate"
    bl_parent_id = "LATENT_PT_main"

    def draw(self, context):
        layout = self.layout
        s = context.scene.latent
        layout.prop(s, "model_source", expand=True)
        _model_in_use(layout, s)
        row = layout.row(align=True)
        row.prop(s, "gen_seed")
        row.operator("latent.random_seed", text="", icon="FILE_REFRESH").target = "gen_seed"
        layout.prop(s, "psi")
        layout.prop(s, "count")
        _seamless(layout, s, "gen")
        layout.prop(s, "storage")
        layout.operator("latent.generate_images", icon="IMAGE_DATA")
        _material_options(layout, s)
        if s.last_image and bpy.data.images.get(s.last_image) is not None:
            layout.operator("latent.apply_image", icon="MATERIAL").image = s.last_image
        else:
            layout.label(text="Generate an image to put it on a material")


class LATENT_PT_walk(_LatentPanel, bpy.types.Panel):
    bl_label = "Latent Walk"
    bl_parent_id = "LATENT_PT_main"

    def draw(self, context):
        layout = self.layout
        s = context.scene.latent
        row = layout.row()
        row.template_list("LATENT_UL_waypoints", "", s, "waypoints", s, "waypoint_index", rows=3)
        col = row.column(align=True)
        col.operator("latent.add_waypoint", text="", icon="ADD")
        col.operator("latent.remove_waypoint", text="", icon="REMOVE")
        col.operator("latent.random_seed", text="", icon="FILE_REFRESH").target = "waypoint"
        if 0 <= s.waypoint_index < len(s.waypoints):
            wp = s.waypoints[s.waypoint_index]
            box = layout.box()
            box.prop(wp, "frame")
            box.prop(wp, "seed")
            box.prop(wp, "use_vector")
            sub = box.row()
            sub.active = wp.use_vector
            sub.prop(wp, "vector_space")
            row = box.row(align=True)  # style mixing: the finer layers from another seed
            row.prop(wp, "mix", toggle=True)
            sub = row.row(align=True)
            sub.active = wp.mix
            sub.prop(wp, "mix_seed")
            sub.prop(wp, "mix_from_layer")
        layout.prop(s, "interpolation")
        layout.prop(s, "easing")
        layout.prop(s, "loop")
        layout.prop(s, "walk_psi")
        _seamless(layout, s, "walk")
        _model_in_use(layout, s)
        layout.label(text="The frames get the Material options (Generate panel)", icon="MATERIAL")
        layout.operator("latent.bake_walk", icon="RENDER_ANIMATION")
        if s.walk_image:
            layout.label(text=f"Last walk: {s.walk_image}", icon="SEQUENCE")
        if s.walk_id:
            row = layout.row()
            row.label(text=f"On the server as walk {s.walk_id}")
            row.operator("latent.delete_walk", icon="TRASH")


_classes = (LATENT_UL_jobs, LATENT_UL_snapshots, LATENT_UL_waypoints, LATENT_PT_main, LATENT_PT_dataset,
            LATENT_PT_training, LATENT_PT_generate, LATENT_PT_walk)


register, unregister = bpy.utils.register_classes_factory(_classes)
