// One mysql2 session through Gantry across a failover, with execute() (the
// binary protocol; mysql2 prepares each statement text once per connection
// and re-executes it): see sessions.py and tests/failover_sessions.rs.
//
//   node sessions.js MODE HOST PORT TABLE ID      (NODE_PATH: mysql2's node_modules)
//
// MODE idle: session state (@v, sql_mode, USE app) and both statements run
// once; "ready"; after a line on stdin, both again on the same connection.
// MODE txn: BEGIN and an INSERT of row ID via execute(), not committed;
// "ready"; after the line, two more execute()s (an error, then the
// connection gone). Output: "key=value" lines, then "done".
'use strict';
const mysql = require('mysql2/promise');
const readline = require('readline');

const [mode, host, port, table, idArg] = process.argv.slice(2);
const id = Number(idArg);
const say = (k, v) => process.stdout.write(`${k}=${v}\n`);
const errorOf = (e) => `${e.code || ''} ${e.errno || ''} ${e.sqlState || ''} fatal=${!!e.fatal} ${e.message}`;
const insert = `INSERT INTO test.${table} (id, note) VALUES (?, ?)`;
const CHECK = 'SELECT @v, @@session.sql_mode, DATABASE()';

function nextLine() {
  const rl = readline.createInterface({ input: process.stdin });
  return new Promise((resolve) => rl.once('line', () => { rl.close(); resolve(); }));
}

async function check(conn) {
  const [rows] = await conn.execute({ sql: CHECK, rowsAsArray: true });
  return rows[0].map((v) => (v === null ? 'NULL' : String(v))).join('|');
}

// Ids of the statements mysql2 has prepared on this connection.
const statementIds = (conn) => [...conn.connection._statements.values()].map((s) => s.id).sort().join(',');

async function main() {
  const conn = await mysql.createConnection({
    host, port: Number(port), user: 'app', password: 'app_pw', database: 'test',
  });
  // A connection closed by the server is reported here, not thrown.
  conn.connection.on('error', (e) => say('connection_error', errorOf(e)));
  conn.connection.on('end', () => say('connection_end', 1));
  if (mode === 'idle') {
    await conn.query('SET @v = 42');
    await conn.query("SET SESSION sql_mode = 'ANSI_QUOTES'");
    await conn.query('USE app');
    say('state_before', await check(conn));
    // Last, a write: the session holds (idle-release-ms) a connection to
    // the primary that dies.
    await conn.execute(insert, [id, 'mysql2 before']);
    say('ids_before', statementIds(conn));
    say('ready', 1);
    await nextLine();
    try {
      const [r] = await conn.execute(insert, [id + 1, 'mysql2 after']);
      say('insert_after', r.affectedRows);
      say('state_after', await check(conn));
      say('ids_after', statementIds(conn));
    } catch (e) {
      say('error_after', errorOf(e));
    }
  } else if (mode === 'txn') {
    await conn.query('BEGIN');
    await conn.execute(insert, [id, 'mysql2 in a transaction']);
    say('ready', 1);
    await nextLine();
    for (const step of ['first', 'second']) {
      try {
        const [r] = await conn.execute(insert, [id + 1, `mysql2 ${step}`]);
        say(`${step}_ok`, r.affectedRows);
      } catch (e) {
        say(`${step}_error`, errorOf(e));
      }
    }
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  say('done', 1);
  conn.connection.destroy();
}

main().catch((e) => { say('fatal', errorOf(e)); process.exit(1); });
