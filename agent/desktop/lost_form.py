"""The form a person fills in to report a laptop lost or stolen: this one or another district laptop.

    python -m agent.desktop.lost_form --state-dir DIR --user ACCOUNT

The tray opens it (menu "Report lost or stolen…") as its own process, like the approval form. What
is wrong is said beside the field (agent.desktop.lost_report, the rules the service applies again);
an empty form says so as a whole. A report that passes is handed to the service's inbox, kept in the
person's own copy ($XDG_STATE_HOME/homeroom/lost-reports.json, 0600), and the form then says plainly
what became of it, from STATE/lost-reports.json: waiting to be sent (offline: it goes when it can,
nothing is lost), sent (with the district's answer: recorded, a laptop it does not know with the
closest matches, already reported, already recovered), or not sent and why. Escape closes.

When HOMEROOM_DIALOG_STATE names a file, the form writes its widget states and screen positions
there after every change (the dialogs' test hook).
"""

from __future__ import annotations

import argparse
import contextlib
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

from agent.desktop.consent.records import user_dir
from agent.desktop.handoff import INBOX_DIR, write_entry
from agent.desktop.lost_report import (
    DEVICE_WORDS,
    STAFF_POLICE_NOTE,
    STUDENT_POLICE_NOTE,
    KeptReport,
    inbox_record,
    parse_when,
    read_copy,
    report_problems,
    tidy,
    with_outcomes,
    write_copy,
)
from agent.desktop.widget_boxes import widget_box
from agent.lost.reports import ReportStatus, read_report_statuses, status_map
from agent.state import STATUS_FILE, write_atomically

TITLE = "Homeroom — Report a lost or stolen laptop"
STATE_ENV = "HOMEROOM_DIALOG_STATE"
POLL_MS = 500
BY_LABELS = {words.capitalize(): by for by, words in DEVICE_WORDS.items()}

HANDED = (
    "Handed to Homeroom. It goes to the district with the laptop's next check; nothing is lost if "
    "you close this window."
)
WAITING = (
    "Saved. It is waiting to be sent: this laptop cannot reach the district's server right now, and "
    "Homeroom sends it as soon as it can. Nothing is lost if you close this window."
)
NO_SERVICE = (
    "Homeroom could not take your report ({error}). Is the Homeroom service running? Please tell "
    "your teacher, your supervisor or the school office directly."
)


def confirmation(status: ReportStatus | None) -> str:
    """Pure: what the form says once the report is handed over, from where lost-reports.json has it."""
    if status is None:
        return HANDED
    if status.state == "waiting":
        return WAITING
    if status.state == "refused":
        return f"Not sent: {status.message}"
    said = f" The district says: {status.message}" if status.message else ""
    if status.outcome == "unknown_device":
        closest = f" The closest it knows: {', '.join(status.closest)}." if status.closest else ""
        return (
            "Sent, but the district does not know a laptop by that name or number."
            f"{closest} Please check the label under the laptop and report again.{said}"
        )
    if status.outcome == "already_reported":
        return f"Sent. That laptop was already reported lost or stolen; IT has your report too.{said}"
    if status.outcome == "already_recovered":
        return f"Sent. That laptop has already been found and returned.{said}"
    return f"Sent to the district. IT will be in touch.{said}"


def audience_of(state_dir: Path) -> str:
    try:
        data = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "student"
    return "staff" if isinstance(data, dict) and data.get("audience") == "staff" else "student"


