"""Latent Studio Blender extension: train StyleGAN models on renders, use them as textures.

The bpy modules are imported in register()/unregister() only, so plain Python (worker
threads, unit tests) can import the bpy-free `core` subpackage without Blender.
"""


def _modules():
    from . import bridge, operators, panels, preferences, properties, watch

    # registration order: data types first, then operators and UI, the queue timer last
    return (properties, preferences, operators, panels, watch, bridge)


def register():
    for module in _modules():
        module.register()


def unregister():
    for module in reversed(_modules()):
        module.unregister()
