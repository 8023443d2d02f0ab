"""The window a lost laptop shows: the district's message ("This laptop belongs to … Please return it
to …"), large and plain. Its own process, opened by the tray; closed, the tray opens it again at its
next poll for as long as lost mode lasts (agent.desktop.tray). The same window, with `--ended`,
tells a user at login that location evidence was collected, once.

    python -m agent.desktop.lost_notice --message TEXT [--ended]

Tk (in the standard library, as the sign-off dialog), 16 pt text. When HOMEROOM_DIALOG_STATE names
a file, the window writes its widgets' places there (the dialogs' test hook).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tkinter as tk
from collections.abc import Sequence
from pathlib import Path
from tkinter import font as tkfont

from agent.desktop.lost_view import ENDED_TITLE, NOTICE_TITLE
from agent.desktop.widget_boxes import widget_box
from agent.state import write_atomically

STATE_ENV = "HOMEROOM_DIALOG_STATE"
HEADING = "This laptop has been reported lost"


class LostNotice:
    def __init__(self, root: tk.Tk, message: str, ended: bool, state_file: Path | None) -> None:
        self.root = root
        self.state_file = state_file
        root.title(ENDED_TITLE if ended else NOTICE_TITLE)
        root.geometry("720x420")
        root.configure(background="#FFFFFF")
        base = tkfont.nametofont("TkDefaultFont").actual("family")
        frame = tk.Frame(root, name="notice", padx=24, pady=20, background="#FFFFFF")
        frame.pack(fill="both", expand=True)
        if not ended:
            tk.Label(
                frame, name="heading", text=HEADING, font=(base, 20, "bold"), fg="#4A148C", bg="#FFFFFF"
            ).pack(anchor="w")
        tk.Label(
            frame,
            name="message",
            text=message,
            font=(base, 16),
            justify="left",
            anchor="w",
            wraplength=660,
            bg="#FFFFFF",
            fg="#111111",
        ).pack(fill="x", pady=(12, 12))
        self.close = tk.Button(frame, name="close", text="OK" if ended else "Close", font=(base, 14),
                               command=self.finish)  # fmt: skip
        self.close.pack(anchor="e", side="bottom")
        root.protocol("WM_DELETE_WINDOW", self.finish)
        root.bind("<Map>", lambda _e: root.after_idle(self._write_state), add="+")
        if not ended:
            root.attributes("-topmost", True)

    def finish(self) -> None:
        self._write_state(closing=True)
        self.root.destroy()

    def _write_state(self, closing: bool = False) -> None:
        if self.state_file is None:
            return
        try:
            snapshot = {"title": self.root.title(), "close": widget_box(self.close), "closed": closing}
        except tk.TclError:
            return
        write_atomically(self.state_file, json.dumps(snapshot))


def notice_command(message: str, ended: bool = False) -> list[str]:
    # "--message=…": a message that starts with "-" is still the message, not an option.
    command = [sys.executable, "-m", "agent.desktop.lost_notice", f"--message={message}"]
    return [*command, "--ended"] if ended else command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.desktop.lost_notice")
    parser.add_argument("--message", required=True)
    parser.add_argument("--ended", action="store_true", help="lost mode has ended: say what was collected")
    args = parser.parse_args(argv)
    state_path = os.environ.get(STATE_ENV)
    try:
        root = tk.Tk(className="HomeroomLost")
    except tk.TclError as error:
        print(f"homeroom: cannot open a window: {error}", file=sys.stderr)
        return 2
    LostNotice(root, args.message, args.ended, Path(state_path) if state_path else None)
    root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
