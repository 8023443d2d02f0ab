"""The tray's small read-only windows, each run as its own process by the tray.

    python -m agent.desktop.panels status FILE          # {"results": [...], "signoff_pending": bool, …}
    python -m agent.desktop.panels collects [--level adult|secondary|elementary]
    python -m agent.desktop.panels about --version V --server URL --device ID
    python -m agent.desktop.panels policy FILE          # the Acceptable Use Policy, read-only

What each window says is built by pure functions (`*_blocks`) as (style, text)
pairs; `show` only lays them out in a scrollable, read-only Tk text view that
works with the keyboard (Escape or Enter closes it) and large, readable type. The status window
has one action: when the software check fails, "Ask IT to approve an app…" opens the request form
(agent.desktop.approval_form) as its own process. When HOMEROOM_DIALOG_STATE names a file, a window
writes its buttons' screen positions there once shown (the test hook the dialogs share).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from agent.desktop.approval_request import form_command
from agent.desktop.tray_state import PENDING_WORDS, requirement_lines, tray_state
from contract.collected import INTRO, LEVELS, NOT_COLLECTED, Level, topic_lines

Style = Literal["heading", "subheading", "body", "fix", "pass", "fail", "unsure", "bullet"]
Block = tuple[Style, str]

TITLE_PREFIX = "Homeroom — "
ASK_APPROVAL = "Ask IT to approve an app…"
STATE_ENV = "HOMEROOM_DIALOG_STATE"
REQUEST_WORDS = {
    "waiting": "waiting to be sent (it goes when the laptop reaches the district's server)",
    "sent": "sent to IT, waiting for their answer",
    "approved": "approved by IT",
    "declined": "declined by IT",
    "refused": "not sent",
}
MARKS: dict[str, tuple[Style, str]] = {
    "pass": ("pass", "✔"),
    "fail": ("fail", "✖"),
    "unknown": ("unsure", "?"),
    "error": ("unsure", "?"),
}


def status_blocks(data: dict[str, Any]) -> list[Block]:
    """Each requirement in friendly words, and how to fix what fails."""
    results = data.get("results") or []
    pending = bool(data.get("signoff_pending"))
    state = tray_state(results, pending)
    blocks: list[Block] = [("heading", "My laptop's status"), ("body", state.tooltip + ".")]
    for line in requirement_lines(results):
        style, mark = MARKS[line.status]
        blocks.append((style, f"{mark} {line.title}: {line.words}"))
        if line.summary:
            blocks.append(("body", line.summary[0].upper() + line.summary[1:]))
        if line.how_to_fix:
            blocks.append(("fix", f"How to fix it: {line.how_to_fix}"))
    if pending:
        blocks.append(("subheading", "Acceptable Use Policy"))
        blocks.append(
            (
                "body",
                f"{PENDING_WORDS[0].upper()}{PENDING_WORDS[1:]}. Homeroom will ask you to read and sign it.",
            )
        )
    if not results:
        blocks.append(("body", "The first check has not finished yet. This window shows it once it has."))
    requests = [r for r in data.get("approvals") or [] if isinstance(r, dict)]
    if requests:
        blocks.append(("subheading", "Your requests to IT"))
        for request in requests[-10:]:
            words = REQUEST_WORDS.get(str(request.get("state")), "")
            message = str(request.get("message") or "")
            blocks.append(("bullet", f"{request.get('app')}: {words}" + (f" — {message}" if message else "")))
    return blocks


def software_fails(data: dict[str, Any]) -> bool:
    """Whether the status window offers "Ask IT to approve an app…": the software check failed."""
    return any(
        isinstance(r, dict) and r.get("id") == "software" and r.get("status") == "fail"
        for r in data.get("results") or []
    )


def collects_blocks(level: Level = "secondary") -> list[Block]:
    """What Homeroom sends, built from contract/collected.py: the same list every policy holds.

    The window and the policies are generated from the one description of what the agent sends,
    which a test holds to what a real agent really sends.
    """
    return [
        ("heading", "What Homeroom collects"),
        ("body", f"Homeroom checks that this laptop is safe. {INTRO[level]}"),
        *[("bullet", line) for line in topic_lines(level)],
        ("subheading", "What Homeroom does not collect"),
        ("body", NOT_COLLECTED[level]),
    ]


def about_blocks(version: str, server: str, device: str) -> list[Block]:
    return [
        ("heading", "About Homeroom"),
        (
            "body",
            "Homeroom helps keep this laptop safe and in line with the district's Acceptable Use Policy.",
        ),
        ("bullet", f"Version: {version}"),
        ("bullet", f"Server: {server}"),
        ("bullet", f"Device id: {device}"),
    ]


def policy_blocks(text: str) -> list[Block]:
    """The policy as plain text: its header left out, headings and "- " lists kept recognisable."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "+++":
        closing = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "+++"), None)
        if closing is not None:
            lines = lines[closing + 1 :]
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(("body", " ".join(paragraph).replace("**", "")))
            paragraph.clear()

    for raw in lines:
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("## "):
            flush()
            blocks.append(("subheading", line[3:].strip()))
        elif line.startswith("# "):
            flush()
            blocks.append(("heading", line[2:].strip()))
        elif line.startswith(("- ", "* ")):
            flush()
            blocks.append(("bullet", line[2:].strip().replace("**", "")))
        else:
            paragraph.append(line)
    flush()
    return blocks or [("body", "The policy is empty.")]


