"""The floor of pure Python on this machine: split every line, count OK records, sum bytes.

    python -m bench.minimal_loop FILE

No validation, no windowing, no grouping: what any per-line Python analysis costs at the
least on this interpreter, as a whole process. Prints the records and bytes counted.
"""

from __future__ import annotations

import sys


def main() -> None:
    records = total = 0
    with open(sys.argv[1]) as handle:
        for line in handle:
            fields = line.split(" ")
            if len(fields) == 14 and fields[13] == "OK\n":
                records += 1
                total += int(fields[9])
    print(records, total)


if __name__ == "__main__":
    main()
