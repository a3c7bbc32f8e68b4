"""Put images on materials: Image Texture -> Principled BSDF Base Color, and image sequences."""

from __future__ import annotations

import bpy

NODE_NAME = "Latent Studio Texture"  # stills
WALK_NODE_NAME = "Latent Studio Walk"  # image sequences


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


def apply_image(obj_name, image_name, node_name=NODE_NAME, label="Latent Studio"):
    """Show image `image_name` as the Base Color of `obj_name`'s active material, through
    our image node `node_name` (created when missing; stills and walks have one each).

    Nothing that was there is lost: an image our node showed before keeps a fake user, and
    a node of the user's that fed Base Color stays in the material, unlinked.
    Returns (material name, node name, what changed in words or "")."""
    image = bpy.data.images.get(image_name or "")
    if image is None:
        raise MaterialError(f"There is no image named {image_name!r}: generate one first" if image_name
                            else "There is no image to apply: generate one first (Latent > Generate)")
    obj, mat = _target_material(obj_name)
    tree = mat.node_tree
    bsdf = _principled(tree)
    notes = []
    base_color = bsdf.inputs["Base Color"]
    previous = base_color.links[0].from_node if base_color.is_linked else None
    tex = tree.nodes.get(node_name)
    if tex is None or tex.type != "TEX_IMAGE":
        tex = tree.nodes.new("ShaderNodeTexImage")
        tex.name = node_name
        tex.label = label
        offset = 300 if node_name != NODE_NAME else 0  # side by side when both exist
        tex.location = (bsdf.location.x - 350, bsdf.location.y - offset)
    old = tex.image
    if old is not None and old != image:
        old.use_fake_user = True  # leaves the node but stays in the file
        notes.append(f"'{old.name}' stays in the file")
    tex.image = image
    if previous is not None and previous != tex:
        notes.append(f"'{previous.label or previous.name}' was unlinked from Base Color and kept in the material")
    tree.links.new(tex.outputs["Color"], base_color)
    tree.nodes.active = tex
    return mat.name, tex.name, "; ".join(notes)


def setup_sequence(obj_name, image_name, frame_start, frame_count, first_number):
    """Apply an image sequence whose files are numbered from `first_number`, so that
    scene frame `frame_start` shows file `first_number` and the next `frame_count - 1`
    frames follow one file per frame. The walk has its own node: a still applied before
    keeps its node and image. Returns (material name, node name, what changed)."""
    image = bpy.data.images.get(image_name or "")
    if image is None:
        raise MaterialError(f"There is no image named {image_name!r}")
    image.source = "SEQUENCE"
    mat_name, node_name, note = apply_image(obj_name, image_name, WALK_NODE_NAME, "Latent Studio walk")
    node = bpy.data.materials[mat_name].node_tree.nodes[node_name]
    iu = node.image_user
    iu.frame_duration = frame_count
    iu.frame_start = frame_start
    # Blender shows file number (scene_frame - frame_start + 1 + frame_offset)
    iu.frame_offset = first_number - 1
    iu.use_auto_refresh = True
    iu.use_cyclic = False
    return mat_name, node_name, note
