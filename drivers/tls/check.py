"""One login through Gantry with PyMySQL or mysql-connector-python (binary
protocol: a prepared statement), with or without TLS; prints key=value
lines for tests/client_tls.rs.

    check.py pymysql|connector PORT CA|- [CERT KEY]
"""
import sys

driver, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cert, key = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
common = dict(host="127.0.0.1", port=port, user="app", password="app_pw", database="app")

try:
    if driver == "pymysql":
        import pymysql

        tls = {}
        if ca != "-":
            tls = dict(ssl_ca=ca, ssl_verify_cert=True, ssl_verify_identity=True)
            if cert:
                tls.update(ssl_cert=cert, ssl_key=key)
        conn = pymysql.connect(**common, **tls)
        version = conn._sock.version() if hasattr(conn._sock, "version") else "none"
        with conn.cursor() as cur:
            cur.execute("SELECT 20 + 22")
            print(f"text={cur.fetchone()[0]}")
    else:
        import mysql.connector

        tls = {}
        if ca != "-":
            tls = dict(ssl_ca=ca, ssl_verify_cert=True, ssl_verify_identity=True)
            if cert:
                tls.update(ssl_cert=cert, ssl_key=key)
        else:
            tls = dict(ssl_disabled=True)
        conn = mysql.connector.connect(use_pure=True, **common, **tls)
        sock = getattr(conn._socket, "sock", None)
        version = sock.version() if hasattr(sock, "version") else "none"
        cur = conn.cursor(prepared=True)
        cur.execute("SELECT ? + 1", (41,))
        print(f"binary={cur.fetchone()[0]}")
    print(f"tls={version}")
    conn.close()
except Exception as e:  # the test reads the server's error code
    code = getattr(e, "errno", None) or (e.args[0] if e.args else "?")
    print(f"error={code}")
    print(f"message={e}")
