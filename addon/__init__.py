"""Latent Studio Blender extension: train StyleGAN models on renders, use them as textures.

The bpy modules are imported in register()/unregister() only, so plain Python (worker
threads, unit tests) can import the bpy-free `core` subpackage without Blender.
"""


def _modules():
    from . import (bridge, directions, explore, operators, panels, panels_directions, panels_explore, preferences,
                   properties, watch)
    from . import training_media
    from . import panels_projection

    # registration order: data types first, then operators and UI, the queue timer last
    return (properties, explore, directions, preferences, operators, panels, panels_explore, panels_directions, watch,
            training_media, panels_projection, bridge)


def register():
    for module in _modules():
        module.register()


def unregister():
    for module in reversed(_modules()):
        module.unregister()
