"""The form a person fills in to ask IT to approve an app: which app, why, and their name.

    python -m agent.desktop.approval_form --state-dir DIR --user ACCOUNT [--results FILE]

The tray opens it (menu "Ask IT to approve an app…", and the status window's button when the
software check fails), each time as its own process so Tk never shares a thread with the tray's
GTK loop. The app is picked from the unapproved ones the last software check found (FILE holds
the tray's results) or typed. What is wrong is said beside the field (agent.desktop.approval_request,
the rules the service applies again); a request that passes is handed to the service's inbox,
and the form then says what became of it, from STATE/approvals.json: sent to IT, or waiting to be
sent (the laptop is offline; it goes when it can). Escape closes; Enter in the name box sends.

When HOMEROOM_DIALOG_STATE names a file, the form writes its widget states and screen positions
there after every change (the same test hook as the sign-off dialog).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tkinter as tk
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from tkinter import font as tkfont
from tkinter import ttk
from typing import Any

from agent.approval_status import RequestStatus, district_contact, read_statuses
from agent.desktop.approval_request import (
    Choice,
    choices_from_results,
    inbox_record,
    request_problems,
    tidy,
)
from agent.desktop.handoff import INBOX_DIR, write_entry
from agent.desktop.widget_boxes import widget_box
from agent.state import requirements_in_effect, write_atomically
from contract.errors import ConfigError
from contract.requirements import Requirements, load_requirements

TITLE = "Homeroom — Ask IT to approve an app"
STATE_ENV = "HOMEROOM_DIALOG_STATE"
POLL_MS = 500

SENT = "Sent to IT. You will see their answer in Homeroom's tray menu, under “My laptop's status”."
WAITING = (
    "Saved. It is waiting to be sent: this laptop cannot reach the district's server right now, "
    "and Homeroom sends it as soon as it can. Nothing is lost if you close this window."
)
HANDED = (
    "Handed to Homeroom. It goes to IT with the laptop's next check; nothing is lost if you close "
    "this window."
)
NO_SERVICE = (
    "Homeroom could not take your request ({error}). Is the Homeroom service running? "
    "Please try again later, or tell your school's IT team."
)


def confirmation(status: RequestStatus | None) -> str:
    """Pure: what the form says once the request is handed over, from where approvals.json has it."""
    if status is None:
        return HANDED
    if status.state == "waiting":
        return WAITING
    if status.state == "sent":
        return SENT
    if status.state == "approved":
        return f"IT approved “{status.app}”."
    if status.state == "declined":
        return f"IT declined “{status.app}”: {status.message}"
    return f"Homeroom could not send it: {status.message}"


def requirements_for(state_dir: Path) -> Requirements:
    """The lists the service checks against (the server's copy, else the local file)."""

    def local() -> Requirements:
        try:
            return load_requirements()
        except ConfigError:
            return Requirements()

    return requirements_in_effect(state_dir, local)


class ApprovalForm:
    def __init__(
        self,
        root: tk.Tk,
        state_dir: Path,
        user: str,
        choices: list[Choice],
        state_file: Path | None = None,
    ) -> None:
        self.root = root
        self.state_dir = state_dir
        self.user = user
        self.choices = choices
        self.state_file = state_file
        self.record_id: str | None = None
        self.problems: dict[str, str] = {}
        root.title(TITLE)
        root.geometry("640x560")
        base = tkfont.nametofont("TkDefaultFont").actual("family")
        body, bold = (base, 12), (base, 12, "bold")
        frame = tk.Frame(root, name="form", padx=16, pady=12)
        frame.pack(fill="both", expand=True)
        tk.Label(frame, text="Ask IT to approve an app", font=(base, 16, "bold"), anchor="w").pack(fill="x")
        tk.Label(
            frame,
            text="Your school's IT team reviews each request. Say which app, and why you need it.",
            font=body,
            anchor="w",
            justify="left",
            wraplength=600,
        ).pack(fill="x", pady=(4, 10))

        tk.Label(frame, text="Which app?", font=bold, anchor="w").pack(fill="x")
        self.app = ttk.Combobox(frame, name="app", values=[c.label for c in choices], font=body)
        if len(choices) == 1:
            self.app.set(choices[0].label)
        self.app.pack(fill="x")
        self.app_error = self._error_label(frame, "app_error", body)

        tk.Label(frame, text="Why do you need it for your school work?", font=bold, anchor="w").pack(
            fill="x", pady=(8, 0)
        )
        self.reason = tk.Text(frame, name="reason", height=5, wrap="word", font=body)
        self.reason.pack(fill="x")
        self.reason_error = self._error_label(frame, "reason_error", body)

        tk.Label(frame, text="Your name", font=bold, anchor="w").pack(fill="x", pady=(8, 0))
        self.full_name = tk.Entry(frame, name="full_name", font=body)
        self.full_name.pack(fill="x")
        self.name_error = self._error_label(frame, "full_name_error", body)

        buttons = tk.Frame(frame, name="buttons")
        buttons.pack(fill="x", pady=(12, 0))
        self.send = tk.Button(buttons, name="send", text="Send to IT", font=bold, command=self.submit)
        self.send.pack(side="left")
        self.close = tk.Button(buttons, name="close", text="Close", font=body, command=self.finish)
        self.close.pack(side="right")
        self.result = tk.Label(
            frame, name="result", text="", font=body, anchor="w", justify="left", wraplength=600
        )
        self.result.pack(fill="x", pady=(12, 0))

        # Tab moves between fields (the reason box would otherwise take the Tab as text).
        self.reason.bind("<Tab>", lambda _e: self._focus(self.full_name))
        self.reason.bind("<Shift-Tab>", lambda _e: self._focus(self.app))
        self.full_name.bind("<Return>", lambda _e: self.submit())
        root.bind("<Escape>", lambda _e: self.finish())
        root.protocol("WM_DELETE_WINDOW", self.finish)
        for widget in (self.app, self.reason, self.full_name):
            widget.bind("<KeyRelease>", lambda _e: self._schedule_state(), add="+")
            widget.bind("<FocusIn>", lambda _e: self._schedule_state(), add="+")
        self.app.bind("<<ComboboxSelected>>", lambda _e: self._schedule_state(), add="+")
        root.bind("<Map>", lambda _e: self._schedule_state(), add="+")
        self.app.focus_set()
        self._state_pending = False
        self._schedule_state()

    def _error_label(self, parent: tk.Misc, name: str, font: tuple[str, int]) -> tk.Label:
        label = tk.Label(
            parent, name=name, text="", font=font, fg="#B71C1C", anchor="w", justify="left", wraplength=600
        )
        label.pack(fill="x")
        return label

    def _focus(self, widget: tk.Widget) -> str:
        widget.focus_set()
        return "break"

    # --- sending ----------------------------------------------------------------------------

    def submit(self) -> None:
        if self.record_id is not None:
            return  # handed over once; closing and reopening asks for another
        request = tidy(
            self.app.get(), "", self.reason.get("1.0", "end-1c"), self.full_name.get(), self.choices
        )
        self.problems = request_problems(
            request, requirements_for(self.state_dir), district_contact(self.state_dir)
        )
        self.app_error.configure(text=self.problems.get("app", ""))
        self.reason_error.configure(text=self.problems.get("reason", ""))
        self.name_error.configure(text=self.problems.get("full_name", ""))
        if self.problems:
            self.result.configure(text="Please fix what is marked above, then send again.")
            self._schedule_state()
            return
        record_id = uuid.uuid4().hex
        body = inbox_record(request, self.user, record_id, datetime.now(timezone.utc).isoformat())
        try:
            write_entry(self.state_dir / INBOX_DIR, "approval_request", record_id, body)
        except OSError as exc:
            self.result.configure(text=NO_SERVICE.format(error=exc.strerror or exc))
            self._schedule_state()
            return
        self.record_id = record_id
        self.send.configure(state="disabled")
        self.result.configure(text=HANDED)
        self._schedule_state()
        self.root.after(POLL_MS, self._follow)

    def _follow(self) -> None:
        """Says what became of the request while the window is open: waiting, then sent."""
        status = next((s for s in read_statuses(self.state_dir) if s.record_id == self.record_id), None)
        text = confirmation(status)
        if text != self.result.cget("text"):
            self.result.configure(text=text)
            self._schedule_state()
        self.root.after(POLL_MS, self._follow)

    def finish(self) -> None:
        self._write_state(closing=True)
        self.root.destroy()

    # --- the test hook ------------------------------------------------------------------------

    def _schedule_state(self) -> None:
        if self.state_file is None or self._state_pending:
            return
        self._state_pending = True
        self.root.after_idle(self._write_state)

    def state(self) -> dict[str, Any]:
        focus = self.root.focus_get()
        return {
            "focus": focus.winfo_name() if focus is not None else None,
            "choices": list(self.app.cget("values")),
            "app": self.app.get(),
            "reason": self.reason.get("1.0", "end-1c"),
            "full_name": self.full_name.get(),
            "errors": {
                "app": self.app_error.cget("text"),
                "reason": self.reason_error.cget("text"),
                "full_name": self.name_error.cget("text"),
            },
            "result": self.result.cget("text"),
            "record_id": self.record_id,
            "window_title": self.root.title(),
            "widgets": {
                name: widget_box(widget)
                for name, widget in (
                    ("app", self.app),
                    ("reason", self.reason),
                    ("full_name", self.full_name),
                    ("send", self.send),
                    ("close", self.close),
                )
            },
        }

    def _write_state(self, closing: bool = False) -> None:
        self._state_pending = False
        if self.state_file is None:
            return
        try:
            snapshot = {**self.state(), "closed": closing}
        except tk.TclError:
            return
        write_atomically(self.state_file, json.dumps(snapshot))


def read_choices(path: Path | None) -> list[Choice]:
    """The unapproved apps in the tray's results file; none when it is missing or damaged."""
    if path is None:
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    listed = [
        item for key in ("software", "results") if isinstance(data.get(key), list) for item in data[key]
    ]
    return choices_from_results(listed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.desktop.approval_form")
    parser.add_argument("--state-dir", type=Path, required=True, help="the service's state directory")
    parser.add_argument("--user", required=True, help="the account asking (the tray's)")
    parser.add_argument("--results", type=Path, default=None, help="the tray's results (JSON)")
    args = parser.parse_args(argv)
    state_path = os.environ.get(STATE_ENV)
    try:
        root = tk.Tk(className="HomeroomApproval")
    except tk.TclError as error:
        print(f"homeroom: cannot open a window: {error}", file=sys.stderr)
        return 2
    ApprovalForm(
        root, args.state_dir, args.user, read_choices(args.results), Path(state_path) if state_path else None
    )
    root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
