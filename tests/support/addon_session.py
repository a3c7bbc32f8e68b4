"""The installed extension in a headless Blender, driven like an artist would (tests/blender).

`addon_script(addon_zip, body)` is a script for `run_blender`: it installs the extension
and defines, inside Blender, the helpers the add-on tests share:

    bridge, watch, s (the scene's settings, looked up again after a file is opened), status
    connect(url, token)          Check Connection and wait for its answer
    pump_until(predicate, t)     run the add-on's queue (as its timer does) until predicate()
    messages(level=None)         what the add-on reported so far, as (level, text)
    poll_reason(op)              None when `bpy.ops.latent.<op>` can run, else its greyed-out reason
    pixels_hash(name)            a digest of an image's pixels (to tell images apart)
    select_job(job_id)           click a job in the list
"""

from __future__ import annotations

import textwrap

MOD = "bl_ext.user_default.latent_studio"

HELPERS = textwrap.dedent(
    f"""
    import hashlib, importlib, os, time
    MOD = {MOD!r}
    bridge = importlib.import_module(MOD + ".bridge")
    watch = importlib.import_module(MOD + ".watch")
    status = bpy.context.window_manager.latent_status
    prefs = bpy.context.preferences.addons[MOD].preferences

    class _Settings:
        # the scene's settings, looked up on every use: opening a file replaces the scene
        def __getattr__(self, name):
            return getattr(bpy.context.scene.latent, name)
        def __setattr__(self, name, value):
            setattr(bpy.context.scene.latent, name, value)
    s = _Settings()

    def pump_until(predicate, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bridge.pump()
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def connect(url, token):
        prefs.server_url, prefs.token = url, token
        bpy.ops.latent.check_connection()
        bridge.pump_until_idle(60)
        return bpy.context.window_manager.latent_status.connection

    def messages(level=None):
        return [(lv, text) for _t, lv, text in bridge.log if level is None or lv == level]

    def poll_reason(op):
        if getattr(bpy.ops.latent, op).poll():
            return None
        try:
            getattr(bpy.ops.latent, op)()
        except RuntimeError as exc:
            return str(exc).split(".poll() ", 1)[-1].strip()
        return "greyed out without a reason"

    def pixels_hash(name):
        img = bpy.data.images.get(name)
        if img is None:
            return None
        return hashlib.sha256(bytes(int(v * 255) for v in img.pixels[:])).hexdigest()

    def select_job(job_id):
        ids = [row.job_id for row in bpy.context.scene.latent.jobs]
        bpy.context.scene.latent.job_index = ids.index(str(job_id))
    """
)


def addon_script(addon_zip, *parts: str) -> str:
    """A run_blender script: install the extension, define the helpers, then run `parts`
    (each dedented on its own, so constants, shared steps and the test body can be joined)."""
    body = "\n".join(textwrap.dedent(part) for part in parts)
    return f"install_extension({str(addon_zip)!r})\n" + HELPERS + "\n" + body
