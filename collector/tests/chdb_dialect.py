#!/usr/bin/env python3
"""Runs every SQL statement of the collector on current ClickHouse (PyPI chdb-core, in-process).

Usage: chdb_dialect.py STATEMENTS_FILE
The file holds statements separated by lines of a single `;` (written by the Rust test
`dialect` in collector/tests/dialect.rs from `khien_collector::schema::dialect_statements`).
Each statement runs twice (migrations must be idempotent). `ALTER TABLE t ADD COLUMN c …` is
guarded as the collector's migration runner (schema::execute) guards it: skipped when
system.columns already lists the column, since ClickHouse 18.16 has no `ADD COLUMN IF NOT
EXISTS`. Prints one line per failure and a summary; exits 1 if any statement failed.
"""
import re
import sys
import tempfile

ADD_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+(\S+)\s+ADD\s+COLUMN\s+(\S+)\s", re.I)


def column_exists(s, table: str, column: str) -> bool:
    sql = (
        "SELECT count() FROM system.columns WHERE database = currentDatabase() "
        f"AND table = '{table}' AND name = '{column}'"
    )
    return s.query(sql, "TSV").bytes().decode().strip() != "0"

from chdb import session


def main() -> int:
    text = open(sys.argv[1], encoding="utf-8").read()
    statements = [s.strip() for s in text.split("\n;\n") if s.strip()]
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        s = session.Session(d)
        version = s.query("SELECT version()", "TSV").bytes().decode().strip()
        for rnd in (1, 2):
            for st in statements:
                try:
                    m = ADD_COLUMN.match(st)
                    if m and column_exists(s, m.group(1), m.group(2)):
                        continue
                    s.query(st, "TSV")
                except Exception as e:  # chdb raises its own error types
                    failed += 1
                    first = st.splitlines()[0]
                    print(f"FAIL (round {rnd}): {first}: {str(e).splitlines()[0]}")
    print(f"chdb {version}: {len(statements)} statements x2, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
