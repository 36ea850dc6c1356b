"""DuckDB computing the report's headline fields over one v2 flow-log file, as a whole process.

    python -m bench.duckdb_headline FILE START_S END_S

The yardstick of "what a columnar engine in C++ does with these lines": records in the
window by their start field, bytes, packets, distinct sources and destinations, rejects,
the top ten sources and the port breakdown. Prints the figures as JSON.
"""

from __future__ import annotations

import json
import sys

COLUMNS = ("version account_id interface_id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
           "log_status").split()


def main() -> None:
    import duckdb

    path, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    db = duckdb.connect()
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS)
    db.execute(f"""CREATE VIEW ok AS SELECT * FROM read_csv('{path}', delim=' ', header=false, columns={{{columns}}},
                   ignore_errors=true, strict_mode=false)
                   WHERE log_status = 'OK' AND try_cast(start AS BIGINT) >= {lo} AND try_cast(start AS BIGINT) < {hi}""")
    db.execute("CREATE TEMP TABLE r AS SELECT srcaddr, dstaddr, dstport, action, packets::BIGINT AS packets, "
               "bytes::BIGINT AS bytes FROM ok")
    total, nbytes, packets, sources, dests, rejected = db.execute(
        "SELECT count(*), sum(bytes), sum(packets), count(DISTINCT srcaddr), count(DISTINCT dstaddr), "
        "count(*) FILTER (WHERE action = 'REJECT') FROM r").fetchone()
    top = db.execute("SELECT srcaddr, count(*) c FROM r GROUP BY srcaddr ORDER BY c DESC, srcaddr LIMIT 10").fetchall()
    ports = db.execute("SELECT dstport, count(*) FROM r GROUP BY dstport").fetchall()
    print(json.dumps({"total_requests": total, "total_bytes": nbytes, "total_packets": packets,
                      "unique_sources": sources, "unique_destinations": dests, "rejected_connections": rejected,
                      "top_source_ips": top, "ports": len(ports)}))


if __name__ == "__main__":
    main()
