"""Put images on materials: Image Texture -> Principled BSDF Base Color, and image sequences.

Besides Base Color, `MaterialOptions` (addon/core/material_options.py) may add a bump from
the image's luminance, a scale for tiling, and box projection. Every node the add-on makes
has a fixed name, so applying again finds and updates it: a material is never duplicated,
nor are its nodes, and an option turned off takes its nodes away again.
"""

from __future__ import annotations

import bpy

from .core.material_options import MaterialOptions, sequence_timing

NODE_NAME = "Latent Studio Texture"  # stills
WALK_NODE_NAME = "Latent Studio Walk"  # image sequences
COORDS_NODE = "Latent Studio Coordinates"  # one Texture Coordinate for every image node
MAPPING_SUFFIX = " Mapping"  # each image node's own Mapping: "<image node name> Mapping"
LUMINANCE_NODE = "Latent Studio Luminance"
BUMP_NODE = "Latent Studio Bump"
MATERIAL_SUFFIX = " Latent"  # "<object name> Latent": the material made for an object without one

CARRIES_MATERIAL = {"MESH", "CURVE", "SURFACE", "META", "FONT"}


class MaterialError(ValueError):
    pass


def can_carry_material(obj):
    return obj is not None and obj.type in CARRIES_MATERIAL and hasattr(obj.data, "materials")


def target_objects(context, all_selected):
    """Names of the objects Apply works on: the active one, and with `all_selected` every
    selected object that can carry a material (the active one first)."""
    active = context.active_object
    names = [active.name] if can_carry_material(active) else []
    if all_selected:
        names += sorted(o.name for o in context.selected_objects if can_carry_material(o) and o.name not in names)
    return names


def options_from(settings):
    """The scene's material options (a LATENT_PG_material) as plain data."""
    return MaterialOptions(bump=settings.use_bump, bump_strength=round(settings.bump_strength, 6),
                           scale=round(settings.scale, 6), projection=settings.projection,
                           box_coordinates=settings.box_coordinates, box_blend=round(settings.box_blend, 6))


# -- the material ------------------------------------------------------------------------


def _target_material(obj_name):
    obj = bpy.data.objects.get(obj_name or "")
    if obj is None:
        raise MaterialError("Select a mesh object to put the image on")
    if not can_carry_material(obj):
        raise MaterialError(f"{obj.name!r} is a {obj.type.lower()}, which cannot carry a material")
    mat = obj.active_material
    if mat is None:
        # the material made for this object before (its slot emptied since) is used again
        name = obj.name + MATERIAL_SUFFIX
        mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
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


def _named_node(tree, name, kind, node_type, label, location):
    """Our node called `name` (created at `location` when missing or of another kind)."""
    node = tree.nodes.get(name)
    if node is None or node.type != kind:
        node = tree.nodes.new(node_type)
        node.name = name
        node.label = label
        node.location = location
    return node


def _remove_if_unused(tree, name):
    """Remove our node `name` when none of its outputs feeds anything."""
    node = tree.nodes.get(name)
    if node is not None and not any(out.is_linked for out in node.outputs):
        tree.nodes.remove(node)


def _unlink(tree, socket, from_node_name):
    """Remove the link into `socket` when it comes from our node `from_node_name`."""
    for link in list(socket.links):
        if link.from_node.name == from_node_name:
            tree.links.remove(link)


# -- the image node and Base Color ---------------------------------------------------------


def _image_node(tree, bsdf, image, node_name, label, notes):
    tex = _named_node(tree, node_name, "TEX_IMAGE", "ShaderNodeTexImage", label,
                      (bsdf.location.x - 350, bsdf.location.y - (300 if node_name != NODE_NAME else 0)))
    old = tex.image
    if old is not None and old != image:
        old.use_fake_user = True  # leaves the node but stays in the file
        notes.append(f"'{old.name}' stays in the file")
    tex.image = image
    return tex


def _link_base_color(tree, bsdf, tex, notes):
    base_color = bsdf.inputs["Base Color"]
    previous = base_color.links[0].from_node if base_color.is_linked else None
    if previous is not None and previous != tex:
        notes.append(f"'{previous.label or previous.name}' was unlinked from Base Color and kept in the material")
    tree.links.new(tex.outputs["Color"], base_color)


# -- coordinates: tiling scale and box projection -------------------------------------------


def _set_coordinates(tree, tex, options):
    """Texture Coordinate -> Mapping (scale) -> the image's Vector, and its projection;
    without scale or box projection the image node reads the UV map directly again."""
    tex.projection = options.image_projection
    tex.projection_blend = options.box_blend
    mapping_name = tex.name + MAPPING_SUFFIX
    if not options.needs_coordinates:
        _unlink(tree, tex.inputs["Vector"], mapping_name)
        _remove_if_unused(tree, mapping_name)
        _remove_if_unused(tree, COORDS_NODE)
        return
    x, y = tex.location
    coords = _named_node(tree, COORDS_NODE, "TEX_COORD", "ShaderNodeTexCoord", "Latent Studio coordinates",
                         (x - 450, y))
    mapping = _named_node(tree, mapping_name, "MAPPING", "ShaderNodeMapping", tex.label + " mapping", (x - 220, y))
    mapping.vector_type = "POINT"
    mapping.inputs["Scale"].default_value = (options.scale,) * 3
    tree.links.new(coords.outputs[options.coordinate_output], mapping.inputs["Vector"])
    tree.links.new(mapping.outputs["Vector"], tex.inputs["Vector"])


