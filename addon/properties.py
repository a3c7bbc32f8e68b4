"""Scene and window-manager properties.

Scene properties (saved with the .blend): dataset settings, the job-list cache, the
waypoints of a latent walk. Window-manager properties (not saved): connection status and
the last message.
"""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

from .core import limits, material_options, seamless
from .core.api import SCRATCH_MODEL
from .core.formatting import SCRATCH_ITEM, library_models, model_items

# Blender requirement: the list returned by a dynamic EnumProperty items callback must be
# kept alive by Python, or the UI shows garbage. This module-level list is that reference.
_model_items = [SCRATCH_ITEM]
_library = {}  # id -> name of the listed models that sit in the server's models folder


def set_model_items(models, settings=None):
    """Replace the cached base-model list with the server's list (main thread).

    The enum stores a position in the list, which a new list shifts: `settings` keep their
    model by id, or go back to "From scratch" when it is gone."""
    keep = settings.base_model if settings is not None else None
    _model_items[:] = model_items(models)
    _library.clear()
    _library.update(library_models(models))
    if settings is not None:
        settings.base_model = keep if keep in [item[0] for item in _model_items] else SCRATCH_MODEL


def library_model_name(model_id):
    """The name of a model in the server's models folder, or None (scratch, a job's snapshot)."""
    return _library.get(model_id)


def _base_model_items(self, context):
    return _model_items


_RESOLUTIONS = [(str(r), f"{r} px", "") for r in limits.RESOLUTIONS]


def _waypoint_frame_update(self, context):
    from . import walks  # local import: walks imports this module

    walks.on_waypoint_frame_changed(self, context)


# The selections that decide which model Generate and Bake Walk use (watch.py keeps the
# snapshot list on the selected job and reads a clicked snapshot as a pinned step).
def _job_selected(self, context):
    from . import watch

    watch.on_job_selected(self, context)


def _snapshot_picked(self, context):
    from . import watch

    watch.on_snapshot_picked(self, context)


def _use_latest_changed(self, context):
    from . import watch

    watch.on_use_latest_changed(self, context)


class LATENT_PG_waypoint(bpy.types.PropertyGroup):
    uid: IntProperty(name="Id", description="Stable id linking this waypoint to its keyframe", default=0)
    frame: IntProperty(name="Frame", description="Scene frame where the walk passes this latent",
                       default=1, update=_waypoint_frame_update)
    seed: IntProperty(name="Seed", description="Seed of the latent vector", default=0, min=0, max=limits.MAX_SEED)
    use_vector: BoolProperty(name="Stored vector", description="Use the stored latent vector instead of the seed",
                             default=False)
    vector: StringProperty(name="Vector", description="Stored latent vector as JSON numbers", default="")
    vector_space: EnumProperty(name="Stored latent", default="Z",
                               items=[("Z", "z", "A z vector (as a seed gives)"),
                                      ("W", "w", "A w or W+ latent, e.g. found by projecting an image")],
                               description="What the stored vector is: a w latent makes the walk run in W")
    # Style mixing: the finer layers (from `mix_from_layer` on) come from another seed.
    mix: BoolProperty(name="Style mix", default=False,
                      description="Take the finer layers (colour, texture) from another seed; the walk then runs in W")
    mix_seed: IntProperty(name="Mix seed", default=0, min=0, max=limits.MAX_SEED,
                          description="The seed whose finer layers this waypoint takes")
    mix_from_layer: IntProperty(name="Crossover layer", default=4, min=0, max=limits.MAX_MIX_LAYER,
                                description="Layers from this one on come from the mix seed: low = more of it "
                                            "(0 = all), high = only the finest styles")


