"""Reading the INI-style files Linux desktops keep settings in (GDM, LightDM, SDDM, KDE)."""

from __future__ import annotations

import configparser
import contextlib


def read_ini(text: str) -> configparser.ConfigParser:
    """Keys keep their case (KDE's `Autolock`, GDM's `AutomaticLogin`); `%` is not special.

    A file that is only partly well-formed still yields what it can: a stray
    line must not hide an autologin setting further down.
    """
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    with contextlib.suppress(configparser.Error):
        parser.read_string(text)
    return parser
