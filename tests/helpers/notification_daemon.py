"""A stand-in desktop notification daemon: owns org.freedesktop.Notifications and logs each Notify call.

    python -m tests.helpers.notification_daemon LOG_FILE

Prints "ready" once it owns the name; appends {"title", "message"} as a JSON line per notification.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from gi.repository import Gio, GLib

INTERFACE = """
<node>
  <interface name="org.freedesktop.Notifications">
    <method name="Notify">
      <arg type="s" direction="in"/><arg type="u" direction="in"/><arg type="s" direction="in"/>
      <arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="as" direction="in"/>
      <arg type="a{sv}" direction="in"/><arg type="i" direction="in"/><arg type="u" direction="out"/>
    </method>
    <method name="CloseNotification"><arg type="u" direction="in"/></method>
    <method name="GetCapabilities"><arg type="as" direction="out"/></method>
    <method name="GetServerInformation">
      <arg type="s" direction="out"/><arg type="s" direction="out"/>
      <arg type="s" direction="out"/><arg type="s" direction="out"/>
    </method>
  </interface>
</node>
"""


def main() -> None:
    log_path = sys.argv[1]
    node = Gio.DBusNodeInfo.new_for_xml(INTERFACE)
    counter = [0]

    def on_call(
        _conn: Any, _sender: str, _path: str, _iface: str, method: str, params: Any, call: Any
    ) -> None:
        if method == "Notify":
            _app, _replaces, _icon, title, message, _actions, _hints, _timeout = params.unpack()
            with open(log_path, "a", encoding="utf-8") as out:
                out.write(json.dumps({"title": title, "message": message}) + "\n")
            counter[0] += 1
            call.return_value(GLib.Variant("(u)", (counter[0],)))
        elif method == "CloseNotification":
            call.return_value(None)
        elif method == "GetCapabilities":
            call.return_value(GLib.Variant("(as)", (["body"],)))
        else:
            call.return_value(GLib.Variant("(ssss)", ("test", "homeroom", "1", "1.2")))

    def on_bus(conn: Any, _name: str) -> None:
        conn.register_object("/org/freedesktop/Notifications", node.interfaces[0], on_call, None, None)

    def on_name(_conn: Any, _name: str) -> None:
        print("ready", flush=True)

    Gio.bus_own_name(
        Gio.BusType.SESSION,
        "org.freedesktop.Notifications",
        Gio.BusNameOwnerFlags.NONE,
        on_bus,
        on_name,
        None,
    )
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
