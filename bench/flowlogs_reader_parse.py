"""flowlogs-reader parsing every line of one flow-log file, as a whole process (nothing else).

    python -m bench.flowlogs_reader_parse FILE

The yardstick of "a maintained Python flow-log parser": ``FlowRecord.from_cwl_event`` per
line, the way its CloudWatch Logs reader uses it. Prints the records parsed.
"""

from __future__ import annotations

import sys


def main() -> None:
    from flowlogs_reader import FlowRecord

    parsed = 0
    with open(sys.argv[1]) as handle:
        for line in handle:
            try:
                FlowRecord.from_cwl_event({"message": line.rstrip("\n")})
            except Exception:  # noqa: BLE001 - malformed lines: its parser raises all sorts
                continue
            parsed += 1
    print(parsed)


if __name__ == "__main__":
    main()
