"""The user's model library inside the Train widget: the trained models, with rename and delete."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import ComboBox, Container, Label, LineEdit, PushButton

from napari_superres.errors import SuperResError

from . import _models
from ._runs import show_failure


class LibraryControls:
    """Mixed into a widget: ``_library_section()`` builds the controls; the widget's ``_check_name()`` runs
    again whenever the library changes (a name may have become free or taken)."""

    def _library_section(self) -> Container:
        self._library = ComboBox(label="Your models", choices=self._library_choices)
        self._library_info = Label(label="", value="")
        self._new_name = LineEdit(label="New name", value="")
        self._rename = PushButton(text="Rename")
        self._delete = PushButton(text="Delete")
        self._library_info.native.setWordWrap(True)
        self._library.changed.connect(self._update_library_info)
        self._rename.clicked.connect(self.rename_selected)
        self._delete.clicked.connect(self._confirm_delete)
        return Container(
            labels=True,
            widgets=[
                self._library,
                self._library_info,
                self._new_name,
                Container(widgets=[self._rename, self._delete], layout="horizontal", labels=False),
            ],
        )

    def _library_choices(self, _widget=None):
        return [(c.text, c.value) for c in _models.user_models()]

    def _on_library_changed(self, select: str = ""):
        self._library.reset_choices()
        values = [v for _, v in self._library_choices()]
        if select in values:
            self._library.value = select
        self._update_library_info()
        self._check_name()

    def _update_library_info(self, *_):
        choice = next((c for c in _models.user_models() if c.value == self._library.value), None)
        if choice is None:
            self._library_info.value = "No trained models yet."
        else:
            self._library_info.value = _models.summary_line(choice.description)
            self._new_name.value = Path(choice.value).stem
        self._rename.enabled = self._delete.enabled = choice is not None

    def rename_selected(self, *_):
        if not self._library.value:
            return None
        try:
            return _models.rename_user_model(self._library.value, self._new_name.value)
        except SuperResError as exc:
            show_failure(exc, "Renaming the model")
            return None

    def _confirm_delete(self, *_):
        from qtpy.QtWidgets import QMessageBox

        if not self._library.value:
            return
        name = Path(self._library.value).stem
        answer = QMessageBox.question(
            self.native, "Delete model", f"Delete your model {name!r}? This cannot be undone."
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_selected()

    def delete_selected(self):
        if not self._library.value:
            return
        try:
            _models.delete_user_model(self._library.value)
        except SuperResError as exc:
            show_failure(exc, "Deleting the model")
