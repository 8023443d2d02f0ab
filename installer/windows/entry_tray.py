"""homeroom-tray.exe: the tray, started for each user at login (HKLM Run); a windowed program."""

import sys

from agent.cli import main

sys.exit(main(["tray", *sys.argv[1:]]))
