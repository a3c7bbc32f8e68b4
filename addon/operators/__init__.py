"""Operators, one per user action, grouped like the panels.

Operators check their input on the main thread, collect plain data (names, paths,
numbers), and hand the network/file work to a worker (`bridge.runner`) together with the
main-thread handlers for its results; the handlers look Blender data up by name.
"""

from __future__ import annotations

import bpy

from .. import render_dataset
from . import connection, dataset, delete, directions, explore, generate, render, training, walk
from . import timelapse
from . import projection

_classes = (*connection.classes, *render.classes, *dataset.classes, *training.classes, *generate.classes,
            *walk.classes, *delete.classes, *explore.classes, *directions.classes)
_classes += timelapse.classes
_classes += projection.classes
_register, _unregister = bpy.utils.register_classes_factory(_classes)


def register():
    _register()


def unregister():
    render_dataset.stop_current()  # a render cut short by disabling the add-on: the user's scene comes back
    _unregister()
