"""Put "Upscale with napari-superres" in the layer list's right-click menu.

The manifest declares the item under ``napari/layers/context``, but napari 0.9 registers plugin menu items
only for its "contributable" menus (the Layers menu bar submenus), so the right-click item would be dropped.
napari does register the command itself; this module adds that command to the right-click menu through
app-model's public API, once, when the plugin's widgets load.
"""

from __future__ import annotations

COMMAND_ID = "napari-superres-keras.upscale_selected"
CONTEXT_MENU = "napari/layers/context"


def ensure_context_menu_item() -> bool:
    """Add the command to the layer context menu if napari knows it and it is not there yet; True if present."""
    from app_model.expressions import parse_expression
    from app_model.types import CommandRule, MenuItem

    app = napari_app()
    if app is None or COMMAND_ID not in app.commands:
        return False
    menu = app.menus.get_menu(CONTEXT_MENU)
    if any(getattr(getattr(item, "command", None), "id", None) == COMMAND_ID for item in menu):
        return True
    item = MenuItem(
        command=CommandRule(id=COMMAND_ID, title="Upscale with napari-superres"),
        when=parse_expression("num_selected_image_layers >= 1"),
        group="3_napari_superres",
    )
    app.menus.append_menu_items([(CONTEXT_MENU, item)])
    return True


def napari_app():
    """napari's app-model application (the one its menus are built from), or None."""
    try:
        from napari._app_model import get_app_model

        return get_app_model()
    except (ImportError, RuntimeError):
        from app_model import Application

        return Application.get_app("napari")