def read_policy_blocks(path: str) -> list[Block]:
    if not path:
        return [
            ("heading", "Acceptable Use Policy"),
            ("body", "The district has not published the policy to this laptop yet."),
        ]
    try:
        return policy_blocks(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        return [("heading", "Acceptable Use Policy"), ("body", f"The policy could not be opened: {exc}")]


def show(
    title: str, blocks: Sequence[Block], actions: Sequence[tuple[str, Callable[[], object]]] = ()
) -> None:
    """A read-only, scrollable window with a Close button (and `actions`); Escape or Enter closes it."""
    import tkinter as tk
    from tkinter import font as tkfont

    root = tk.Tk(className="homeroom")
    root.title(TITLE_PREFIX + title)
    root.geometry("620x520")
    base = tkfont.nametofont("TkDefaultFont").actual("family")
    # The button is packed first so a long text can never push it out of the window.
    close = tk.Button(root, name="close", text="Close", underline=0, command=root.destroy, font=(base, 12))
    close.pack(side="bottom", pady=10)
    buttons = {"close": close}
    for index, (label, action) in enumerate(actions):
        button = tk.Button(root, name=f"action{index}", text=label, command=action, font=(base, 12))
        button.pack(side="bottom", pady=(10, 0))
        buttons[f"action{index}"] = button
    frame = tk.Frame(root, name="content")
    frame.pack(side="top", fill="both", expand=True, padx=12, pady=(12, 0))
    scrollbar = tk.Scrollbar(frame, name="scrollbar")
    text = tk.Text(
        frame,
        name="text",
        wrap="word",
        font=(base, 12),
        height=10,
        yscrollcommand=scrollbar.set,
        padx=8,
        pady=8,
    )
    scrollbar.configure(command=text.yview)
    scrollbar.pack(side="right", fill="y")
    text.pack(side="left", fill="both", expand=True)
    text.tag_configure("heading", font=(base, 16, "bold"), spacing3=8)
    text.tag_configure("subheading", font=(base, 13, "bold"), spacing1=10, spacing3=4)
    text.tag_configure("body", spacing3=6)
    text.tag_configure("bullet", lmargin1=12, lmargin2=28, spacing3=4)
    text.tag_configure("fix", lmargin1=24, lmargin2=24, spacing3=8, foreground="#1A237E")
    text.tag_configure("pass", font=(base, 12, "bold"), foreground="#2E7D32", spacing1=8)
    text.tag_configure("fail", font=(base, 12, "bold"), foreground="#C62828", spacing1=8)
    text.tag_configure("unsure", font=(base, 12, "bold"), foreground="#8D6E00", spacing1=8)
    for style, content in blocks:
        text.insert("end", ("•  " if style == "bullet" else "") + content + "\n", style)
    text.configure(state="disabled")
    for key in ("<Escape>", "<Return>", "<Alt-c>"):
        root.bind(key, lambda _event: root.destroy())
    close.focus_set()
    state_file = os.environ.get(STATE_ENV)
    if state_file:

        def write_state() -> None:
            boxes = {
                name: {
                    "text": str(b.cget("text")),
                    "x": b.winfo_rootx(),
                    "y": b.winfo_rooty(),
                    "width": b.winfo_width(),
                    "height": b.winfo_height(),
                }
                for name, b in buttons.items()
            }
            Path(state_file).write_text(
                json.dumps({"title": root.title(), "buttons": boxes}), encoding="utf-8"
            )

        root.after(300, write_state)
    root.mainloop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.desktop.panels")
    windows = parser.add_subparsers(dest="window", required=True)
    status = windows.add_parser("status")
    status.add_argument("file", type=Path)
    collects = windows.add_parser("collects")
    collects.add_argument("--level", choices=LEVELS, default="secondary", help="whose words to use")
    about = windows.add_parser("about")
    about.add_argument("--version", default="")
    about.add_argument("--server", default="")
    about.add_argument("--device", default="")
    policy = windows.add_parser("policy")
    policy.add_argument("file", nargs="?", default="")
    args = parser.parse_args(argv)

    if args.window == "status":
        try:
            data = json.loads(args.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        data = data if isinstance(data, dict) else {}
        actions: list[tuple[str, Callable[[], object]]] = []
        if software_fails(data) and data.get("state_dir") and data.get("user"):
            command = form_command(Path(str(data["state_dir"])), str(data["user"]), args.file)
            actions.append((ASK_APPROVAL, lambda: subprocess.Popen(command)))
        show("My laptop's status", status_blocks(data), actions)
    elif args.window == "collects":
        show("What Homeroom collects", collects_blocks(args.level))
    elif args.window == "about":
        show("About", about_blocks(args.version, args.server, args.device))
    else:
        blocks = read_policy_blocks(args.file)
        # The window is named like the document ("My School Laptop Promise"), as its first heading says.
        title = next((text for style, text in blocks if style == "heading"), "Acceptable Use Policy")
        show(title, blocks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
