"""What the agent and the server agree on: imported by both, importing neither.

- `wire`: the signed request protocol (paths, headers, signing string, limits);
- `requirements`: the requirements a district publishes and the six check ids;
- `policy`: the AUP documents' format, their version and the safe renderer;
- `config_files`: the TOML reading both use (file, line and fix on every mistake);
- `errors`: the one error tree, `HomeroomError` and its branches.

One version for both ends: an agent reports it, the server shows it.
"""

__version__ = "0.1.0"
