"""Render a training dataset from Blender: orbit views of an object, or the timeline.

The pose maths is in core/poses.py (no bpy). `DatasetRender` saves the user's
camera, frame, render settings, light placement and world rotation, renders one image per
`step()`, and puts everything back in `finish()` whatever happened. The operator
(operators/render.py) drives it one view per timer tick (modal, cancellable with Esc) or
all at once (execute).
"""

from __future__ import annotations

import math
import os
import random

import bpy
from mathutils import Matrix, Vector

from .core.estimate import Estimate
from .core.poses import orbit_poses

CAMERA_NAME = "Latent Dataset Camera"


class RenderDatasetError(ValueError):
    pass


def find_target(context):
    """The object to orbit: the active object, else the scene camera's Track To target."""
    obj = context.active_object
    if obj is not None and obj.type not in {"CAMERA", "LIGHT"}:
        return obj
    cam = context.scene.camera
    if cam is not None:
        for con in cam.constraints:
            target = getattr(con, "target", None)
            if target is not None:
                return target
    raise RenderDatasetError("Select the object to render (or give the scene camera a Track To target)")


def _bounds(obj):
    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
    center = sum(corners, Vector()) / len(corners)
    radius = max((c - center).length for c in corners) or 1.0
    return center, radius


class DatasetRender:
    """One dataset render, restartable one view at a time. Holds names, never bpy objects."""

    def __init__(self, context, mode, folder):
        scene = context.scene
        s = scene.latent
        self.scene_name = scene.name
        self.mode = mode
        self.folder = folder
        self.index = 0
        self.written = []
        self.saved = None
        if mode == "ORBIT":
            target = find_target(context)
            self.target_name = target.name
            self.poses = orbit_poses(s.view_count, s.azimuth_min, s.azimuth_max, s.elevation_min, s.elevation_max,
                                     s.spacing, s.seed, s.distance_jitter)
            self.total = len(self.poses)
            self.rng = random.Random(s.seed + 1)
            self.rotate_world = s.random_world_rotation
            self.rotate_lights = s.random_light_rotation
            self.distance = s.distance
        elif mode == "TIMELINE":
            if scene.camera is None:
                raise RenderDatasetError("The scene has no camera to render the timeline with")
            self.frames = list(range(scene.frame_start, scene.frame_end + 1, max(1, scene.frame_step)))
            self.total = len(self.frames)
        else:
            raise RenderDatasetError(f"Unknown render mode {mode!r}")
        self.size = s.render_size
        self.samples = s.render_samples
        self.pace = None  # an Estimate from the first view on

    @property
    def scene(self):
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise RenderDatasetError(f"Scene {self.scene_name!r} is gone")
        return scene

    # -- save / restore -----------------------------------------------------------------

    def start(self):
        scene = self.scene
        r = scene.render
        img = r.image_settings
        self.saved = {
            "camera": scene.camera.name if scene.camera else None,
            "frame": scene.frame_current,
            "res": (r.resolution_x, r.resolution_y, r.resolution_percentage),
            "filepath": r.filepath,
            "use_file_extension": r.use_file_extension,
            "media_type": getattr(img, "media_type", None),
            "file_format": img.file_format,
            "color_mode": img.color_mode,
            "color_depth": img.color_depth,
            "lights": {o.name: [list(row) for row in o.matrix_world] for o in scene.objects if o.type == "LIGHT"},
            "light_transforms": {o.name: (tuple(o.location), tuple(o.rotation_euler), tuple(o.rotation_quaternion),
                                          tuple(o.rotation_axis_angle), tuple(o.scale))
                                 for o in scene.objects if o.type == "LIGHT"},
            "world_rotation": None,
            "samples": _samples(scene),
        }
        mapping = self._world_mapping()
        if mapping is not None:
            self.saved["world_rotation"] = tuple(mapping.inputs["Rotation"].default_value)
        os.makedirs(self.folder, exist_ok=True)
        r.resolution_x = r.resolution_y = self.size
        r.resolution_percentage = 100
        r.use_file_extension = True
        if getattr(img, "media_type", None) not in (None, "IMAGE"):
            img.media_type = "IMAGE"
        img.file_format = "PNG"
        img.color_mode = "RGB"
        img.color_depth = "8"
        if self.samples > 0:
            _set_samples(scene, (self.samples, self.samples))
        self.pace = Estimate()
        if self.mode == "ORBIT":
            cam_data = bpy.data.cameras.new(CAMERA_NAME)
            user_cam = scene.camera
            if user_cam is not None and user_cam.type == "CAMERA":
                cam_data.lens = user_cam.data.lens
                cam_data.sensor_width = user_cam.data.sensor_width
            cam = bpy.data.objects.new(CAMERA_NAME, cam_data)
            scene.collection.objects.link(cam)
            self.camera_name = cam.name
            scene.camera = cam

    def _world_mapping(self):
        world = self.scene.world
        if world is None or world.node_tree is None:
            return None
        for node in world.node_tree.nodes:
            if node.type == "MAPPING":
                return node
        return None

    def finish(self):
        """Put the user's scene back exactly as it was (also after errors and cancel)."""
        if self.saved is None:
            return
        saved, self.saved = self.saved, None
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            return
        if self.mode == "ORBIT":
            cam = bpy.data.objects.get(getattr(self, "camera_name", ""))
            if cam is not None:
                data = cam.data
                bpy.data.objects.remove(cam)
                if data is not None and data.users == 0:
                    bpy.data.cameras.remove(data)
        scene.camera = bpy.data.objects.get(saved["camera"]) if saved["camera"] else None
        scene.frame_set(saved["frame"])
        r = scene.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = saved["res"]
        r.filepath = saved["filepath"]
        r.use_file_extension = saved["use_file_extension"]
        img = r.image_settings
        if saved["media_type"] is not None and img.media_type != saved["media_type"]:
            img.media_type = saved["media_type"]
        img.file_format = saved["file_format"]
        img.color_mode = saved["color_mode"]
        img.color_depth = saved["color_depth"]
        _set_samples(scene, saved["samples"])
        for name, (loc, eul, quat, axis_angle, scale) in saved["light_transforms"].items():
            obj = scene.objects.get(name)
            if obj is not None:
                obj.location, obj.rotation_euler, obj.rotation_quaternion = loc, eul, quat
                obj.rotation_axis_angle, obj.scale = axis_angle, scale
        mapping = self._world_mapping()
        if mapping is not None and saved["world_rotation"] is not None:
            mapping.inputs["Rotation"].default_value = saved["world_rotation"]

    def progress_text(self):
        """'12/64 views, 0.9 s per view, about 0m47s left' for the panel and the status bar."""
        if self.pace is None:
            return f"0/{self.total} views"
        return self.pace.text(self.index, self.total, "view")

    # -- one view -----------------------------------------------------------------------

    def step(self):
        """Render the next view; returns True when all views are written."""
        if self.index >= self.total:
            return True
        scene = self.scene
        if self.mode == "ORBIT":
            path = os.path.join(self.folder, f"view_{self.index:05d}.png")
            self._place_orbit_camera(scene, *self.poses[self.index])
        else:
            frame = self.frames[self.index]
            scene.frame_set(frame)
            path = os.path.join(self.folder, f"frame_{frame:05d}.png")
        scene.render.filepath = path
        with bpy.context.temp_override(scene=scene):
            bpy.ops.render.render(write_still=True)
        if not os.path.isfile(path):
            raise RenderDatasetError(f"Blender did not write {path}")
        self.written.append(path)
        self.index += 1
        return self.index >= self.total

    def _place_orbit_camera(self, scene, az, el, factor):
        target = bpy.data.objects.get(self.target_name)
        cam = bpy.data.objects.get(self.camera_name)
        if target is None or cam is None:
            raise RenderDatasetError(f"Object {self.target_name!r} is gone")
        center, radius = _bounds(target)
        if self.distance > 0:
            dist = self.distance
        else:
            half_fov = cam.data.angle / 2
            dist = radius / math.sin(half_fov) * 1.05
        dist *= factor
        offset = Vector((math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))) * dist
        cam.location = center + offset
        cam.rotation_euler = (-offset).to_track_quat("-Z", "Y").to_euler()
        cam.data.clip_start = max(0.001, dist * 0.01)
        cam.data.clip_end = max(100.0, dist * 4 + radius * 4)
        if self.rotate_lights:
            angle = self.rng.uniform(0, 2 * math.pi)
            rot = Matrix.Translation(center) @ Matrix.Rotation(angle, 4, "Z") @ Matrix.Translation(-center)
            for name, rows in self.saved["lights"].items():
                obj = scene.objects.get(name)
                if obj is not None:
                    obj.matrix_world = rot @ Matrix(rows)
        if self.rotate_world:
            mapping = self._world_mapping()
            if mapping is not None:
                rot_value = list(self.saved["world_rotation"])
                rot_value[2] = self.rng.uniform(0, 2 * math.pi)
                mapping.inputs["Rotation"].default_value = rot_value
        scene.camera = cam


def _samples(scene):
    """(Cycles samples, EEVEE render samples) of `scene`."""
    cycles = getattr(scene, "cycles", None)
    return (cycles.samples if cycles is not None else None, scene.eevee.taa_render_samples)


def _set_samples(scene, samples):
    cycles_samples, eevee_samples = samples
    if cycles_samples is not None and getattr(scene, "cycles", None) is not None:
        scene.cycles.samples = cycles_samples
    scene.eevee.taa_render_samples = eevee_samples


# The render in progress (module state, a plain Python object): the operator sets it, the
# panel shows its progress, and unregistering the add-on puts the user's scene back.
current = None


def stop_current():
    global current
    if current is not None:
        current.finish()
        current = None
