"""The Blender side of bench_quality.py: orbit renders of small procedural scenes, made by the
installed add-on's own Render Dataset operator (addon/render_dataset.py), headless.

Runs in its own process under the bpy module (`python benchmarks/render_scene.py ...`, HOME
pointed at a temp folder so the extension is installed there, never in the user's Blender).
Each scene: 1-4 primitives (cube, spheres, torus, cone, cylinder, monkey) with random colours
and materials, sometimes a floor, 2-3 lights of random kinds and tints, a world colour and a
camera. The operator then orbits the first object (at the origin) from a fixed distance,
rotating the lights at random per view, and writes `view_NNNNN.png` files into one folder per
scene. A JSON summary (how many images, how long) goes to --info.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import os
import random
import time

import bpy

MOD = "bl_ext.user_default.latent_studio"
SHAPES = ("cube", "uv_sphere", "ico_sphere", "torus", "cone", "cylinder", "monkey")
ENGINES = ("CYCLES", "BLENDER_EEVEE", "BLENDER_WORKBENCH")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the renders (one sub-folder per scene)")
    ap.add_argument("--info", required=True, help="where to write the JSON summary")
    ap.add_argument("--addon-zip", required=True, help="the extension zip to install (server.addon_build)")
    ap.add_argument("--images", type=int, default=300, help="views in all (default: 300)")
    ap.add_argument("--size", type=int, default=64, help="render size in px (default: 64)")
    ap.add_argument("--views-per-scene", type=int, default=12, help="views of each scene (default: 12)")
    ap.add_argument("--samples", type=int, default=16, help="render samples per view (default: 16)")
    ap.add_argument("--engine", choices=ENGINES, default="CYCLES", help="render engine (default: CYCLES)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the scenes and the views (default: 0)")
    ap.add_argument("--threads", type=int, default=0, help="render threads; 0 = Blender's choice (default: 0)")
    return ap.parse_args(argv)


def install_addon(zip_path: str) -> None:
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    if not hasattr(bpy.context.scene, "latent"):
        raise SystemExit(f"render_scene: the extension in {zip_path} did not register (no scene.latent)")


def clear_scene(scene) -> None:
    for obj in list(scene.objects):
        bpy.data.objects.remove(obj, do_unlink=True)
    bpy.data.orphans_purge(do_local_ids=True, do_linked_ids=True, do_recursive=True)


def random_colour(rng: random.Random, saturation=(0.45, 1.0), value=(0.35, 1.0)) -> tuple:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return (r, g, b, 1.0)


def make_material(rng: random.Random, name: str, colour: tuple):
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender before 5.0 makes node-less materials by default
        mat.use_nodes = True
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = colour
    bsdf.inputs["Roughness"].default_value = rng.uniform(0.15, 0.9)
    bsdf.inputs["Metallic"].default_value = 0.8 if rng.random() < 0.2 else 0.0
    mat.diffuse_color = colour  # what Workbench shows
    return mat


def add_shape(rng: random.Random, shape: str, location, size: float):
    adders = {
        "cube": lambda: bpy.ops.mesh.primitive_cube_add(size=size * 1.4, location=location),
        "uv_sphere": lambda: bpy.ops.mesh.primitive_uv_sphere_add(radius=size, location=location, segments=24,
                                                                   ring_count=12),
        "ico_sphere": lambda: bpy.ops.mesh.primitive_ico_sphere_add(radius=size, location=location, subdivisions=2),
        "torus": lambda: bpy.ops.mesh.primitive_torus_add(major_radius=size, minor_radius=size * 0.35,
                                                          location=location),
        "cone": lambda: bpy.ops.mesh.primitive_cone_add(radius1=size, depth=size * 2, location=location),
        "cylinder": lambda: bpy.ops.mesh.primitive_cylinder_add(radius=size * 0.8, depth=size * 1.6,
                                                                location=location),
        "monkey": lambda: bpy.ops.mesh.primitive_monkey_add(size=size * 1.6, location=location),
    }
    adders[shape]()
    obj = bpy.context.active_object
    obj.rotation_euler = (rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(0, 2 * math.pi))
    if shape != "cube":
        obj.data.shade_smooth()
    return obj


def add_light(rng: random.Random, scene, index: int) -> None:
    kind = rng.choice(("POINT", "SUN", "AREA"))
    data = bpy.data.lights.new(f"Light {index}", kind)
    tint = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.5), 1.0)
    data.color = tint
    data.energy = {"POINT": rng.uniform(600, 1500), "SUN": rng.uniform(2.0, 5.0), "AREA": rng.uniform(300, 900)}[kind]
    if kind == "AREA":
        data.size = rng.uniform(1.0, 3.0)
    obj = bpy.data.objects.new(f"Light {index}", data)
    az, el, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 1.3), rng.uniform(3.5, 6.0)
    obj.location = (dist * math.cos(el) * math.cos(az), dist * math.cos(el) * math.sin(az), dist * math.sin(el))
    obj.rotation_euler = (0.0, 0.0, 0.0)
    scene.collection.objects.link(obj)
    # point it at the origin (suns and areas shine along their -Z)
    direction = -obj.location
    obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def set_world(rng: random.Random, scene) -> None:
    if scene.world is None:
        scene.world = bpy.data.worlds.new("World")
    world = scene.world
    if world.node_tree is None:
        world.use_nodes = True
    background = next((n for n in world.node_tree.nodes if n.type == "BACKGROUND"), None)
    if background is not None:
        background.inputs["Color"].default_value = random_colour(rng, (0.0, 0.5), (0.05, 0.6))
        background.inputs["Strength"].default_value = rng.uniform(0.3, 1.0)


def build_scene(rng: random.Random, scene, index: int):
    """One random scene; returns the object to orbit (at the origin)."""
    clear_scene(scene)
    set_world(rng, scene)
    target = None
    for i in range(rng.randint(1, 4)):
        if i == 0:
            location, size = (0.0, 0.0, 0.0), rng.uniform(0.7, 1.1)
        else:
            angle, radius = rng.uniform(0, 2 * math.pi), rng.uniform(1.3, 2.0)
            location = (radius * math.cos(angle), radius * math.sin(angle), rng.uniform(-0.5, 0.6))
            size = rng.uniform(0.35, 0.75)
        obj = add_shape(rng, rng.choice(SHAPES), location, size)
        obj.name = f"Shape {index}.{i}"
        obj.data.materials.append(make_material(rng, f"Colour {index}.{i}", random_colour(rng)))
        target = target or obj
    if rng.random() < 0.6:
        bpy.ops.mesh.primitive_plane_add(size=30, location=(0.0, 0.0, -1.1))
        floor = bpy.context.active_object
        floor.data.materials.append(make_material(rng, f"Floor {index}", random_colour(rng, (0.0, 0.4), (0.2, 0.8))))
    for i in range(rng.randint(2, 3)):
        add_light(rng, scene, i)
    cam_data = bpy.data.cameras.new("Camera")
    cam_data.lens = 35.0  # the dataset camera copies the scene camera's lens
    cam = bpy.data.objects.new("Camera", cam_data)
    scene.collection.objects.link(cam)
    cam.location = (6.0, -6.0, 3.0)
    cam.rotation_euler = (-cam.location).to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    bpy.context.view_layer.objects.active = target
    return target


def configure_render(scene, engine: str, threads: int) -> None:
    scene.render.engine = engine
    if engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.use_denoising = False  # 16 samples at 64 px, downscaled for training: noise is small
    elif engine == "BLENDER_WORKBENCH":
        scene.display.shading.color_type = "MATERIAL"
        scene.display.shading.light = "STUDIO"
    if threads > 0:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads


def main(argv=None) -> dict:
    args = parse_args(argv)
    install_addon(args.addon_zip)
    scene = bpy.context.scene
    configure_render(scene, args.engine, args.threads)
    s = scene.latent
    s.source = "ORBIT"
    s.render_size = args.size
    s.render_samples = args.samples
    s.spacing = "RANDOM"
    s.azimuth_min, s.azimuth_max = 0.0, 2 * math.pi
    s.elevation_min, s.elevation_max = 0.05, 0.9
    s.distance = 6.0  # fixed: the whole group in view, not only the orbited object
    s.distance_jitter = 0.15
    s.random_light_rotation = True
    rng = random.Random(args.seed)
    remaining, index, scenes, started = args.images, 0, [], time.perf_counter()
    while remaining > 0:
        views = min(args.views_per_scene, remaining)
        folder = os.path.join(os.path.abspath(args.out), f"scene_{index:03d}")
        build_scene(rng, scene, index)
        s.dataset_dir = folder
        s.view_count = views
        s.seed = args.seed * 1000 + index
        t0 = time.perf_counter()
        bpy.ops.latent.render_dataset()
        written = len([f for f in os.listdir(folder) if f.endswith(".png")])
        if written != views:
            raise SystemExit(f"render_scene: scene {index} wrote {written} of {views} views")
        scenes.append({"scene": index, "views": views, "objects": len(scene.objects),
                       "seconds": round(time.perf_counter() - t0, 2)})
        remaining -= views
        index += 1
    info = {"images": args.images, "size": args.size, "samples": args.samples, "engine": args.engine,
            "views_per_scene": args.views_per_scene, "seed": args.seed, "scenes": scenes,
            "blender": bpy.app.version_string, "seconds": round(time.perf_counter() - started, 2)}
    with open(args.info, "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=1)
    return info


if __name__ == "__main__":
    main()
