"""PyMySQL through Gantry: client behaviours a Rust test cannot show.

Usage: python check.py HOST PORT USER PASSWORD DATABASE

Prints one PASS/FAIL line per check and exits non-zero if any check failed.
Every check uses its own table (named after this process) and drops it.
"""

import os
import sys
import tempfile
import traceback

import pymysql
import pymysql.cursors
from pymysql.constants import CLIENT

HOST, PORT, USER, PASSWORD, DB = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
SUFFIX = f"{os.getpid()}"
RESULTS = []


def connect(**kw):
    args = dict(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DB,
                charset="utf8mb4", connect_timeout=10, read_timeout=60, write_timeout=60)
    args.update(kw)
    return pymysql.connect(**args)


def check(fn):
    name = fn.__name__
    try:
        fn()
    except Exception:  # noqa: BLE001 - report every failure, go on with the next check
        RESULTS.append((name, False))
        print(f"FAIL {name}")
        traceback.print_exc(file=sys.stdout)
    else:
        RESULTS.append((name, True))
        print(f"PASS {name}")
    sys.stdout.flush()
    return fn


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def table(prefix):
    return f"{prefix}_{SUFFIX}"


@check
def connect_and_server_version():
    with connect() as c:
        eq(c.open, True, "open")
        with c.cursor() as cur:
            cur.execute("SELECT 1 + 1, DATABASE(), CURRENT_USER()")
            row = cur.fetchone()
        eq(row[0], 2, "1+1")
        eq(row[1], DB, "DATABASE()")
        if not row[2].startswith(USER + "@"):
            raise AssertionError(f"CURRENT_USER() {row[2]!r}")
        if not c.get_server_info():
            raise AssertionError("empty server version")
        c.ping(reconnect=False)


@check
def autocommit_off_commit_and_rollback():
    t = table("pm_tx")
    with connect(autocommit=True) as setup, setup.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB")
    try:
        c = connect(autocommit=False)
        other = connect(autocommit=True)
        try:
            eq(c.get_autocommit(), False, "get_autocommit")
            with c.cursor() as cur:
                cur.execute("SELECT @@autocommit")
                eq(cur.fetchone()[0], 0, "@@autocommit in the session")
                cur.execute(f"INSERT INTO {t} VALUES (1, 'a')")
                # Not visible to another connection before commit.
                with other.cursor() as ocur:
                    ocur.execute(f"SELECT COUNT(*) FROM {t}")
                    eq(ocur.fetchone()[0], 0, "uncommitted row seen by another session")
                # Visible inside the transaction.
                cur.execute(f"SELECT v FROM {t} WHERE id = 1")
                eq(cur.fetchone(), ("a",), "own uncommitted row")
                c.rollback()
                cur.execute(f"SELECT COUNT(*) FROM {t}")
                eq(cur.fetchone()[0], 0, "after rollback")
                cur.execute(f"INSERT INTO {t} VALUES (2, 'b')")
                c.commit()
            with other.cursor() as ocur:
                ocur.execute(f"SELECT id FROM {t}")
                eq(ocur.fetchall(), ((2,),), "after commit")
            # Switch to autocommit on: each statement commits by itself.
            c.autocommit(True)
            eq(c.get_autocommit(), True, "get_autocommit after autocommit(True)")
            with c.cursor() as cur:
                cur.execute("SELECT @@autocommit")
                eq(cur.fetchone()[0], 1, "@@autocommit after autocommit(True)")
                cur.execute(f"INSERT INTO {t} VALUES (3, 'c')")
            with other.cursor() as ocur:
                ocur.execute(f"SELECT COUNT(*) FROM {t}")
                eq(ocur.fetchone()[0], 2, "autocommitted insert seen by another session")
        finally:
            c.close()
            other.close()
    finally:
        with connect(autocommit=True) as setup, setup.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


@check
def executemany_and_rowcount():
    t = table("pm_many")
    with connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, name VARCHAR(20))")
        try:
            rows = [(i, f"name{i}") for i in range(1000)]
            # PyMySQL folds INSERT ... VALUES executemany into multi-row inserts.
            n = cur.executemany(f"INSERT INTO {t} (id, name) VALUES (%s, %s)", rows)
            eq(n, 1000, "executemany rowcount")
            n = cur.executemany(f"UPDATE {t} SET name = %s WHERE id = %s",
                                [("x", 1), ("y", 2), ("z", 999999)])
            eq(n, 2, "executemany UPDATE rowcount")
            cur.execute(f"SELECT COUNT(*), MIN(id), MAX(id) FROM {t}")
            eq(cur.fetchone(), (1000, 0, 999), "rows after executemany")
            cur.execute(f"SELECT name FROM {t} WHERE id IN (1, 2) ORDER BY id")
            eq(cur.fetchall(), (("x",), ("y",)), "updated rows")
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


