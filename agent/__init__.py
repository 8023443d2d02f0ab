"""Homeroom agent: checks a laptop against the district's Acceptable Use Policy.

One folder per role, so the folders are the map:

- `probes/`: the only door to the OS (commands, files, registry, CIM) and the platform facts;
- `checks/`: the six requirements, the registry that picks each OS's module, running, bundles;
- `identity/`: serial number, hardware UUID, machine id, MACs;
- `server_link/`: the device key, the outbox, the sender and the HTTP client (root side only);
- `desktop/`: what runs as the logged-in user: tray, sign-off, panels, and the hand-off
  with the service (status.json and policies in, the inbox out); it holds no secret;
- `service.py`, `state.py`, `config.py`, `cli.py`, `errors.py`: the loop that ties them
  together, its state directory, agent.toml, the command line and the agent's errors.
"""
