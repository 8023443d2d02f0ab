"""Linux helpers several checks share: the INI-style files desktops keep settings in.

GDM, LightDM, SDDM and KDE all write them.
"""

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
