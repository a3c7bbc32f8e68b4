"""Put images on materials: Image Texture -> Principled BSDF Base Color, and image sequences."""

from __future__ import annotations

import bpy

NODE_NAME = "Latent Studio Texture"


class MaterialError(ValueError):
    pass


def _target_material(obj_name):
    obj = bpy.data.objects.get(obj_name or "")
    if obj is None:
        raise MaterialError("Select a mesh object to put the image on")
    if obj.type not in {"MESH", "CURVE", "SURFACE", "META", "FONT"} or not hasattr(obj.data, "materials"):
        raise MaterialError(f"{obj.name!r} is a {obj.type.lower()}, which cannot carry a material")
    mat = obj.active_material
    if mat is None:
        mat = bpy.data.materials.new(f"{obj.name} Latent")
        if len(obj.data.materials) == 0:
            obj.data.materials.append(mat)
        else:
            obj.active_material = mat
    if mat.node_tree is None:  # Blender before 5.0 creates materials without nodes
        mat.use_nodes = True
    return obj, mat


def _principled(tree):
    for node in tree.nodes:
        if node.type == "BSDF_PRINCIPLED":
            return node
    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
    output = next((n for n in tree.nodes if n.type == "OUTPUT_MATERIAL"), None)
    if output is None:
        output = tree.nodes.new("ShaderNodeOutputMaterial")
        output.location = (300, 0)
    tree.links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    return bsdf


def apply_image(obj_name, image_name):
    """Show image `image_name` as the Base Color of `obj_name`'s active material.

    Creates the material when the object has none, reuses our texture node when present.
    Returns (material name, node name)."""
    image = bpy.data.images.get(image_name or "")
    if image is None:
        raise MaterialError(f"There is no image named {image_name!r}")
    obj, mat = _target_material(obj_name)
    tree = mat.node_tree
    bsdf = _principled(tree)
    tex = tree.nodes.get(NODE_NAME)
    if tex is None or tex.type != "TEX_IMAGE":
        tex = tree.nodes.new("ShaderNodeTexImage")
        tex.name = NODE_NAME
        tex.label = "Latent Studio"
        tex.location = (bsdf.location.x - 350, bsdf.location.y)
    tex.image = image
    tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    tree.nodes.active = tex
    return mat.name, tex.name


def setup_sequence(obj_name, image_name, frame_start, frame_count, first_number):
    """Apply an image sequence whose files are numbered from `first_number`, so that
    scene frame `frame_start` shows file `first_number` and the next `frame_count - 1`
    frames follow one file per frame."""
    image = bpy.data.images.get(image_name or "")
    if image is None:
        raise MaterialError(f"There is no image named {image_name!r}")
    image.source = "SEQUENCE"
    mat_name, node_name = apply_image(obj_name, image_name)
    node = bpy.data.materials[mat_name].node_tree.nodes[node_name]
    iu = node.image_user
    iu.frame_duration = frame_count
    iu.frame_start = frame_start
    # Blender shows file number (scene_frame - frame_start + 1 + frame_offset)
    iu.frame_offset = first_number - 1
    iu.use_auto_refresh = True
    iu.use_cyclic = False
    return mat_name, node_name
