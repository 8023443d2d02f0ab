"""The sign-off dialog: a person reads the Acceptable Use Policy, types their name, and decides.

It speaks the reader's language: the window and the opening sentence name the document by its own
title ("My School Laptop Promise"), the name box asks for "your name" (one name is enough), and
the version hash stays in the record, out of a student's header.

Built with tkinter (in the standard library, so it runs on every laptop the agent does) and
written for everyone who will meet it: 12 pt type at least and a "Larger text" toggle that
enlarges everything; the whole dialog works from the keyboard (Tab order: policy text, name,
I agree, I do not agree, Larger text; Enter presses the focused button; Alt plus the underlined
letter; Escape closes without deciding); every control has a visible label beside it. Tk on
Linux does not speak to screen readers, so widget names and the window title are plain words.

"I agree" stays disabled until the text has been scrolled to its end (a document that fits at
once counts as read) and a name of at least two letters is typed; a hint under the name says
which of the two is still missing. The decision's time is the moment of the click, not of
opening. "I do not agree" is always available; it shows, in the same window, whom to contact and
that Homeroom will ask again at the next login.

`python -m agent.desktop.consent.dialog --policy-json FILE` reads what to show from a JSON file and
prints the result as JSON: the tray runs it as its own process, and so do the tests. When
HOMEROOM_DIALOG_STATE names a file, the dialog writes its widget states and screen positions
there after every change: a test hook that lets tests drive the real window with xdotool.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tkinter as tk
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from tkinter import font as tkfont
from typing import Any, Literal

from agent.desktop.consent.decide import is_acceptable_name, normalise_full_name
from agent.desktop.widget_boxes import widget_box
from agent.state import write_atomically
from contract.policy import (
    DIALOG_ASK_AGAIN_AT_LOGIN,
    DIALOG_HOW_TO,
    DIALOG_WINDOW_PREFIX,
    dialog_declined_text,
    dialog_how_to,
    dialog_signed_in_line,
)

# The words come from contract/policy.py: the console's preview shows the same ones.
WINDOW_TITLE_PREFIX = DIALOG_WINDOW_PREFIX
STATE_ENV = "HOMEROOM_DIALOG_STATE"
BASE_POINTS = 12
LARGER_POINTS = 16
READ_THRESHOLD = 0.999
ASK_AGAIN_AT_LOGIN = DIALOG_ASK_AGAIN_AT_LOGIN
HOW_TO = DIALOG_HOW_TO

# Colours chosen for contrast (WCAG AA at these sizes) and so "I agree" visibly changes state.


@dataclass(frozen=True)
class Colours:
    background: str
    foreground: str
    pressed: str


AGREE_ENABLED = Colours(background="#1a5fb4", foreground="#ffffff", pressed="#144a8c")
AGREE_DISABLED = Colours(background="#e1e1e1", foreground="#5e5e5e", pressed="#e1e1e1")

BlockKind = Literal["heading1", "heading2", "paragraph", "bullet"]
DialogDecision = Literal["agree", "decline", "closed"]


@dataclass(frozen=True)
class DialogResult:
    decision: DialogDecision
    full_name: str
    decided_at: str = ""  # ISO 8601 UTC, the moment "I agree" or "I do not agree" was pressed


def _missing_hint(read_to_end: bool, name_ok: bool) -> str:
    """The sentence under the name box that says what still stands between the person and I agree."""
    if not read_to_end and not name_ok:
        return "To agree, read all the way to the end and type your name in the box."
    if not read_to_end:
        return "To agree, read all the way to the end."
    if not name_ok:
        return "To agree, type your name in the box (at least two letters)."
    return "Thank you for reading. You can now choose “I agree”."


class SignOffDialog:
    """One window, two views: the policy with the decision, then (after declining) whom to contact."""

    def __init__(
        self,
        root: tk.Tk,
        title: str,
        blocks: Sequence[tuple[str, str]],
        contact: str,
        user_account: str,
        version_label: str,
        larger_text: bool = False,
        state_file: Path | None = None,
        message: str | None = None,
        ask_again: str = ASK_AGAIN_AT_LOGIN,
    ) -> None:
        self.root = root
        self.contact = contact
        self.ask_again = ask_again
        self.message = message
        self._wrapping: list[tk.Label] = []
        self.state_file = state_file
        self.result = DialogResult("closed", "")
        self.read_to_end = False
        self.view: Literal["policy", "declined"] = "policy"
        self._state_pending = False

        root.title(WINDOW_TITLE_PREFIX + title)
        root.protocol("WM_DELETE_WINDOW", self._on_window_close)
        self.larger = tk.BooleanVar(master=root, value=larger_text)
        self.fonts = self._make_fonts()
        self._apply_font_size()

        self.policy_view = tk.Frame(root, name="policy_view", padx=16, pady=12)
        self.declined_view = tk.Frame(root, name="declined_view", padx=24, pady=24)
        self._build_policy_view(title, blocks, user_account, version_label)
        self._build_declined_view()
        self.policy_view.pack(fill="both", expand=True)

        self._bind_keys()
        self._refresh()
        self._fit_to_screen()
        root.after_idle(self._first_focus)

    # --- building -------------------------------------------------------------------------------

    def _make_fonts(self) -> dict[str, tkfont.Font]:
        family = tkfont.nametofont("TkDefaultFont", root=self.root).actual("family")
        return {
            "body": tkfont.Font(root=self.root, name="homeroom_body", family=family),
            "bold": tkfont.Font(root=self.root, name="homeroom_bold", family=family, weight="bold"),
            "heading1": tkfont.Font(root=self.root, name="homeroom_h1", family=family, weight="bold"),
            "heading2": tkfont.Font(root=self.root, name="homeroom_h2", family=family, weight="bold"),
        }

    def _apply_font_size(self) -> None:
        """Resize every font the dialog uses: Tk redraws each widget using them, and the text reflows."""
        size = LARGER_POINTS if self.larger.get() else BASE_POINTS
        self.fonts["body"].configure(size=size)
        self.fonts["bold"].configure(size=size)
        self.fonts["heading1"].configure(size=round(size * 1.5))
        self.fonts["heading2"].configure(size=round(size * 1.25))

    def _build_policy_view(
        self, title: str, blocks: Sequence[tuple[str, str]], user_account: str, version_label: str
    ) -> None:
        view = self.policy_view
        body, bold = self.fonts["body"], self.fonts["bold"]
        # Both header lines wrap to the window's width: at larger text a long title would otherwise
        # run off the right edge.
        self.title_label = tk.Label(
            view, name="policy_title", text=title, font=self.fonts["heading1"], anchor="w", justify="left"
        )
        self.title_label.pack(fill="x")
        self._wrapping.append(self.title_label)
        signed_in = dialog_signed_in_line(user_account, version_label)
        self.signed_in_label = tk.Label(
            view, name="signed_in_as", text=signed_in, font=body, anchor="w", justify="left"
        )
        self.signed_in_label.pack(fill="x")
        self._wrapping.append(self.signed_in_label)
        self.how_to = how_to = tk.Label(
            view,
            name="how_to",
            text=dialog_how_to(self.message),
            font=body,
            anchor="w",
            justify="left",
        )
        how_to.pack(fill="x", pady=(4, 8))
        self._wrapping.append(how_to)

        text_frame = tk.Frame(view, name="text_frame")
        self.text = tk.Text(
            text_frame,
            name="policy_text",
            wrap="word",
            width=72,
            height=18,
            font=body,
            padx=12,
            pady=8,
            takefocus=True,
            cursor="arrow",
            highlightthickness=2,
            highlightcolor="#1a5fb4",
            spacing1=2,
            spacing3=2,
        )
        scrollbar = tk.Scrollbar(
            text_frame, name="policy_scrollbar", command=self.text.yview, takefocus=False
        )
        self.text.configure(yscrollcommand=lambda *span: self._on_scroll(scrollbar, *span))
        scrollbar.pack(side="right", fill="y")
        self.text.pack(side="left", fill="both", expand=True)
        self._fill_text(blocks)

        name_row = tk.Frame(view, name="name_row")
        self.name_label = tk.Label(
            name_row, name="full_name_label", text="Your name:", font=bold, underline=5
        )
        self.name_label.pack(side="left")
        self.name_var = tk.StringVar(master=self.root)
        self.name_entry = tk.Entry(
            name_row, name="full_name", textvariable=self.name_var, font=body, width=36, highlightthickness=2
        )
        self.name_entry.pack(side="left", padx=(8, 0), fill="x", expand=True)
        self.name_var.trace_add("write", lambda *_: self._refresh())
        self.hint = tk.Label(view, name="hint", font=body, anchor="w", justify="left", fg="#333333")
        self._wrapping.append(self.hint)

        buttons = tk.Frame(view, name="buttons")
        self.agree = tk.Button(
            buttons, name="agree", text="I agree", underline=2, font=bold, command=self._agree,
            padx=16, pady=6, highlightthickness=2,
        )  # fmt: skip
        self.decline = tk.Button(
            buttons, name="decline", text="I do not agree", underline=2, font=body, command=self._decline,
            padx=16, pady=6, highlightthickness=2,
        )  # fmt: skip
        self.larger_toggle = tk.Checkbutton(
            buttons, name="larger_text", text="Larger text", underline=0, font=body, variable=self.larger,
            indicatoron=False, command=self._toggle_larger, padx=16, pady=6, highlightthickness=2,
        )  # fmt: skip
        self.agree.pack(side="left")
        self.decline.pack(side="left", padx=(8, 0))
        self.larger_toggle.pack(side="right")
        # Packed bottom-up and the text last, so the text is what shrinks when space is short (large
        # type on a small screen): the name box and the buttons always stay on screen.
        buttons.pack(side="bottom", fill="x")
        self.hint.pack(side="bottom", fill="x", pady=(4, 8))
        name_row.pack(side="bottom", fill="x", pady=(12, 0))
        text_frame.pack(fill="both", expand=True)

    def _fill_text(self, blocks: Sequence[tuple[str, str]]) -> None:
        text = self.text
        text.tag_configure("heading1", font=self.fonts["heading1"], spacing1=10, spacing3=6)
        text.tag_configure("heading2", font=self.fonts["heading2"], spacing1=8, spacing3=4)
        text.tag_configure("paragraph", spacing3=8)
        text.tag_configure("bullet", lmargin1=12, lmargin2=32, spacing3=4, tabs=("32",))
        for kind, content in blocks:
            if kind == "bullet":
                text.insert("end", f"•\t{content}\n", ("bullet",))
            elif kind in ("heading1", "heading2"):
                text.insert("end", f"{content}\n", (kind,))
            else:
                text.insert("end", f"{content}\n", ("paragraph",))
        text.configure(state="disabled")  # read-only: the bindings below still scroll it

    def _build_declined_view(self) -> None:
        view = self.declined_view
        tk.Label(
            view, name="declined_heading", text="You chose not to agree for now", font=self.fonts["heading1"],
            anchor="w",
        ).pack(fill="x")  # fmt: skip
        self.contact_label = tk.Label(
            view,
            name="contact",
            text=dialog_declined_text(self.contact, self.ask_again),
            font=self.fonts["body"],
            anchor="w",
            justify="left",
        )
        self.contact_label.pack(fill="x", pady=(12, 16))
        self._wrapping.append(self.contact_label)
        self.close = tk.Button(
            view, name="close", text="Close", underline=0, font=self.fonts["bold"],
            command=self._close_declined, padx=16, pady=6, highlightthickness=2,
        )  # fmt: skip
        self.close.pack(anchor="e")

    def _fit_to_screen(self) -> None:
        """Open centred, at the size the content asks for but never larger than 90% of the screen.

        The size is then fixed, so "Larger text" rewraps the policy inside the same window
        instead of pushing the buttons off a small laptop screen.
        """
        self.root.update_idletasks()
        screen_width, screen_height = self.root.winfo_screenwidth(), self.root.winfo_screenheight()
        width = min(self.root.winfo_reqwidth(), int(screen_width * 0.9))
        height = min(self.root.winfo_reqheight(), int(screen_height * 0.9))
        self.root.geometry(f"{width}x{height}+{(screen_width - width) // 2}+{(screen_height - height) // 2}")
        self.root.minsize(min(width, 480), min(height, 360))

    def _bind_keys(self) -> None:
        text = self.text
        pages = {"<Next>": 1, "<Prior>": -1, "<space>": 1}
        units = {"<Down>": 1, "<Up>": -1}
        for sequence, amount in pages.items():
            text.bind(sequence, functools.partial(self._scroll, amount, "pages"))
        for sequence, amount in units.items():
            text.bind(sequence, functools.partial(self._scroll, amount, "units"))
        text.bind("<End>", lambda _e: self._scroll_to(1.0))
        text.bind("<Control-End>", lambda _e: self._scroll_to(1.0))
        text.bind("<Home>", lambda _e: self._scroll_to(0.0))
        text.bind("<Control-Home>", lambda _e: self._scroll_to(0.0))
        text.bind("<Button-1>", lambda _e: text.focus_set(), add="+")
        text.bind("<Configure>", lambda _e: self._check_read(), add="+")
        for button in (self.agree, self.decline, self.larger_toggle, self.close):
            for key in ("<Return>", "<KP_Enter>"):
                button.bind(key, lambda _e, b=button: self._press(b))
        mnemonics: dict[str, Callable[[], object]] = {
            "a": lambda: self._press(self.agree),
            "d": lambda: self._press(self.decline),
            "l": lambda: self._press(self.larger_toggle),
            "n": self.name_entry.focus_set,
            "c": lambda: self._press(self.close),
        }
        for letter, action in mnemonics.items():
            for keysym in (letter, letter.upper()):
                self.root.bind_all(f"<Alt-{keysym}>", functools.partial(self._mnemonic, action))
        self.root.bind_all("<Escape>", lambda _e: self._on_escape())
        self.root.bind_all("<FocusIn>", lambda _e: self._schedule_state(), add="+")
        self.root.bind("<Configure>", self._on_configure, add="+")

    # --- behaviour ------------------------------------------------------------------------------

    def _on_configure(self, event: tk.Event[tk.Misc]) -> None:
        """Rewrap the sentences to the window's width, so no words are cut off at any text size."""
        if event.widget is self.root:
            for label in self._wrapping:
                label.configure(wraplength=max(event.width - 64, 200))
        self._schedule_state()

    def _mnemonic(self, action: Callable[[], object], _event: object = None) -> str:
        action()
        return "break"

    def _first_focus(self) -> None:
        self.root.focus_force()
        self.text.focus_set()
        self._check_read()

    def _scroll(self, amount: int, what: Literal["units", "pages"], _event: object = None) -> str:
        self.text.yview_scroll(amount, what)
        self._check_read()
        return "break"

    def _scroll_to(self, fraction: float) -> str:
        self.text.yview_moveto(fraction)
        self._check_read()
        return "break"

    def _on_scroll(self, scrollbar: tk.Scrollbar, first: float | str, last: float | str) -> None:
        scrollbar.set(first, last)
        self._check_read()

    def _check_read(self) -> None:
        """Reading is done once the end of the text has been on screen; it stays done after that.

        Only a laid-out, visible widget counts: before mapping, yview() says (0, 1) for any text.
        """
        if self.read_to_end or not self.text.winfo_ismapped() or self.text.winfo_height() <= 1:
            return
        self.text.tk.call(str(self.text), "sync")  # bring the line heights up to date first
        if self.text.yview()[1] >= READ_THRESHOLD:
            self.read_to_end = True
            self._refresh()

    def name_ok(self) -> bool:
        return is_acceptable_name(self.name_var.get())

    def agree_enabled(self) -> bool:
        return self.read_to_end and self.name_ok()

    def _refresh(self) -> None:
        """Bring the I agree button and the hint in line with what has been read and typed."""
        enabled = self.agree_enabled()
        colours = AGREE_ENABLED if enabled else AGREE_DISABLED
        self.agree.configure(
            state="normal" if enabled else "disabled",
            background=colours.background,
            foreground=colours.foreground,
            activebackground=colours.pressed,
            activeforeground=colours.foreground,
            disabledforeground=colours.foreground,
        )
        self.hint.configure(text=_missing_hint(self.read_to_end, self.name_ok()))
        self._schedule_state()

    def _press(self, button: tk.Button | tk.Checkbutton) -> str:
        """Enter and Alt-letter go through here: a hidden or disabled button does nothing."""
        if button.winfo_ismapped() and str(button.cget("state")) != "disabled":
            button.invoke()
        return "break"

    def _agree(self) -> None:
        if not self.agree_enabled():
            return
        self.result = DialogResult("agree", normalise_full_name(self.name_var.get()), _clicked_at())
        self._finish()

    def _decline(self) -> None:
        self.result = DialogResult("decline", normalise_full_name(self.name_var.get()), _clicked_at())
        self.view = "declined"
        self.policy_view.pack_forget()
        self.declined_view.pack(fill="both", expand=True)
        self._fit_declined()
        self.close.focus_set()
        self._schedule_state()

    def _fit_declined(self) -> None:
        """Shrink the window to the few sentences of the declined view, keeping its width and bottom edge.

        The policy view's size (nearly the whole screen at larger text) would leave most of this
        short message's window empty. The bottom edge stays where it was, so the Close button
        appears near the pointer that pressed "I do not agree" (and, without a window manager,
        the keyboard follows that pointer).
        """
        root = self.root
        root.update_idletasks()
        width = root.winfo_width()
        for label in self._wrapping:
            label.configure(wraplength=max(width - 64, 200))
        root.update_idletasks()
        height = min(self.declined_view.winfo_reqheight(), int(root.winfo_screenheight() * 0.9))
        x = root.winfo_rootx()
        y = root.winfo_rooty() + root.winfo_height() - height
        root.minsize(1, 1)
        root.geometry(f"{width}x{height}+{x}+{max(y, 0)}")
        # The pointer that clicked "I do not agree" may now be outside the smaller window: keep
        # the keyboard here, so Enter and Escape still reach the Close button.
        root.update_idletasks()
        self.close.focus_force()

    def _close_declined(self) -> None:
        self._finish()

    def _toggle_larger(self) -> None:
        self._apply_font_size()
        self.root.after_idle(self._check_read)
        self._schedule_state()

    def _on_escape(self) -> None:
        """Escape leaves without deciding; after declining, the decision is already made."""
        if self.view == "policy":
            self.result = DialogResult("closed", "")
        self._finish()

    def _on_window_close(self) -> None:
        self._on_escape()

    def _finish(self) -> None:
        self._write_state()
        self.root.destroy()

    # --- the test hook --------------------------------------------------------------------------

    def _schedule_state(self) -> None:
        if self.state_file is None or self._state_pending:
            return
        self._state_pending = True
        self.root.after_idle(self._write_state)

    def state(self) -> dict[str, Any]:
        focus = self.root.focus_get()
        return {
            "view": self.view,
            "read_to_end": self.read_to_end,
            "name_ok": self.name_ok(),
            "agree_enabled": self.agree_enabled(),
            "larger_text": bool(self.larger.get()),
            "font_points": self.fonts["body"].cget("size"),
            "focus": focus.winfo_name() if focus is not None else None,
            "yview": list(self.text.yview()),
            "hint": self.hint.cget("text"),
            "how_to_text": self.how_to.cget("text"),
            "contact_text": self.contact_label.cget("text") if self.view == "declined" else None,
            "result": asdict(self.result),
            "title_text": self.title_label.cget("text"),
            "signed_in_text": self.signed_in_label.cget("text"),
            "window_title": self.root.title(),
            "title_fits": bool(
                self.title_label.winfo_reqwidth() <= self.title_label.winfo_width()
                and self.title_label.winfo_reqheight() <= self.title_label.winfo_height()
            ),
            "window": {
                "x": self.root.winfo_rootx(),
                "y": self.root.winfo_rooty(),
                "width": self.root.winfo_width(),
                "height": self.root.winfo_height(),
            },
            "widgets": {
                name: widget_box(widget)
                for name, widget in (
                    ("text", self.text),
                    ("full_name", self.name_entry),
                    ("agree", self.agree),
                    ("decline", self.decline),
                    ("larger_text", self.larger_toggle),
                    ("close", self.close),
                    ("policy_title", self.title_label),
                    ("contact", self.contact_label),
                )
            },
        }

    def _write_state(self) -> None:
        self._state_pending = False
        if self.state_file is None:
            return
        try:
            snapshot = self.state()
        except tk.TclError:  # the window is already being torn down
            return
        write_atomically(self.state_file, json.dumps(snapshot))


