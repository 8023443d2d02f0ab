"""homeroom-service.exe: the Windows service host (agent.windows_service); PyInstaller's entry script."""

import sys

from agent.windows_service import main

sys.exit(main())
