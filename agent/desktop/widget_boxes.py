"""Where a Tk widget is on screen and whether it can be used: what the dialogs' test hook writes.

The display tests click real widgets on a real X server; they need each widget's place, size and
state from the dialog itself, because Tk gives no outside view of them.
"""

from __future__ import annotations

import contextlib
import tkinter as tk
from typing import Any


def widget_box(widget: tk.Misc) -> dict[str, Any]:
    box: dict[str, Any] = {
        "x": widget.winfo_rootx(),
        "y": widget.winfo_rooty(),
        "width": widget.winfo_width(),
        "height": widget.winfo_height(),
        "mapped": bool(widget.winfo_ismapped()),
    }
    with contextlib.suppress(tk.TclError):  # frames and labels have no state
        box["state"] = str(widget.cget("state"))
    return box
