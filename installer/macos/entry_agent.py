"""homeroom-agent on macOS (the service, the tray and the command line); PyInstaller's entry script."""

import sys

from agent.cli import main

sys.exit(main())
