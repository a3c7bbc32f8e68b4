"""Latent Studio Blender extension: train StyleGAN models on renders, use them as textures."""

from . import bridge, operators, panels, preferences, properties, render_dataset

# registration order: data types first, then operators and UI, the queue timer last
_modules = (properties, preferences, render_dataset, operators, panels, bridge)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