# -- bump from luminance ------------------------------------------------------------------


def _set_bump(tree, bsdf, tex, options, notes):
    """Image Color -> RGB to BW -> Bump Height, Bump Normal -> BSDF Normal; a normal that
    fed the BSDF before feeds the Bump instead (and comes back when the bump goes)."""
    normal = bsdf.inputs["Normal"]
    bump = tree.nodes.get(BUMP_NODE)
    if not options.bump:
        if bump is not None:
            upstream = bump.inputs["Normal"].links[0].from_socket if bump.inputs["Normal"].is_linked else None
            tree.nodes.remove(bump)
            if upstream is not None and not normal.is_linked:
                tree.links.new(upstream, normal)
        lum = tree.nodes.get(LUMINANCE_NODE)
        if lum is not None:
            tree.nodes.remove(lum)
        return
    x, y = bsdf.location
    lum = _named_node(tree, LUMINANCE_NODE, "RGBTOBW", "ShaderNodeRGBToBW", "Latent Studio luminance",
                      (x - 350, y - 600))
    bump = _named_node(tree, BUMP_NODE, "BUMP", "ShaderNodeBump", "Latent Studio bump", (x - 180, y - 600))
    tree.links.new(tex.outputs["Color"], lum.inputs["Color"])
    tree.links.new(lum.outputs["Val"], bump.inputs["Height"])
    bump.inputs["Strength"].default_value = options.bump_strength
    previous = normal.links[0].from_socket if normal.is_linked else None
    if previous is not None and previous.node != bump:
        tree.links.new(previous, bump.inputs["Normal"])
        notes.append(f"'{previous.node.label or previous.node.name}' now feeds the bump's Normal")
    tree.links.new(bump.outputs["Normal"], normal)


# -- what the operators call --------------------------------------------------------------


def apply_image(obj_name, image_name, node_name=NODE_NAME, label="Latent Studio", options=None):
    """Show image `image_name` as the Base Color of `obj_name`'s active material, through
    our image node `node_name` (created when missing; stills and walks have one each), with
    the nodes `options` ask for (None: Base Color only).

    Nothing that was there is lost: an image our node showed before keeps a fake user, and
    a node of the user's that fed Base Color stays in the material, unlinked.
    Returns (material name, node name, what changed in words or "")."""
    image = bpy.data.images.get(image_name or "")
    if image is None:
        raise MaterialError(f"There is no image named {image_name!r}: generate one first" if image_name
                            else "There is no image to apply: generate one first (Latent > Generate)")
    options = options or MaterialOptions()
    _obj, mat = _target_material(obj_name)
    tree = mat.node_tree
    bsdf = _principled(tree)
    notes = []
    tex = _image_node(tree, bsdf, image, node_name, label, notes)
    _link_base_color(tree, bsdf, tex, notes)
    _set_coordinates(tree, tex, options)
    _set_bump(tree, bsdf, tex, options, notes)
    tree.nodes.active = tex
    return mat.name, tex.name, "; ".join(notes)


def _follow_scene(node, frame_start, frame_count, first_number):
    iu = node.image_user
    for key, value in sequence_timing(frame_start, frame_count, first_number).items():
        setattr(iu, key, value)
    iu.use_auto_refresh = True  # frames follow the scene's current frame
    iu.use_cyclic = False


def setup_sequence(obj_name, image_name, frame_start, frame_count, first_number, options=None):
    """Apply an image sequence whose files are numbered from `first_number`, so that
    scene frame `frame_start` shows file `first_number` and the next `frame_count - 1`
    frames follow one file per frame. The walk has its own node: a still applied before
    keeps its node and image. Returns (material name, node name, what changed)."""
    image = bpy.data.images.get(image_name or "")
    if image is None:
        raise MaterialError(f"There is no image named {image_name!r}")
    image.source = "SEQUENCE"
    mat_name, node_name, note = apply_image(obj_name, image_name, WALK_NODE_NAME, "Latent Studio walk", options)
    _follow_scene(bpy.data.materials[mat_name].node_tree.nodes[node_name], frame_start, frame_count, first_number)
    return mat_name, node_name, note


def apply_still(context, image_name):
    """Apply to Material for a still image, on the objects and with the options of the
    scene's Material settings; returns the report line (MaterialError when it cannot)."""
    settings = context.scene.latent.material
    options = options_from(settings)
    mats, note = apply_to_objects(target_objects(context, settings.all_selected), apply_image, image_name,
                                  options=options)
    extra = "; ".join(x for x in (options.summary(), note) if x)
    return f"{image_name} is now the base color of {', '.join(mats)}" + (f" ({extra})" if extra else "")


def apply_to_objects(obj_names, apply, *args, **kwargs):
    """`apply` (apply_image or setup_sequence) on each object; returns the materials changed
    (each once, in order) and the notes in words."""
    if not obj_names:
        raise MaterialError("Select the object whose material should show the image")
    materials, notes, gone = [], [], []
    for name in obj_names:
        if bpy.data.objects.get(name) is None:  # deleted while a walk was baking: the others still get it
            gone.append(name)
            continue
        mat_name, _node, note = apply(name, *args, **kwargs)
        if mat_name not in materials:
            materials.append(mat_name)
        if note and note not in notes:
            notes.append(note)
    if gone:
        missing = f"{', '.join(repr(n) for n in gone)} {'is' if len(gone) == 1 else 'are'} gone"
        if not materials:
            raise MaterialError(f"{missing}: nothing was applied")
        notes.append(missing)
    return materials, "; ".join(notes)
