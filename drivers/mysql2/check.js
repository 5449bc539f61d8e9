// mysql2 (node) through Gantry: client behaviours a Rust test cannot show.
//
// Usage: node check.js HOST PORT USER PASSWORD DATABASE
//
// Prints one PASS/FAIL line per check and exits non-zero if any failed.
// Every check uses its own table (named after this process) and drops it.
'use strict';

const assert = require('node:assert/strict');
const mysql = require('mysql2/promise');
const mysqlVersion = require('mysql2/package.json').version;

const [host, port, user, password, database] = process.argv.slice(2);
const base = { host, port: Number(port), user, password, database, charset: 'utf8mb4_general_ci', connectTimeout: 10000 };
const suffix = String(process.pid);
const results = [];

async function check(name, fn) {
  try {
    await fn();
    results.push([name, true]);
    console.log(`PASS ${name}`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}`);
    console.log(e && e.stack ? e.stack : e);
  }
}

function table(prefix) {
  return `${prefix}_${suffix}`;
}

async function withConn(opts, fn) {
  const c = await mysql.createConnection({ ...base, ...opts });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function main() {
  await check('connect_and_ping', () => withConn({}, async (c) => {
    await c.ping();
    const [rows] = await c.query('SELECT 1 + 1 AS two, DATABASE() AS db');
    assert.deepEqual(rows, [{ two: 2, db: database }]);
    const [[v]] = await c.query('SELECT VERSION() AS v');
    assert.match(v.v, /MariaDB/);
  }));

  await check('execute_binary_protocol_with_params', () => withConn({}, async (c) => {
    const t = table('m2_exec');
    await c.query(`DROP TABLE IF EXISTS ${t}`);
    await c.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, big BIGINT, d DOUBLE, dcm DECIMAL(10,3),
        s VARCHAR(50), dt DATETIME(3), b BLOB, n INT NULL) CHARACTER SET utf8mb4`);
    try {
      const ins = `INSERT INTO ${t} VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;
      const when = new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789));
      for (let i = 1; i <= 20; i++) {
        const [res] = await c.execute(ins, [i, 9007199254740000 + i, i / 4, `${i}.125`, `row ${i} \u{1F600}`,
          when, Buffer.from([0, 1, 2, 255, i]), i % 2 ? null : i]);
        assert.equal(res.affectedRows, 1);
      }
      // Same statement text again: mysql2 re-uses its cached prepared statement.
      const sel = `SELECT id, big, d, dcm, s, b, n FROM ${t} WHERE id BETWEEN ? AND ? ORDER BY id`;
      const [rows, fields] = await c.execute(sel, [3, 4]);
      assert.deepEqual(fields.map((f) => f.name), ['id', 'big', 'd', 'dcm', 's', 'b', 'n']);
      assert.equal(rows.length, 2);
      assert.equal(rows[0].id, 3);
      assert.equal(rows[0].big, 9007199254740003);
      assert.equal(rows[0].d, 0.75);
      assert.equal(rows[0].dcm, '3.125');
      assert.equal(rows[0].s, 'row 3 \u{1F600}');
      assert.deepEqual(rows[0].b, Buffer.from([0, 1, 2, 255, 3]));
      assert.equal(rows[0].n, null);
      assert.equal(rows[1].n, 4);
      const [again] = await c.execute(sel, [20, 100]);
      assert.deepEqual(again.map((r) => r.id), [20]);
      // Typed parameters in the select list come back with their values.
      const [typed] = await c.execute('SELECT ? AS a, ? AS b, ? AS c, ? AS d', [42, 'x\u00e9', null, 1.5]);
      assert.deepEqual(typed, [{ a: 42, b: 'x\u00e9', c: null, d: 1.5 }]);
      // An explicitly prepared statement, executed twice and closed.
      const stmt = await c.prepare(`SELECT COUNT(*) AS n FROM ${t} WHERE id <= ?`);
      assert.equal(stmt.statement.parameters.length, 1);
      assert.equal(stmt.statement.columns.length, 1);
      const [[r1]] = await stmt.execute([5]);
      const [[r2]] = await stmt.execute([10]);
      assert.equal(r1.n, 5);
      assert.equal(r2.n, 10);
      stmt.close();
      c.unprepare(sel);
      // Errors from a prepare and from an execute keep the connection usable.
      await assert.rejects(c.execute('SELECT * FROM no_such_table_xyz WHERE id = ?', [1]),
        (e) => e.errno === 1146 && e.code === 'ER_NO_SUCH_TABLE' && e.sqlState === '42S02');
      await assert.rejects(c.execute(`INSERT INTO ${t} (id) VALUES (?)`, [1]),
        (e) => e.errno === 1062 && e.code === 'ER_DUP_ENTRY');
      const [[ok]] = await c.execute('SELECT ? + 1 AS v', [41]);
      assert.equal(ok.v, 42);
      // DATETIME with a fractional part round-trips through the binary protocol.
      const [[dt]] = await c.execute(`SELECT dt FROM ${t} WHERE id = ?`, [1]);
      assert.equal(dt.dt.getTime(), when.getTime());
    } finally {
      await c.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }));

  await check('many_prepared_statements_on_one_connection', () => withConn({}, async (c) => {
    // 300 distinct statements: each gets its own server-side statement id.
    for (let i = 0; i < 300; i++) {
      const [[row]] = await c.execute(`SELECT ? * ${i} AS v`, [2]);
      assert.equal(Number(row.v), 2 * i);
    }
  }));

  await check('query_multiple_statements', () => withConn({ multipleStatements: true }, async (c) => {
    const t = table('m2_multi');
    const [sets] = await c.query(
      `DROP TABLE IF EXISTS ${t}; CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(10));
       INSERT INTO ${t} VALUES (1, 'a'), (2, 'b'); SELECT * FROM ${t} ORDER BY id; SELECT 'x' AS y`);
    try {
      assert.equal(sets.length, 5);
      assert.equal(sets[2].affectedRows, 2);
      assert.deepEqual(sets[3], [{ id: 1, v: 'a' }, { id: 2, v: 'b' }]);
      assert.deepEqual(sets[4], [{ y: 'x' }]);
      await assert.rejects(c.query('SELECT 1; SELECT * FROM no_such_table_xyz; SELECT 3'),
        (e) => e.errno === 1146);
      const [after] = await c.query('SELECT 2 AS two');
      assert.deepEqual(after, [{ two: 2 }]);
    } finally {
      await c.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }));

  await check('pooled_connections', async () => {
    const pool = mysql.createPool({ ...base, connectionLimit: 5, waitForConnections: true });
    const t = table('m2_pool');
    try {
      await pool.query(`DROP TABLE IF EXISTS ${t}`);
      await pool.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, who BIGINT)`);
      // 200 concurrent inserts over 5 pooled connections, mixing the text and binary protocols.
      await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2
        ? pool.execute(`INSERT INTO ${t} VALUES (?, CONNECTION_ID())`, [i])
        : pool.query(`INSERT INTO ${t} VALUES (?, CONNECTION_ID())`, [i]))));
      const [[cnt]] = await pool.query(`SELECT COUNT(*) AS n FROM ${t}`);
      assert.equal(cnt.n, 200);
      // A transaction on one pooled connection is isolated from the others.
      const conn = await pool.getConnection();
      try {
        await conn.beginTransaction();
        await conn.query(`DELETE FROM ${t} WHERE id < 100`);
        const [[inside]] = await conn.query(`SELECT COUNT(*) AS n FROM ${t}`);
        assert.equal(inside.n, 100);
        const [[outside]] = await pool.query(`SELECT COUNT(*) AS n FROM ${t}`);
        assert.equal(outside.n, 200);
        await conn.rollback();
      } finally {
        conn.release();
      }
      const [[after]] = await pool.query(`SELECT COUNT(*) AS n FROM ${t}`);
      assert.equal(after.n, 200);
      // Session state set on a pooled connection stays with it.
      const c2 = await pool.getConnection();
      try {
        await c2.query("SET @pool_var = 'kept', time_zone = '+05:00'");
        const [[v]] = await c2.query('SELECT @pool_var AS v, @@time_zone AS tz');
        assert.deepEqual(v, { v: 'kept', tz: '+05:00' });
      } finally {
        c2.release();
      }
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${t}`);
      await pool.end();
    }
  });

  await check('emoji_round_trip', () => withConn({}, async (c) => {
    const t = table('m2_emoji');
    const text = 'h\u00e9llo \u4e16\u754c \u{1F600}\u{1F680}\u{1F9D1}\u200D\u{1F4BB}';
    await c.query(`DROP TABLE IF EXISTS ${t}`);
    await c.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, s VARCHAR(100)) CHARACTER SET utf8mb4`);
    try {
      await c.query(`INSERT INTO ${t} VALUES (1, ?)`, [text]);
      await c.execute(`INSERT INTO ${t} VALUES (2, ?)`, [text]);
      const [rows] = await c.query(`SELECT s FROM ${t} WHERE s = ? ORDER BY id`, [text]);
      assert.deepEqual(rows.map((r) => r.s), [text, text]);
      const [rows2] = await c.execute(`SELECT s, CHAR_LENGTH(s) AS n FROM ${t} WHERE id = ?`, [2]);
      assert.equal(rows2[0].s, text);
      assert.equal(rows2[0].n, [...text].length);
    } finally {
      await c.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }));

  await check('insert_id_found_rows_and_errors', () => withConn({}, async (c) => {
    const t = table('m2_ai');
    await c.query(`DROP TABLE IF EXISTS ${t}`);
    await c.query(`CREATE TABLE ${t} (id INT AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT=500`);
    try {
      const [r1] = await c.query(`INSERT INTO ${t} (v) VALUES (1)`);
      assert.equal(r1.insertId, 500);
      const [r2] = await c.execute(`INSERT INTO ${t} (v) VALUES (?)`, [2]);
      assert.equal(r2.insertId, 501);
      await assert.rejects(c.query('SELEC 1'), (e) => e.errno === 1064 && e.code === 'ER_PARSE_ERROR');
      await assert.rejects(
        c.query("SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom', MYSQL_ERRNO = 1644"),
        (e) => e.errno === 1644 && e.sqlState === '45000' && e.sqlMessage === 'custom');
      const [[last]] = await c.query('SELECT LAST_INSERT_ID() AS id');
      assert.equal(Number(last.id), 501);
      // mysql2 connects with CLIENT_FOUND_ROWS: an UPDATE that changes
      // nothing reports the matched rows as affected, and 0 changed.
      const [upd] = await c.query(`UPDATE ${t} SET v = v`);
      assert.equal(upd.affectedRows, 2);
      assert.equal(upd.changedRows, 0);
    } finally {
      await c.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }));

  await check('streaming_query_rows', () => withConn({}, async (c) => {
    // The callback connection's query().stream(): rows arrive as events.
    const n = await new Promise((resolve, reject) => {
      let count = 0;
      c.connection.query('SELECT seq FROM seq_1_to_20000').stream()
        .on('data', () => { count += 1; })
        .on('error', reject)
        .on('end', () => resolve(count));
    });
    assert.equal(n, 20000);
    const [[after]] = await c.query('SELECT 1 AS one');
    assert.equal(after.one, 1);
  }));

  await check('wrong_password_is_access_denied', async () => {
    await assert.rejects(mysql.createConnection({ ...base, password: `${password}-wrong` }),
      (e) => e.errno === 1045 && e.code === 'ER_ACCESS_DENIED_ERROR');
  });

  const passed = results.filter(([, ok]) => ok).length;
  const failed = results.length - passed;
  console.log(`mysql2 ${mysqlVersion}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log('FAIL harness');
  console.log(e && e.stack ? e.stack : e);
  process.exit(1);
});