class LATENT_PG_job(bpy.types.PropertyGroup):
    job_id: StringProperty(name="Job id")
    title: StringProperty(name="Title")
    state: StringProperty(name="State")
    step: IntProperty(name="Step")
    steps: IntProperty(name="Steps")
    kimg: FloatProperty(name="kimg")
    progress: FloatProperty(name="Progress", subtype="FACTOR", min=0.0, max=1.0)
    eta_s: FloatProperty(name="ETA (s)", default=-1.0)
    error: StringProperty(name="Why it failed")
    estimate: StringProperty(name="Estimate", description="Time and disk measured on the first steps")
    warning: StringProperty(name="Warning", description="Set when the run would take very long on this server")


class LATENT_PG_snapshot(bpy.types.PropertyGroup):
    step: IntProperty(name="Step")
    kimg: FloatProperty(name="kimg")


class LATENT_PG_material(bpy.types.PropertyGroup):
    """Apply to Material and Bake Walk: what the material gets besides Base Color (materials.py)."""

    use_bump: BoolProperty(name="Bump", default=False,
                           description="A Bump node fed by the image's brightness drives the material's Normal")
    bump_strength: FloatProperty(name="Strength", default=material_options.BUMP_STRENGTH_DEFAULT, min=0.0, max=1.0,
                                 subtype="FACTOR", description="Strength of the bump")
    scale: FloatProperty(name="Scale", default=1.0, min=material_options.SCALE_MIN, max=material_options.SCALE_MAX,
                         soft_max=64.0, description="Times the image repeats across its coordinates: above 1 "
                         "tiles it (for seamless images)")
    projection: EnumProperty(name="Projection", items=material_options.PROJECTIONS, default="UV")
    box_coordinates: EnumProperty(name="Box coordinates", items=material_options.BOX_COORDINATES, default="OBJECT")
    box_blend: FloatProperty(name="Blend", default=0.2, min=0.0, max=1.0, subtype="FACTOR",
                             description="How softly the box projection's sides blend into each other")
    all_selected: BoolProperty(name="All selected objects", default=False,
                               description="Apply to every selected object, not only the active one")


