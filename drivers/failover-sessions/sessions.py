"""One client session through Gantry across a failover (tests/failover_sessions.rs).

    python sessions.py DRIVER MODE HOST PORT TABLE ID

DRIVER: pymysql (text protocol) or connector (mysql-connector-python, pure
Python, cursor(prepared=True): the binary protocol). MODE:

* idle: sets session state (@v, sql_mode, USE app), runs its statements
  once (the connector prepares them), prints "ready", waits for a line on
  stdin (the test kills the primary and waits for the failover meanwhile),
  then runs them again on the same connection.
* txn: BEGIN and an INSERT of row ID, not committed; "ready"; after the
  line: one more statement (the error expected) and one after it (the
  connection expected gone).

Output: "key=value" lines, then "done". Errors are reported, not raised.
"""

import sys

DRIVER, MODE, HOST, PORT, TABLE, ID = sys.argv[1:7]
PORT, ID = int(PORT), int(ID)
CHECK = "SELECT @v, @@session.sql_mode, DATABASE()"


def say(key, value):
    print(f"{key}={value}", flush=True)


def connect():
    if DRIVER == "pymysql":
        import pymysql

        return pymysql.connect(
            host=HOST, port=PORT, user="app", password="app_pw", database="test",
            autocommit=True,
        )
    import mysql.connector

    return mysql.connector.connect(
        host=HOST, port=PORT, user="app", password="app_pw", database="test",
        autocommit=True, use_pure=True,
    )


def error_of(e):
    """(errno, sqlstate) of a driver exception, as text."""
    if DRIVER == "pymysql":
        # PyMySQL keeps no SQLSTATE; args = (errno, message).
        errno = e.args[0] if e.args and isinstance(e.args[0], int) else ""
        return f"{type(e).__name__} {errno} - {e}"
    return f"{type(e).__name__} {e.errno} {e.sqlstate} {e}"


conn = connect()
plain = conn.cursor()
# The binary-protocol cursors: one per statement, as the connector
# re-prepares when a prepared cursor's statement text changes.
stmt = conn.cursor(prepared=True) if DRIVER == "connector" else plain
select = conn.cursor(prepared=True) if DRIVER == "connector" else plain
mark = "%s" if DRIVER == "pymysql" else "?"
insert = f"INSERT INTO test.{TABLE} (id, note) VALUES ({mark}, {mark})"


def check():
    select.execute(CHECK)
    row = select.fetchall()[0]
    return "|".join("NULL" if v is None else str(v) for v in row)


def statement_id(cursor):
    # mysql-connector-python's server-side id of a cursor's statement.
    prepared = getattr(cursor, "_prepared", None)
    return prepared["statement_id"] if prepared else ""


if MODE == "idle":
    plain.execute("SET @v = 42")
    plain.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
    plain.execute("USE app")
    say("state_before", check())
    # Last, a write: the session holds (idle-release-ms) a connection to
    # the primary that dies.
    stmt.execute(insert, (ID, f"{DRIVER} before"))
    if DRIVER == "connector":
        say("ids_before", f"{statement_id(stmt)},{statement_id(select)}")
    say("ready", 1)
    sys.stdin.readline()
    try:
        stmt.execute(insert, (ID + 1, f"{DRIVER} after"))
        say("insert_after", stmt.rowcount)
        say("state_after", check())
        if DRIVER == "connector":
            say("ids_after", f"{statement_id(stmt)},{statement_id(select)}")
    except Exception as e:  # reported to the test
        say("error_after", error_of(e))
elif MODE == "txn":
    plain.execute("BEGIN")
    stmt.execute(insert, (ID, f"{DRIVER} in a transaction"))
    say("ready", 1)
    sys.stdin.readline()
    for step in ("first", "second"):
        try:
            stmt.execute(insert, (ID + 1, f"{DRIVER} {step}"))
            say(f"{step}_ok", stmt.rowcount)
        except Exception as e:
            say(f"{step}_error", error_of(e))
else:
    sys.exit(f"unknown mode {MODE}")
say("done", 1)
