"""homeroom-agent.exe: the command line (agent.cli), for IT and for the service's own use."""

import sys

from agent.cli import main

sys.exit(main())
