"""Add-on preferences: where the companion server is and how to authenticate."""

import bpy


class LATENT_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    server_url: bpy.props.StringProperty(
        name="Server URL",
        description="Address of the Latent Studio companion server, as it prints it (with or without /api/v1)",
        default="http://127.0.0.1:7860",
    )
    token: bpy.props.StringProperty(
        name="Access token",
        description="Printed by the server on start (also in its data directory)",
        subtype="PASSWORD",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "server_url")
        layout.prop(self, "token")
        status = context.window_manager.latent_status
        row = layout.row()
        row.operator("latent.check_connection", icon="WORLD")
        row.label(text=status.connection)
        if not bpy.app.online_access:
            layout.label(text="Online access is off: only a local server (127.0.0.1, localhost) can be used",
                         icon="INFO")


_classes = (LATENT_AP_preferences,)


register, unregister = bpy.utils.register_classes_factory(_classes)