class LATENT_PG_settings(bpy.types.PropertyGroup):
    # -- dataset: renders -------------------------------------------------------------
    source: EnumProperty(
        name="Source",
        items=[("ORBIT", "Orbit renders", "Render views of the active object from an orbiting camera"),
               ("TIMELINE", "Timeline", "Render the scene camera over the timeline's frame range"),
               ("FOLDER", "Image folder", "Use images that already exist in a folder")],
        default="ORBIT",
    )
    dataset_dir: StringProperty(name="Folder", subtype="DIR_PATH", default="//latent_dataset/",
                                description="Where renders are written, or the image folder to upload")
    view_count: IntProperty(name="Views", default=limits.DEFAULT_VIEW_COUNT, min=1, max=25000)
    azimuth_min: FloatProperty(name="Azimuth from", subtype="ANGLE", default=0.0)
    azimuth_max: FloatProperty(name="Azimuth to", subtype="ANGLE", default=6.283185307179586)
    elevation_min: FloatProperty(name="Elevation from", subtype="ANGLE", default=0.0,
                                 min=-1.5707, max=1.5707)
    elevation_max: FloatProperty(name="Elevation to", subtype="ANGLE", default=0.5235987755982988,
                                 min=-1.5707, max=1.5707)
    spacing: EnumProperty(name="Spacing", items=[("EVEN", "Even", "Evenly spaced views"),
                                                 ("RANDOM", "Random", "Random views (seeded)")],
                          default="EVEN")
    distance: FloatProperty(name="Distance", default=0.0, min=0.0, unit="LENGTH",
                            description="Camera distance; 0 fits the object in view")
    distance_jitter: FloatProperty(name="Distance jitter", default=0.0, min=0.0, max=0.9, subtype="FACTOR")
    random_world_rotation: BoolProperty(name="Rotate world", default=False,
                                        description="Random Z rotation of the world's Mapping node per view")
    random_light_rotation: BoolProperty(name="Rotate lights", default=False,
                                        description="Random rotation of the lights around the object per view")
    render_size: IntProperty(name="Render size", default=limits.DEFAULT_RENDER_SIZE, min=8, max=4096,
                             description="Square render resolution in pixels")
    render_samples: IntProperty(name="Samples", default=limits.DEFAULT_RENDER_SAMPLES, min=0, max=65536,
                                description="Render samples per view for the dataset (Cycles and EEVEE); "
                                            "0 keeps the scene's own. Few samples keep a first dataset to minutes")
    temp_dir: StringProperty(name="Temporary folder", default="",
                             description="Where an unsaved file keeps the add-on's files until it is saved")
    seed: IntProperty(name="Seed", default=0, min=0)

    # -- dataset: server side ---------------------------------------------------------
    crop: EnumProperty(name="Crop", items=limits.CROP_MODES, default="center")
    resolution: EnumProperty(name="Resolution", items=_RESOLUTIONS, default="256")
    dataset_id: StringProperty(name="Dataset id")
    dataset_state: StringProperty(name="Dataset state")
    dataset_summary: StringProperty(name="Report")
    dataset_rejected: StringProperty(name="Rejected")
    preview_image: StringProperty(name="Preview image")

    # -- training ---------------------------------------------------------------------
    base_model: EnumProperty(name="Base model", items=_base_model_items)
    job_title: StringProperty(name="Title", default="")
    preset: EnumProperty(name="Network size", items=limits.PRESETS, default="auto")
    steps: IntProperty(name="Steps", default=5000, min=1, max=1000000)
    batch: IntProperty(name="Batch", default=16, min=1, max=limits.MAX_BATCH)
    snapshot_every: IntProperty(name="Snapshot every", default=500, min=1)
    keep_snapshots: IntProperty(name="Keep Snapshots", default=0, min=0,
                                description="0 keeps every snapshot; N keeps only the newest N (and the best by "
                                            "metric), so a long run does not fill the server's disk")
    mirror: BoolProperty(name="Mirror", default=False, description="Also train on horizontally flipped images")
    tileable: BoolProperty(name="Tileable", default=False,
                           description="Train for seamless textures: the model's images tile without seams")
    augmentation: EnumProperty(name="Augmentation", items=limits.AUGMENTATIONS, default="ada")
    precision: EnumProperty(name="Precision", items=limits.PRECISIONS, default="auto",
                            description="Number format of the networks' top resolutions while training")
    gpus: IntProperty(name="GPUs", default=1, min=0, max=limits.MAX_TRAIN_PROCESSES,
                      description="Training processes, one per GPU of the server (0: all of them); on a CPU "
                                  "server, processes sharing its cores")
    jobs: CollectionProperty(type=LATENT_PG_job)
    job_index: IntProperty(name="Job", default=0, update=_job_selected)
    snapshots: CollectionProperty(type=LATENT_PG_snapshot)
    snapshots_job: StringProperty(name="Snapshots of job", description="The job the snapshot list belongs to")
    snapshot_index: IntProperty(name="Snapshot", default=0, update=_snapshot_picked,
                                description="Click a snapshot to generate from its step")
    use_latest: BoolProperty(name="Latest snapshot", default=True, update=_use_latest_changed,
                             description="Generate from the newest snapshot of the selected job, looked up when "
                                         "you press Generate; off: the step picked in the list")
    pinned_step: IntProperty(name="Pinned step", default=-1)
    sample_image: StringProperty(name="Sample grid image")
    sample_step: IntProperty(name="Sample grid step", default=-1)
    training_notice: StringProperty(name="Training news", description="How the last training that ended ended")
    notice_job: StringProperty(name="Job of the news")
    notice_image: StringProperty(name="Samples of the news")

    # -- generation -------------------------------------------------------------------
    model_source: EnumProperty(name="Model", items=[("JOB", "Training job", "The selected job and snapshot"),
                                                    ("BASE", "Base model", "The selected base model")],
                               default="JOB")
    gen_seed: IntProperty(name="Seed", default=0, min=0, max=limits.MAX_SEED)
    psi: FloatProperty(name="Truncation psi", default=0.7, min=limits.PSI_MIN, max=limits.PSI_MAX)
    count: IntProperty(name="Count", default=1, min=1, max=limits.SEEDS_PER_REQUEST)
    storage: EnumProperty(name="Store", items=[("PACK", "Pack into .blend", "Generated images, previews and sample "
                                                "grids are stored inside the .blend"),
                                               ("SAVE", "Files next to .blend", "PNG files in latent_studio/<name of "
                                                "the .blend>/ beside it, linked by relative paths")],
                          default="PACK")
    last_image: StringProperty(name="Last image")
    gen_seamless: EnumProperty(name="Seamless", items=seamless.SEAMLESS_CHOICES, default=seamless.MODEL_DEFAULT,
                               description="Images that tile without seams")
    gen_size_multiplier: IntProperty(name="Size multiplier", default=1, min=1, max=limits.MAX_SIZE_MULTIPLIER,
                                     description="Images this many times the model's side (always seamless)")
    material: PointerProperty(type=LATENT_PG_material)

    # -- latent walks -----------------------------------------------------------------
    waypoints: CollectionProperty(type=LATENT_PG_waypoint)
    waypoint_index: IntProperty(name="Waypoint", default=0)
    walk_key: IntProperty(name="Walk waypoint key", default=0,
                          description="Keyframed per waypoint: moving its keys in the Dope Sheet re-times the walk")
    interpolation: EnumProperty(name="Interpolation", items=limits.INTERPOLATIONS, default="slerp")
    easing: EnumProperty(name="Easing", items=limits.EASINGS, default="linear")
    loop: BoolProperty(name="Loop", default=False)
    walk_psi: FloatProperty(name="Walk psi", default=0.7, min=limits.PSI_MIN, max=limits.PSI_MAX)
    walk_image: StringProperty(name="Walk image")
    walk_seamless: EnumProperty(name="Seamless", items=seamless.SEAMLESS_CHOICES, default=seamless.MODEL_DEFAULT,
                                description="Walk frames that tile without seams")
    walk_size_multiplier: IntProperty(name="Size multiplier", default=1, min=1, max=limits.MAX_SIZE_MULTIPLIER,
                                      description="Walk frames this many times the model's side (always seamless)")
    walk_id: StringProperty(name="Walk on the server", description="The server's id of the walk baked last; "
                            "empty once its server copy is deleted")
    # -- projection: an image (the render, or a file) becomes a waypoint ------------------
    projection_source: EnumProperty(name="Image", default="RENDER",
                                    items=[("RENDER", "Render Result", "The last render (F12)"),
                                           ("FILE", "Image file", "An image file on disk")])
    projection_file: StringProperty(name="Image file", subtype="FILE_PATH", default="",
                                    description="The image to turn into a waypoint")
    projection_steps: IntProperty(name="Steps", default=limits.DEFAULT_PROJECTION_STEPS,
                                  min=limits.MIN_PROJECTION_STEPS, max=limits.MAX_PROJECTION_STEPS,
                                  description="Optimisation steps: more is closer and slower")
    projection_w_plus: BoolProperty(name="W+ (one w per layer)", default=False,
                                    description="Closer to the image, a little less typical of the model")
    projection_loss: EnumProperty(name="Loss", items=limits.PROJECTION_LOSSES, default="dfeat")


class LATENT_PG_status(bpy.types.PropertyGroup):
    connection: StringProperty(name="Connection", default="Not checked")
    message: StringProperty(name="Message")
    message_level: StringProperty(name="Level", default="INFO")
    message_key: StringProperty(name="About", description="What the message is about, so it can be cleared")


_classes = (LATENT_PG_waypoint, LATENT_PG_job, LATENT_PG_snapshot, LATENT_PG_material, LATENT_PG_settings,
            LATENT_PG_status)


def register():
    for cls in _classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.latent = PointerProperty(type=LATENT_PG_settings)
    bpy.types.WindowManager.latent_status = PointerProperty(type=LATENT_PG_status)


def unregister():
    del bpy.types.WindowManager.latent_status
    del bpy.types.Scene.latent
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