@check
def load_data_local_infile():
    t = table("pm_infile")
    fd, path = tempfile.mkstemp(suffix=".tsv")
    n = 5000
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(f"{i}\tline {i} \u00e9\U0001F600\n")
    try:
        with connect(autocommit=True, local_infile=True) as c, c.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")
            cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, txt VARCHAR(50)) CHARACTER SET utf8mb4")
            try:
                affected = cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {t} CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (id, txt)", (path,))
                eq(affected, n, "LOAD DATA affected rows")
                cur.execute(f"SELECT COUNT(*), MAX(id) FROM {t}")
                eq(cur.fetchone(), (n, n - 1), "rows loaded")
                cur.execute(f"SELECT txt FROM {t} WHERE id = 42")
                eq(cur.fetchone(), ("line 42 \u00e9\U0001F600",), "loaded text")
                # The session is still usable after the file transfer.
                cur.execute("SELECT 7")
                eq(cur.fetchone(), (7,), "query after LOAD DATA")
                # A missing file: the client sends an empty file; the
                # connection must stay usable.
                try:
                    cur.execute(f"LOAD DATA LOCAL INFILE '/nonexistent/{SUFFIX}' INTO TABLE {t}")
                except pymysql.err.OperationalError as e:
                    eq(e.args[0], 1017, "error code for a missing local file")
                else:
                    raise AssertionError("no error for a missing local file")
                cur.execute("SELECT 8")
                eq(cur.fetchone(), (8,), "query after a failed LOAD DATA")
            finally:
                cur.execute(f"DROP TABLE IF EXISTS {t}")
    finally:
        os.unlink(path)


@check
def multi_statements_nextset():
    with connect(autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS) as c, c.cursor() as cur:
        cur.execute("SELECT 1 AS a; SELECT 2 AS b, 3 AS c; DO 0; SELECT 'x' AS d")
        sets = [cur.fetchall()]
        descs = [[d[0] for d in cur.description]]
        while cur.nextset():
            sets.append(cur.fetchall())
            descs.append([d[0] for d in cur.description] if cur.description else None)
        eq([tuple(s) for s in sets], [((1,),), ((2, 3),), (), (("x",),)], "result sets")
        eq(descs, [["a"], ["b", "c"], None, ["d"]], "column names")
        # An error in the middle stops the batch; the connection stays usable.
        try:
            cur.execute("SELECT 1; SELECT * FROM no_such_table_xyz; SELECT 3")
            while cur.nextset():
                pass
        except pymysql.err.ProgrammingError as e:
            eq(e.args[0], 1146, "error code in a batch")
        else:
            raise AssertionError("no error from the batch's second statement")
        cur.execute("SELECT 'after'")
        eq(cur.fetchone(), ("after",), "query after a failed batch")


@check
def server_side_cursor_streams_10k_rows():
    t = table("pm_ss")
    n = 10000
    with connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, pad CHAR(100))")
        try:
            cur.execute(f"INSERT INTO {t} SELECT seq, REPEAT('p', 100) FROM seq_0_to_{n - 1}")
            eq(cur.rowcount, n, "rows inserted")
            with c.cursor(pymysql.cursors.SSCursor) as ss:
                ss.execute(f"SELECT id, pad FROM {t} ORDER BY id")
                count = 0
                expect = 0
                for row in ss.fetchall_unbuffered():
                    eq(row[0], expect, "row order")
                    expect += 1
                    count += 1
                eq(count, n, "rows streamed")
            # Abandon a stream half-way: closing the cursor drains it and the
            # connection stays in sync.
            ss = c.cursor(pymysql.cursors.SSDictCursor)
            ss.execute(f"SELECT id FROM {t} ORDER BY id")
            first = [ss.fetchone() for _ in range(10)]
            eq(first[9], {"id": 9}, "10th row")
            ss.close()
            cur.execute("SELECT 'in sync'")
            eq(cur.fetchone(), ("in sync",), "query after an abandoned stream")
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


@check
def unicode_emoji_round_trip():
    t = table("pm_uni")
    text = "h\u00e9llo \u4e16\u754c \U0001F600\U0001F680 \u0645\u0631\u062d\u0628\u0627"
    with connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(100)) CHARACTER SET utf8mb4")
        try:
            cur.execute(f"INSERT INTO {t} VALUES (1, %s)", (text,))
            cur.execute(f"SELECT s, CHAR_LENGTH(s), %s FROM {t} WHERE s = %s", (text, text))
            eq(cur.fetchone(), (text, len(text), text), "round trip")
            cur.execute("SELECT @@character_set_client, @@character_set_results")
            eq(cur.fetchone(), ("utf8mb4", "utf8mb4"), "charset of the session")
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


@check
def lastrowid_after_insert():
    t = table("pm_ai")
    with connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT=100")
        try:
            cur.execute(f"INSERT INTO {t} (v) VALUES (1)")
            eq(cur.lastrowid, 100, "lastrowid after the first insert")
            eq(c.insert_id(), 100, "insert_id()")
            cur.execute(f"INSERT INTO {t} (v) VALUES (2), (3)")
            eq(cur.lastrowid, 101, "lastrowid after a multi-row insert (first id)")
            cur.execute("SELECT LAST_INSERT_ID()")
            eq(cur.fetchone(), (101,), "LAST_INSERT_ID()")
            cur.execute(f"UPDATE {t} SET v = v + 1")
            eq(cur.rowcount, 3, "rowcount of the update")
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


