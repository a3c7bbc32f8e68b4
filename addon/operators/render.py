"""The Render Dataset operator: drives a render_dataset.DatasetRender one view at a time."""

from __future__ import annotations

import bpy

from .. import bridge, render_dataset, storage
from ..core.formatting import eta
from ..core.poses import PoseError
from .base import grey_out


class LATENT_OT_render_dataset(bpy.types.Operator):
    """Render dataset images into the dataset folder (Esc cancels)"""

    bl_idname = "latent.render_dataset"
    bl_label = "Render Dataset"
    bl_options = {"REGISTER"}

    _timer = None

    @classmethod
    def poll(cls, context):
        s = context.scene.latent
        if s.source == "FOLDER":
            return grey_out(cls, "The source is an existing image folder: nothing to render")
        if render_dataset.current is not None:
            return grey_out(cls, "A dataset render is already running")
        try:
            storage.resolve_folder(s.dataset_dir, context.scene)
        except storage.NoFolder as exc:
            return grey_out(cls, str(exc))
        return True

    def _begin(self, context):
        s = context.scene.latent
        try:
            folder = storage.resolve_folder(s.dataset_dir, context.scene)
        except storage.NoFolder as exc:
            self.report({"ERROR"}, str(exc))
            return False
        try:
            session = render_dataset.DatasetRender(context, s.source, folder)
            session.start()
        except (render_dataset.RenderDatasetError, PoseError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return False
        render_dataset.current = session
        return True

    def _end(self, context, cancelled=False, error=None):
        session, render_dataset.current = render_dataset.current, None
        if session is not None:
            session.finish()
        count = len(session.written) if session else 0
        took = session.pace.elapsed() if session is not None and session.pace is not None else 0.0
        timing = f" in {eta(took)} ({took / count:.1f} s per view)" if count else ""
        if error:
            self.report({"ERROR"}, f"Dataset render failed: {error}")
        elif cancelled:
            self.report({"WARNING"}, f"Dataset render cancelled after {count} images{timing}")
        else:
            self.report({"INFO"}, f"Rendered {count} images{timing} into {session.folder}")

    def execute(self, context):
        if not self._begin(context):
            return {"CANCELLED"}
        try:
            while not render_dataset.current.step():
                pass
        except Exception as exc:
            self._end(context, error=str(exc))
            return {"CANCELLED"}
        self._end(context)
        return {"FINISHED"}

    def invoke(self, context, event):
        if not self._begin(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.05, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, render_dataset.current.total)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        wm = context.window_manager
        if event.type == "ESC":
            self._stop_modal(context)
            self._end(context, cancelled=True)
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            done = render_dataset.current.step()
        except Exception as exc:
            self._stop_modal(context)
            self._end(context, error=str(exc))
            return {"CANCELLED"}
        wm.progress_update(render_dataset.current.index)
        context.workspace.status_text_set(f"Rendering dataset: {render_dataset.current.progress_text()} (Esc cancels)")
        bridge.redraw()
        if done:
            self._stop_modal(context)
            self._end(context)
            return {"FINISHED"}
        return {"RUNNING_MODAL"}

    def _stop_modal(self, context):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        context.workspace.status_text_set(None)



classes = (LATENT_OT_render_dataset,)