def _clicked_at() -> str:
    """Now, in UTC: called at the click, so someone who read for 20 minutes signed when they signed."""
    return datetime.now(timezone.utc).isoformat()


def run_signoff_dialog(
    title: str,
    blocks: Sequence[tuple[str, str]],
    contact: str,
    user_account: str,
    version_label: str,
    larger_text: bool = False,
    message: str | None = None,
    ask_again: str = ASK_AGAIN_AT_LOGIN,
) -> DialogResult:
    """Show the dialog and wait for the person; raises tkinter.TclError when there is no display.

    `message` is the friendly opening line (decide.Prompt.message); `ask_again` tells someone who
    declines when they will be asked again (the district may set an interval instead of login).
    """
    state_path = os.environ.get(STATE_ENV)
    root = tk.Tk(className="HomeroomSignOff")
    dialog = SignOffDialog(
        root,
        title,
        blocks,
        contact,
        user_account,
        version_label,
        larger_text=larger_text,
        state_file=Path(state_path) if state_path else None,
        message=message,
        ask_again=ask_again,
    )
    root.mainloop()
    return dialog.result


def _read_request(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the policy JSON must be an object")
    for key in ("title", "contact", "user", "version"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"the policy JSON needs a string {key!r}")
    blocks = data.get("blocks")
    if not isinstance(blocks, list) or not all(
        isinstance(b, list) and len(b) == 2 and all(isinstance(p, str) for p in b) for b in blocks
    ):
        raise ValueError("'blocks' must be a list of [kind, text] pairs")
    for key in ("message", "ask_again"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"{key!r} must be a string")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m agent.desktop.consent.dialog --policy-json FILE`: prints {"decision", "full_name"} as JSON.

    The file holds {"title", "blocks": [[kind, text], ...], "contact", "user", "version",
    and optionally "larger_text", "message" and "ask_again"}. Exit 0 with a result, 2 when the
    file or the display is unusable.
    """
    parser = argparse.ArgumentParser(prog="python -m agent.desktop.consent.dialog", description=main.__doc__)
    parser.add_argument("--policy-json", required=True, type=Path, help="what to show (see above)")
    args = parser.parse_args(argv)
    try:
        request = _read_request(args.policy_json)
    except (OSError, ValueError) as error:
        print(f"homeroom sign-off: cannot read {args.policy_json}: {error}", file=sys.stderr)
        return 2
    try:
        result = run_signoff_dialog(
            request["title"],
            [(kind, text) for kind, text in request["blocks"]],
            request["contact"],
            request["user"],
            request["version"],
            larger_text=bool(request.get("larger_text", False)),
            message=request.get("message"),
            ask_again=request.get("ask_again", ASK_AGAIN_AT_LOGIN),
        )
    except tk.TclError as error:
        print(f"homeroom sign-off: cannot open a window: {error}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