@check
def errors_map_to_exception_classes():
    t = table("pm_err")
    with connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v INT NOT NULL)")
        try:
            cases = [
                ("SELEC 1", pymysql.err.ProgrammingError, 1064),
                ("SELECT * FROM no_such_table_xyz", pymysql.err.ProgrammingError, 1146),
                ("SELECT no_such_column FROM " + t, pymysql.err.OperationalError, 1054),
                (f"INSERT INTO {t} VALUES (1, 1), (1, 2)", pymysql.err.IntegrityError, 1062),
                (f"INSERT INTO {t} VALUES (2, NULL)", pymysql.err.IntegrityError, 1048),
                ("SELECT 1/0 FROM DUAL WHERE SIGNAL_NOT_A_FUNC()", pymysql.err.OperationalError, 1305),
                ("SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom', MYSQL_ERRNO = 1644",
                 pymysql.err.OperationalError, 1644),
            ]
            for sql, cls, code in cases:
                try:
                    cur.execute(sql)
                except pymysql.err.MySQLError as e:
                    if type(e) is not cls:
                        raise AssertionError(f"{sql!r}: {type(e).__name__} {e.args}, want {cls.__name__}")
                    eq(e.args[0], code, f"error code of {sql!r}")
                else:
                    raise AssertionError(f"{sql!r} raised nothing")
            # A warning is not an error.
            cur.execute("SELECT CAST('12abc' AS INTEGER)")
            eq(cur.fetchone(), (12,), "CAST with a warning")
            cur.execute("SHOW WARNINGS")
            eq(cur.fetchone()[1], 1292, "warning code")
            cur.execute("SELECT 'alive'")
            eq(cur.fetchone(), ("alive",), "query after the errors")
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


@check
def wrong_password_is_access_denied():
    try:
        connect(password=PASSWORD + "-wrong")
    except pymysql.err.OperationalError as e:
        eq(e.args[0], 1045, "error code of a wrong password")
    else:
        raise AssertionError("login with a wrong password succeeded")


@check
def found_rows_client_flag():
    # CLIENT_FOUND_ROWS changes what an UPDATE reports: matched, not changed,
    # rows. The flag is per connection, in either order.
    t = table("pm_found")
    with connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, v INT)")
        cur.execute(f"INSERT INTO {t} VALUES (1, 1), (2, 1)")
    try:
        for flag, want in ((0, 0), (CLIENT.FOUND_ROWS, 2), (0, 0), (CLIENT.FOUND_ROWS, 2)):
            with connect(autocommit=True, client_flag=flag) as c, c.cursor() as cur:
                eq(cur.execute(f"UPDATE {t} SET v = 1"), want,
                   f"rows of an UPDATE changing nothing, FOUND_ROWS={bool(flag)}")
    finally:
        with connect(autocommit=True) as c, c.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


@check
def session_state_does_not_leak_to_the_next_connection():
    q = ("SELECT @@character_set_client, @@character_set_results, @@collation_connection, "
         "@@time_zone, @@sql_mode, @leak_v, @@autocommit, @@tx_isolation, @@wait_timeout, "
         "@@sql_select_limit")
    with connect(autocommit=True) as c, c.cursor() as cur:
        cur.execute(q)
        base = cur.fetchone()
    with connect(autocommit=True) as c, c.cursor() as cur:
        for sql in ("SET NAMES latin1", "SET time_zone = '+03:00'", "SET sql_mode = ''",
                    "SET @leak_v = 'leaked'", "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                    "SET wait_timeout = 77", "SET sql_select_limit = 5",
                    "CREATE TEMPORARY TABLE leak_tmp (x INT)", "SET autocommit = 0"):
            cur.execute(sql)
        cur.execute(q)
        changed = cur.fetchone()
        if any(a == b for a, b in zip(changed, base)):
            raise AssertionError(f"the SETs did not all take: {changed}")
    for i in range(3):
        with connect(autocommit=True) as c, c.cursor() as cur:
            cur.execute(q)
            eq(cur.fetchone(), base, f"fresh connection {i}")
            try:
                cur.execute("SELECT * FROM leak_tmp")
            except pymysql.err.ProgrammingError as e:
                eq(e.args[0], 1146, "another session's temporary table")
            else:
                raise AssertionError("another session's temporary table is visible")


@check
def select_db_uses_com_init_db():
    with connect(autocommit=True, database=None) as c, c.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        eq(cur.fetchone(), (None,), "no default database")
        c.select_db(DB)  # COM_INIT_DB
        cur.execute("SELECT DATABASE()")
        eq(cur.fetchone(), (DB,), "DATABASE() after select_db")


passed = sum(1 for _, ok in RESULTS if ok)
failed = len(RESULTS) - passed
print(f"pymysql {pymysql.VERSION_STRING}: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