class LostForm:
    def __init__(self, root: tk.Tk, state_dir: Path, user: str, state_file: Path | None = None) -> None:
        self.root = root
        self.state_dir = state_dir
        self.user = user
        self.state_file = state_file
        self.record_id: str | None = None
        self.problems: dict[str, str] = {}
        self._state_pending = False
        root.title(TITLE)
        root.geometry("700x760")  # fits a 1366x768 screen; errors appear only where there are some
        base = tkfont.nametofont("TkDefaultFont").actual("family")
        body, bold = (base, 12), (base, 12, "bold")
        frame = tk.Frame(root, name="form", padx=16, pady=10)
        frame.pack(fill="both", expand=True)
        tk.Label(frame, text="Report a lost or stolen laptop", font=(base, 16, "bold"), anchor="w").pack(
            fill="x"
        )
        # Packed before the fields, at the bottom: "Send" and what became of the report stay in
        # sight whatever the fields above take.
        bottom = tk.Frame(frame, name="bottom")
        bottom.pack(side="bottom", fill="x")
        self.error_after: dict[tk.Label, tk.Misc] = {}

        tk.Label(frame, text="Which laptop?", font=bold, anchor="w").pack(fill="x", pady=(8, 0))
        self.which = tk.StringVar(value="this")
        self.this = tk.Radiobutton(
            frame, name="this", text="This laptop", variable=self.which, value="this", font=body, anchor="w"
        )
        self.this.configure(command=self._schedule_state)
        self.this.pack(fill="x")
        other = tk.Frame(frame, name="other_row")
        other.pack(fill="x")
        self.other = tk.Radiobutton(
            other, name="other", text="Another district laptop, by its", variable=self.which, value="other"
        )
        self.other.configure(font=body, command=self._schedule_state)
        self.other.pack(side="left")
        self.by = ttk.Combobox(
            other, name="by", values=list(BY_LABELS), state="readonly", width=26, font=body
        )
        self.by.set(next(iter(BY_LABELS)))
        self.by.pack(side="left", padx=(4, 0))
        self.device_value = tk.Entry(frame, name="device_value", font=body)
        self.device_value.pack(fill="x")
        self.device_value.bind("<FocusIn>", lambda _e: self.which.set("other"), add="+")
        self.device_error = self._error_label(frame, "device_error", body)

        tk.Label(frame, text="Was it lost or stolen?", font=bold, anchor="w").pack(fill="x", pady=(6, 0))
        self.kind = tk.StringVar(value="")
        kinds = tk.Frame(frame)
        kinds.pack(fill="x")
        self.kind_buttons: dict[str, tk.Radiobutton] = {}
        for value, text in (("lost", "Lost"), ("stolen", "Stolen")):
            button = tk.Radiobutton(kinds, name=value, text=text, variable=self.kind, value=value, font=body)
            button.configure(command=self._schedule_state)
            button.pack(side="left", padx=(0, 16))
            self.kind_buttons[value] = button
        self.kind_error = self._error_label(frame, "kind_error", body)

        self.when = self._entry(
            frame, "last_seen_at", "When was it last seen? (2026-12-01 14:30)", bold, body
        )
        self.when_error = self._error_label(frame, "last_seen_at_error", body)
        self.where = self._entry(frame, "last_seen_where", "Where was it last seen?", bold, body)
        self.where_error = self._error_label(frame, "last_seen_where_error", body)
        tk.Label(frame, text="What happened?", font=bold, anchor="w").pack(fill="x", pady=(6, 0))
        self.what = tk.Text(frame, name="what_happened", height=3, wrap="word", font=body)
        self.what.pack(fill="x")
        self.what_error = self._error_label(frame, "what_happened_error", body)
        self.police: tk.Entry = self._entry(
            frame, "police_report", "Police report number (if there is one)", bold, body
        )
        self.what.bind("<Tab>", lambda _e: self._focus(self.police))  # not a tab in the text
        note = STAFF_POLICE_NOTE if audience_of(state_dir) == "staff" else STUDENT_POLICE_NOTE
        self.police_note = tk.Label(frame, name="police_note", text=note, font=body, anchor="w",
                                    justify="left", wraplength=660)  # fmt: skip
        self.police_note.pack(fill="x")
        self.police_error = self._error_label(frame, "police_report_error", body)
        self.name = self._entry(frame, "reporter_name", "Your name", bold, body)
        self.name_error = self._error_label(frame, "reporter_name_error", body)
        self.contact = self._entry(frame, "contact", "How can IT reach you? (phone or e-mail)", bold, body)
        self.contact_error = self._error_label(frame, "contact_error", body)

        self.result = tk.Label(bottom, name="result", text="", font=body, anchor="w", justify="left",
                               wraplength=660)  # fmt: skip
        self.result.pack(fill="x", pady=(6, 0))
        buttons = tk.Frame(bottom, name="buttons")
        buttons.pack(fill="x", pady=(6, 0))
        self.send = tk.Button(buttons, name="send", text="Send report", font=bold, command=self.submit)
        self.send.pack(side="left")
        self.close = tk.Button(buttons, name="close", text="Close", font=body, command=self.finish)
        self.close.pack(side="right")
        root.bind("<Escape>", lambda _e: self.finish())
        root.protocol("WM_DELETE_WINDOW", self.finish)
        for widget in (
            self.device_value,
            self.when,
            self.where,
            self.what,
            self.police,
            self.name,
            self.contact,
        ):
            widget.bind("<KeyRelease>", lambda _e: self._schedule_state(), add="+")
        root.bind("<Map>", lambda _e: self._schedule_state(), add="+")
        self.named: dict[str, tk.Misc] = {
            "this": self.this,
            "other": self.other,
            "by": self.by,
            "device_value": self.device_value,
            "last_seen_at": self.when,
            "last_seen_where": self.where,
            "what_happened": self.what,
            "police_report": self.police,
            "reporter_name": self.name,
            "contact": self.contact,
            "send": self.send,
            "close": self.close,
            **self.kind_buttons,
        }
        self._schedule_state()

    def _entry(self, parent: tk.Misc, name: str, label: str, bold: Any, body: Any) -> tk.Entry:
        tk.Label(parent, text=label, font=bold, anchor="w").pack(fill="x", pady=(6, 0))
        entry = tk.Entry(parent, name=name, font=body)
        entry.pack(fill="x")
        return entry

    def _error_label(self, parent: tk.Misc, name: str, font: Any) -> tk.Label:
        label = tk.Label(parent, name=name, text="", font=font, fg="#B71C1C", anchor="w", justify="left",
                         wraplength=660)  # fmt: skip
        self.error_after[label] = parent.pack_slaves()[-1]  # shown under the field it is about
        return label

    def _say(self, label: tk.Label, text: str) -> None:
        label.configure(text=text)
        if text:
            label.pack(fill="x", after=self.error_after[label])
        else:
            label.pack_forget()

    def _focus(self, widget: tk.Widget) -> str:
        widget.focus_set()
        return "break"

    # --- sending ----------------------------------------------------------------------------

    def submit(self) -> None:
        if self.record_id is not None:
            return  # handed over once; a new report is a new form
        now = datetime.now(timezone.utc).astimezone()
        when, when_problem = parse_when(self.when.get(), now)
        by = "this" if self.which.get() == "this" else BY_LABELS.get(self.by.get(), "serial")
        report = tidy(
            by,
            self.device_value.get(),
            self.kind.get(),
            when,
            self.where.get(),
            self.what.get("1.0", "end-1c"),
            self.police.get(),
            self.name.get(),
            self.contact.get(),
        )
        self.problems = report_problems(report)
        if when_problem and "form" not in self.problems:
            self.problems["last_seen_at"] = when_problem
        for field, label in (
            ("device", self.device_error),
            ("loss", self.kind_error),
            ("last_seen_at", self.when_error),
            ("last_seen_where", self.where_error),
            ("what_happened", self.what_error),
            ("police_report", self.police_error),
            ("reporter_name", self.name_error),
            ("contact", self.contact_error),
        ):
            self._say(label, self.problems.get(field, ""))
        if self.problems:
            self.result.configure(
                text=self.problems.get("form", "Please fix what is marked above, then send again.")
            )
            self._schedule_state()
            return
        record_id = uuid.uuid4().hex
        made_at = datetime.now(timezone.utc).isoformat()
        entry = inbox_record(report, self.user, record_id, made_at)
        try:
            write_entry(self.state_dir / INBOX_DIR, "lost_report", record_id, entry)
        except OSError as exc:
            self.result.configure(text=NO_SERVICE.format(error=exc.strerror or exc))
            self._schedule_state()
            return
        self.record_id = record_id
        try:
            kept = read_copy(user_dir())
            write_copy(user_dir(), [*kept, KeptReport(record_id, made_at, entry)])
        except OSError:
            pass  # the report is with the service; only the person's own copy is missing
        self.send.configure(state="disabled")
        self.result.configure(text=HANDED)
        self._schedule_state()
        self.root.after(POLL_MS, self._follow)

    def _follow(self) -> None:
        """Says what became of the report while the window is open, and keeps it in the person's copy."""
        statuses = read_report_statuses(self.state_dir)
        status = next((s for s in statuses if s.record_id == self.record_id), None)
        text = confirmation(status)
        if text != self.result.cget("text"):
            self.result.configure(text=text)
            with contextlib.suppress(OSError):
                write_copy(user_dir(), with_outcomes(read_copy(user_dir()), status_map(statuses)))
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
        widgets = {name: widget_box(widget) for name, widget in self.named.items()}
        return {
            "which": self.which.get(),
            "kind": self.kind.get(),
            "errors": {
                "device": self.device_error.cget("text"),
                "kind": self.kind_error.cget("text"),
                "last_seen_at": self.when_error.cget("text"),
                "last_seen_where": self.where_error.cget("text"),
                "what_happened": self.what_error.cget("text"),
                "police_report": self.police_error.cget("text"),
                "reporter_name": self.name_error.cget("text"),
                "contact": self.contact_error.cget("text"),
            },
            "police_note": self.police_note.cget("text"),
            "result": self.result.cget("text"),
            "record_id": self.record_id,
            "window_title": self.root.title(),
            "widgets": widgets,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.desktop.lost_form")
    parser.add_argument("--state-dir", type=Path, required=True, help="the service's state directory")
    parser.add_argument("--user", required=True, help="the account reporting (the tray's)")
    args = parser.parse_args(argv)
    state_path = os.environ.get(STATE_ENV)
    try:
        root = tk.Tk(className="HomeroomLostReport")
    except tk.TclError as error:
        print(f"homeroom: cannot open a window: {error}", file=sys.stderr)
        return 2
    LostForm(root, args.state_dir, args.user, Path(state_path) if state_path else None)
    root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
