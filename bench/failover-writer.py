"""Write load for bench/failover.sh: inserts sequential ids through Gantry,
one autocommit INSERT at a time, reconnecting after any error. Appends each
acknowledged id to ACKED, and after a write that follows a gap of more than
300 ms, a line "gap <ms>" to GAPS. Runs until killed."""
import sys
import time

import pymysql

port, table, acked_path, gaps_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
acked = open(acked_path, "a", buffering=1)
gaps = open(gaps_path, "a", buffering=1)
conn = None
next_id = 1
last_ack = time.monotonic()
while True:
    try:
        if conn is None:
            conn = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app_pw",
                                   database="test", autocommit=True, connect_timeout=5,
                                   read_timeout=15, write_timeout=15)
        with conn.cursor() as c:
            c.execute(f"INSERT INTO {table} (id) VALUES ({next_id})")
        now = time.monotonic()
        acked.write(f"{next_id}\n")
        if now - last_ack > 0.3:
            gaps.write(f"gap {int((now - last_ack) * 1000)}\n")
        last_ack = now
    except pymysql.MySQLError:
        conn = None
        time.sleep(0.01)
    next_id += 1
