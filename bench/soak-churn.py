"""Connection churn for bench/soak.sh: rounds of SESSIONS sessions that all
connect, run a few queries each and leave, until SECONDS have passed.

Prints one line per round: `round N sessions S seconds T failed F`.
"""

import argparse
import sys
import threading
import time

import pymysql


# autocommit=True as application servers run: PyMySQL otherwise sends
# SET AUTOCOMMIT=0, which holds a primary connection per session.
def session(port, i):
    c = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app_pw",
                        database="sbtest", connect_timeout=10, read_timeout=30,
                        autocommit=True)
    return c


def work(c, i):
    cur = c.cursor()
    cur.execute("SELECT c FROM sbtest1 WHERE id = %s", (i % 10000 + 1,))
    cur.fetchall()
    cur.execute("SELECT id, k FROM sbtest2 WHERE id BETWEEN %s AND %s", (i % 9000 + 1, i % 9000 + 100))
    cur.fetchall()
    cur.execute("BEGIN")
    cur.execute("UPDATE sbtest1 SET k = k + 1 WHERE id = %s", (i % 10000 + 1,))
    cur.execute("COMMIT")


def round_(port, sessions, threads):
    failed = [0] * threads
    opened = [[] for _ in range(threads)]
    connected = threading.Barrier(threads)

    def run(t):
        mine = range(t, sessions, threads)
        for i in mine:
            try:
                opened[t].append((i, session(port, i)))
            except pymysql.MySQLError:
                failed[t] += 1
        connected.wait()  # every session of the round is open at once
        for i, c in opened[t]:
            try:
                work(c, i)
                c.close()
            except pymysql.MySQLError:
                failed[t] += 1
                c.close()

    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(failed)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--threads", type=int, default=20)
    p.add_argument("--seconds", type=int, default=1800)
    a = p.parse_args()
    end = time.monotonic() + a.seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        t0 = time.monotonic()
        failed = round_(a.port, a.sessions, a.threads)
        print(f"round {n} sessions {a.sessions} seconds {time.monotonic() - t0:.1f} failed {failed}",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
