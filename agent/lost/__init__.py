"""Lost mode on the laptop: entered only on a signed heartbeat answer that carries `lost_mode`.

- `mode.py`     what the server asked for (pure), kept in STATE/lost-mode.json so it survives a
                restart and a reboot, and the periods that ended (for the user's notice at login)
- `evidence.py` what helps recovery, collected only while in lost mode: local addresses and
                gateway, nearby Wi-Fi, the logged-in user, uptime; and what could not be (`unseen`)
- `parsers.py`  pure parsers of `ip -j addr`, `ip -j route`, `nmcli -t` and `netsh wlan`
- `netsh_languages.py`  the netsh labels per display language (data, each from a real capture)
- `lock.py`     the OS's own screen lock, behind one small function
- `reports.py`  STATE/lost-reports.json: where each "Report lost or stolen" stands (service writes,
                tray reads)

Nothing here imports the link to the server: the service hands bodies to the outbox itself.
"""
