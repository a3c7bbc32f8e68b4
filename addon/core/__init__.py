"""The add-on's bpy-free core: HTTP client, task runner, worker functions and plain maths.

Nothing here imports bpy, so it runs on worker threads and in plain pytest; the bpy
modules one level up (operators, panels, properties, ...) sit on top of it.
"""
