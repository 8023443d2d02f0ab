"""A writer in its own process: puts records and prints each id once put() has returned.

Used by the kill -9 and two-writer tests. Every id on stdout was promised durable, so the
test may check each one against the file after killing this process at any instant.

usage: put_loop.py OUTBOX_PATH WRITER_NAME COUNT [--wait-for-go]
COUNT 0 means forever. With --wait-for-go it reads one line from stdin before starting,
so two writers can be released together.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agent.server_link.outbox import Outbox


def main(argv: list[str]) -> int:
    path, writer, count = Path(argv[1]), argv[2], int(argv[3])
    outbox = Outbox(path)
    print("ready", flush=True)
    if "--wait-for-go" in argv:
        sys.stdin.readline()
    number = 0
    while count == 0 or number < count:
        kind = "heartbeat" if number % 3 == 0 else "report"
        record_id = outbox.put(kind, {"writer": writer, "number": number, "padding": "x" * 200})
        print(record_id, flush=True)
        number += 1
    outbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
