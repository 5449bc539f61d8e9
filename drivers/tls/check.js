// One login through Gantry with node mysql2, with or without TLS: a text
// query and a prepared statement (execute); prints key=value lines for
// tests/client_tls.rs.
//
//     node check.js PORT CA|-
const fs = require('fs');
const tls = require('tls');
const mysql = require('mysql2/promise');

// mysql2 keeps its TLS socket to itself: note it when made.
let secure = null;
const connect = tls.connect;
tls.connect = function (...args) {
  secure = connect.apply(this, args);
  return secure;
};

async function main() {
  const [port, ca] = process.argv.slice(2);
  const opts = { host: '127.0.0.1', port: Number(port), user: 'app', password: 'app_pw', database: 'app' };
  if (ca !== '-') opts.ssl = { ca: fs.readFileSync(ca), rejectUnauthorized: true, verifyIdentity: true };
  try {
    const c = await mysql.createConnection(opts);
    const [rows] = await c.query('SELECT 20 + 22 AS v');
    console.log(`text=${rows[0].v}`);
    const [bin] = await c.execute('SELECT ? + 1 AS v', [41]);
    console.log(`binary=${bin[0].v}`);
    console.log(`tls=${secure ? secure.getProtocol() : 'none'}`);
    await c.end();
  } catch (e) {
    console.log(`error=${e.errno}`);
    console.log(`message=${e.message}`);
  }
}
main();
