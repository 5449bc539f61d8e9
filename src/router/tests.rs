//! Table-driven tests: real statements with their expected classification.

use super::*;
use Route::{Primary as P, Replica as R};
use StatementKind as K;

/// Expected flags, written compactly: `prev` asks_previous, `multi`,
/// `tmp+`/`tmp-` temp tables, `lock` user lock, `calc`, `hP`/`hR` hints.
fn expect(sql: &[u8], route: Route, kind: StatementKind, flags: &str) {
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let want = Classification {
        route,
        kind,
        hint: if has("hP") {
            Some(Hint::Primary)
        } else if has("hR") {
            Some(Hint::Replica)
        } else {
            None
        },
        asks_previous: has("prev"),
        multi_statement: has("multi"),
        creates_temp_table: has("tmp+"),
        drops_temp_table: has("tmp-"),
        uses_user_lock: has("lock"),
        calc_found_rows: has("calc"),
        holds: classify(sql).holds,
        reads_insert_id: classify(sql).reads_insert_id,
        assigns_user_var: classify(sql).assigns_user_var,
        kill: classify(sql).kill,
        connection_id: classify(sql).connection_id,
    };
    assert_eq!(classify(sql), want, "{}", String::from_utf8_lossy(sql));
}

type Row = (&'static [u8], Route, StatementKind, &'static str);

fn run(rows: &[Row]) -> usize {
    for &(sql, route, kind, flags) in rows {
        expect(sql, route, kind, flags);
    }
    rows.len()
}

const SYSBENCH: &[Row] = &[
    (b"SELECT c FROM sbtest1 WHERE id=5", R, K::Read, ""),
    (
        b"SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 100",
        R,
        K::Read,
        "",
    ),
    (
        b"SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 1 AND 100",
        R,
        K::Read,
        "",
    ),
    (
        b"SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c",
        R,
        K::Read,
        "",
    ),
    (
        b"SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c",
        R,
        K::Read,
        "",
    ),
    (b"UPDATE sbtest1 SET k=k+1 WHERE id=5", P, K::Write, ""),
    (
        b"UPDATE sbtest1 SET c='0966-1234-5678' WHERE id=5",
        P,
        K::Write,
        "",
    ),
    (b"DELETE FROM sbtest1 WHERE id=5", P, K::Write, ""),
    (
        b"INSERT INTO sbtest1 (id, k, c, pad) VALUES (5, 4993, '8388-7311', '6783-4922')",
        P,
        K::Write,
        "",
    ),
    (b"BEGIN", P, K::Begin, ""),
    (b"COMMIT", P, K::Commit, ""),
];

const CONNECTORS: &[Row] = &[
    (b"SELECT @@version_comment LIMIT 1", R, K::Read, ""),
    (b"SET NAMES utf8mb4", P, K::Set, ""),
    (b"SET autocommit=0", P, K::Set, ""),
    (b"SET SESSION sql_mode='STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'", P, K::Set, ""),
    (b"SHOW VARIABLES LIKE 'x'", R, K::Show, ""),
    (b"SET character_set_results = NULL", P, K::Set, ""),
    (b"/* mysql-connector-java-8.0.33 (Revision: 7d6b0800528b6b25c68b52dc10d6c1c8429c100c) */SELECT  @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@wait_timeout AS wait_timeout", R, K::Read, ""),
    (b"SELECT @@session.transaction_read_only", R, K::Read, ""),
    (b"SELECT @@max_allowed_packet", R, K::Read, ""),
    (b"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", P, K::Set, ""),
    (b"SELECT DATABASE()", R, K::Read, ""),
    (b"SHOW FULL TABLES FROM `db` LIKE 'x%'", R, K::Show, ""),
    (b"SHOW CREATE TABLE t", R, K::Show, ""),
    (b"START TRANSACTION", P, K::Begin, ""),
    (b"START TRANSACTION READ ONLY", P, K::Begin, ""),
    (b"BEGIN WORK", P, K::Begin, ""),
    (b"ROLLBACK", P, K::Rollback, ""),
    (b"COMMIT AND CHAIN", P, K::Commit, ""),
    (b"ROLLBACK TO SAVEPOINT s1", P, K::Other, ""),
    (b"ROLLBACK WORK TO s1", P, K::Other, ""),
    (b"SAVEPOINT s1", P, K::Other, ""),
    (b"RELEASE SAVEPOINT s1", P, K::Other, ""),
    (b"USE db", P, K::Use, ""),
    (b"SHOW WARNINGS", P, K::Show, "prev"),
    (b"show errors limit 1", P, K::Show, "prev"),
    (b"SHOW COUNT(*) WARNINGS", P, K::Show, "prev"),
    (b"SHOW COUNT ( * ) ERRORS", P, K::Show, "prev"),
    (b"SHOW PROFILES", P, K::Show, "prev"),
    (b"SHOW TABLES", R, K::Show, ""),
    (b"SHOW PROCESSLIST", R, K::Show, ""),
];

const ORMS: &[Row] = &[
    (b"select user0_.id as id1_0_, user0_.name as name2_0_ from users user0_ where user0_.id=?", R, K::Read, ""),
    (b"SELECT `auth_user`.`id`, `auth_user`.`password` FROM `auth_user` WHERE `auth_user`.`username` = 'bob' LIMIT 21", R, K::Read, ""),
    (b"SELECT `users`.* FROM `users` WHERE `users`.`id` = 1 LIMIT 1", R, K::Read, ""),
    (b"SELECT 1 AS one FROM `users` WHERE `users`.`email` = BINARY 'a@b.c' LIMIT 1", R, K::Read, ""),
    (b"SELECT users.id AS users_id, users.name AS users_name FROM users WHERE users.name = 'x'", R, K::Read, ""),
    (b"SELECT * FROM `users` WHERE `users`.`deleted_at` IS NULL ORDER BY `users`.`id` LIMIT 1", R, K::Read, ""),
    (b"select count(*) as aggregate from `posts` where `posts`.`user_id` in (1, 2, 3)", R, K::Read, ""),
    (b"SELECT t0.id, t1.name FROM orders t0 LEFT OUTER JOIN customers t1 ON t1.id = t0.customer_id WHERE (t0.status = 'open')", R, K::Read, ""),
    (b"/*controller='users',action='show'*/ SELECT 1", R, K::Read, ""),
    (b"INSERT INTO users (name) VALUES ('x') ON DUPLICATE KEY UPDATE name=VALUES(name)", P, K::Write, ""),
    (b"INSERT INTO t SELECT * FROM u", P, K::Write, ""),
    (b"REPLACE INTO t VALUES (1)", P, K::Write, ""),
    (b"SELECT REPLACE(c, 'a', 'b') FROM t", R, K::Read, ""),
    (b"SELECT CONNECTION_ID()", R, K::Read, ""),
    (b"SELECT SLEEP(1)", R, K::Read, ""),
    (b"TABLE t", R, K::Read, ""),
    (b"(SELECT a FROM t1) UNION (SELECT a FROM t2)", R, K::Read, ""),
    (b"((SELECT 1))", R, K::Read, ""),
    (b"  \n\t SELECT 1", R, K::Read, ""),
    (b"SELECT 1;", R, K::Read, ""),
    (b"SELECT 1 ;  -- trailing\n", R, K::Read, ""),
    (b"SELECT * FROM t WHERE a = 1--1", R, K::Read, ""),
];

const PRIMARY_FORCING: &[Row] = &[
    (
        b"SELECT SQL_CALC_FOUND_ROWS * FROM posts LIMIT 10",
        P,
        K::Read,
        "calc",
    ),
    (b"SELECT FOUND_ROWS()", P, K::Read, "prev"),
    (b"SELECT LAST_INSERT_ID()", P, K::Read, "prev"),
    (b"select last_insert_id ( )", P, K::Read, "prev"),
    (b"SELECT ROW_COUNT()", P, K::Read, "prev"),
    (b"SELECT @@identity", P, K::Read, "prev"),
    (b"SELECT @@last_insert_id", P, K::Read, "prev"),
    (b"SELECT @@warning_count", P, K::Read, "prev"),
    (b"SELECT @@session.error_count", P, K::Read, "prev"),
    (b"SELECT @@global.max_connections", R, K::Read, ""),
    (b"SELECT @a, @`b`", R, K::Read, ""),
    (b"SELECT @a := 1", P, K::Read, ""),
    (b"SELECT id INTO @v FROM t LIMIT 1", P, K::Read, ""),
    (b"SELECT * FROM t INTO OUTFILE '/tmp/x'", P, K::Read, ""),
    (b"SELECT * INTO DUMPFILE '/tmp/x' FROM t", P, K::Read, ""),
    (b"SELECT * FROM t WHERE id=1 FOR UPDATE", P, K::Read, ""),
    (b"SELECT * FROM t WHERE id=1 FOR SHARE", P, K::Read, ""),
    (
        b"SELECT * FROM t WHERE id=1 LOCK IN SHARE MODE",
        P,
        K::Read,
        "",
    ),
    (b"select * from t for update nowait", P, K::Read, ""),
    (
        b"select * from t where id in (select id from u for update)",
        P,
        K::Read,
        "",
    ),
    (b"SELECT GET_LOCK('k', 10)", P, K::Read, "lock"),
    (b"SELECT RELEASE_LOCK('k')", P, K::Read, "lock"),
    (b"SELECT RELEASE_ALL_LOCKS()", P, K::Read, "lock"),
    (b"SELECT IS_FREE_LOCK('k')", P, K::Read, "lock"),
    (b"SELECT IS_USED_LOCK('k')", P, K::Read, "lock"),
    (b"SELECT NEXT VALUE FOR s", P, K::Read, ""),
    (b"SELECT NEXTVAL(s)", P, K::Read, ""),
    (b"SELECT SETVAL(s, 10)", P, K::Read, ""),
    (b"SELECT LASTVAL(s)", P, K::Read, "prev"),
    (b"SELECT PREVIOUS VALUE FOR s", P, K::Read, "prev"),
    (
        b"SELECT last_insert_id, row_count, found_rows FROM stats",
        R,
        K::Read,
        "",
    ),
    (b"SELECT * FROM t WHERE lock IN (1, 2)", R, K::Read, ""),
    (b"SELECT 'FOR UPDATE', \"GET_LOCK(\" FROM t", R, K::Read, ""),
    (b"SELECT `for`, `update` FROM t", R, K::Read, ""),
    (b"SELECT * FROM t -- FOR UPDATE\n", R, K::Read, ""),
    (b"SELECT * FROM t /* FOR UPDATE */", R, K::Read, ""),
    (b"SELECT * FROM t # FOR UPDATE", R, K::Read, ""),
    (
        b"SELECT * FROM t WHERE c = 'it''s' AND d = \"x\\\"y\" FOR UPDATE",
        P,
        K::Read,
        "",
    ),
    (
        b"SELECT * FROM t WHERE c = 'a\\\\' FOR UPDATE",
        P,
        K::Read,
        "",
    ),
    (
        b"UPDATE t SET a = (SELECT GET_LOCK('x', 1))",
        P,
        K::Write,
        "lock",
    ),
    (b"SET @id = LAST_INSERT_ID()", P, K::Set, "prev"),
    (b"SET @a = 1", P, K::Set, ""),
    (b"GET DIAGNOSTICS @n = NUMBER", P, K::Other, "prev"),
    (
        b"GET STACKED DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT",
        P,
        K::Other,
        "prev",
    ),
];

const EXECUTABLE_COMMENTS: &[Row] = &[
    (b"SELECT * FROM t /*!50100 FOR UPDATE */", P, K::Read, ""),
    (b"SELECT /*!40001 SQL_NO_CACHE */ * FROM t", R, K::Read, ""),
    (b"/*!40101 SET NAMES utf8 */", P, K::Set, ""),
    (
        b"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;",
        P,
        K::Set,
        "",
    ),
    (b"/*M!100101 SELECT 1 FOR UPDATE */", P, K::Read, ""),
    (b"/*!80000 SELECT */ 1", R, K::Read, ""),
    (b"/*!40000 ALTER TABLE `t` DISABLE KEYS */;", P, K::Ddl, ""),
    (
        b"SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t",
        R,
        K::Read,
        "",
    ),
];

const HINTS: &[Row] = &[
    (b"/* gantry:primary */ SELECT 1", P, K::Read, "hP"),
    (b"/*master*/SELECT * FROM t", P, K::Read, "hP"),
    (b"/* MASTER */ select 1", P, K::Read, "hP"),
    (b"SELECT 1 /* gantry:replica */", R, K::Read, "hR"),
    (b"/* gantry:replica */ UPDATE t SET a=1", P, K::Write, "hR"),
    (
        b"/* gantry:replica */ SELECT * FROM t FOR UPDATE",
        P,
        K::Read,
        "hR",
    ),
    (
        b"/* gantry:replica */ SELECT GET_LOCK('a', 1)",
        P,
        K::Read,
        "hR lock",
    ),
    (
        b"/* gantry:replica */ /* gantry:primary */ SELECT 1",
        P,
        K::Read,
        "hP",
    ),
    (b"-- gantry:primary\nSELECT 1", P, K::Read, "hP"),
    (
        b"/* gantry:replica */ WITH x AS (SELECT 1 AS a) SELECT a FROM x WHERE a SOUNDS LIKE 'b'",
        R,
        K::Read,
        "hR",
    ),
    (
        b"WITH x AS (SELECT 1 AS a) SELECT a FROM x WHERE a SOUNDS LIKE 'b'",
        P,
        K::Read,
        "",
    ),
];

const SLOW_PATH: &[Row] = &[
    (b"WITH x AS (SELECT 1 AS a) SELECT * FROM x", R, K::Read, ""),
    (
        b"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n<5) SELECT * FROM r",
        R,
        K::Read,
        "",
    ),
    (
        b"WITH x AS (SELECT 1 AS a) UPDATE t SET c = 1 WHERE id IN (SELECT a FROM x)",
        P,
        K::Write,
        "",
    ),
    (
        b"WITH x AS (SELECT 1 AS a) DELETE FROM t WHERE id IN (SELECT a FROM x)",
        P,
        K::Write,
        "",
    ),
    (
        b"WITH x AS (SELECT 1) SELECT * FROM x LOCK IN SHARE MODE",
        P,
        K::Read,
        "",
    ),
    (
        b"WITH x AS (SELECT 1) SELECT * FROM x FOR UPDATE",
        P,
        K::Read,
        "",
    ),
    (
        b"/* gantry:replica */ WITH x AS (SELECT 1) SELECT * FROM x LOCK IN SHARE MODE",
        P,
        K::Read,
        "hR",
    ),
    (
        b"WITH x AS (SELECT 1) SELECT * FROM x; DELETE FROM t",
        P,
        K::Read,
        "multi",
    ),
    (
        b"EXPLAIN WITH x AS (SELECT 1) SELECT * FROM x",
        R,
        K::Show,
        "",
    ),
    (b"SELEC * FROM t", P, K::Other, ""),
    (b"VALUES ROW(1, 2)", P, K::Other, ""),
];

const MULTI_AND_GARBAGE: &[Row] = &[
    (b"SELECT 1; SELECT 2", P, K::Read, "multi"),
    (
        b"INSERT INTO t VALUES (1); SELECT LAST_INSERT_ID()",
        P,
        K::Write,
        "multi prev",
    ),
    (b"UPDATE t SET a = 1; ", P, K::Write, ""),
    (b"SET NAMES utf8mb4; SELECT 1", P, K::Set, "multi"),
    (b"SELECT 1;; ", R, K::Read, ""),
    (b"SELECT * FROM t WHERE name = '\xe9t\xe9'", R, K::Read, ""),
    (
        b"SELECT * FROM \xc3\xa9t\xc3\xa9 WHERE id = 1",
        R,
        K::Read,
        "",
    ),
    (b"\xff\xfe\x00garbage", P, K::Other, ""),
    (b"", P, K::Other, ""),
    (b"   ", P, K::Other, ""),
    (b"/* unterminated", P, K::Other, ""),
    (b"SELECT 'unterminated", P, K::Read, ""),
    (b"SELECT `x", P, K::Read, ""),
    (b")))", P, K::Other, ""),
    (b"((((", P, K::Other, ""),
    (b"12345", P, K::Other, ""),
];

const UNPARSABLE_AND_ADMIN: &[Row] = &[
    (
        b"LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t FIELDS TERMINATED BY ','",
        P,
        K::LoadData,
        "",
    ),
    (
        b"LOAD XML LOCAL INFILE 'x.xml' INTO TABLE t",
        P,
        K::LoadData,
        "",
    ),
    (b"XA START 'x'", P, K::Begin, ""),
    (b"XA END 'x'", P, K::Other, ""),
    (b"XA PREPARE 'x'", P, K::Other, ""),
    (b"XA COMMIT 'x'", P, K::Commit, ""),
    (b"XA ROLLBACK 'x'", P, K::Rollback, ""),
    (b"XA RECOVER", P, K::Other, ""),
    (b"HANDLER t OPEN", P, K::Other, ""),
    (b"HANDLER t READ FIRST", P, K::Other, ""),
    (b"PREPARE s FROM 'SELECT 1'", P, K::Prepare, ""),
    (b"EXECUTE s USING @a", P, K::Execute, ""),
    (b"DEALLOCATE PREPARE s", P, K::Deallocate, ""),
    (b"DROP PREPARE s", P, K::Deallocate, ""),
    (b"DO SLEEP(1)", P, K::Other, ""),
    (b"DO RELEASE_LOCK('x')", P, K::Other, "lock"),
    (b"CALL p(1)", P, K::Call, ""),
    (b"LOCK TABLES t READ", P, K::Lock, ""),
    (b"UNLOCK TABLES", P, K::Unlock, ""),
    (b"FLUSH TABLES", P, K::Other, ""),
    (b"KILL 5", P, K::Other, ""),
    (b"ANALYZE TABLE t", P, K::Other, ""),
    (b"OPTIMIZE TABLE t", P, K::Other, ""),
    (b"CHECK TABLE t", P, K::Other, ""),
    (b"HELP 'contents'", R, K::Show, ""),
    (b"DESCRIBE t", R, K::Show, ""),
    (b"DESC `t` `c`", R, K::Show, ""),
    (b"DESCRIBE event", R, K::Show, ""),
    (b"EXPLAIN", P, K::Show, ""),
    (b"EXPLAIN EXTENDED SELECT 1 FROM t", R, K::Show, ""),
    (b"EXPLAIN DELETE FROM t", P, K::Show, ""),
    (b"EXPLAIN SELECT * FROM t", R, K::Show, ""),
    (b"EXPLAIN FORMAT=JSON SELECT 1", R, K::Show, ""),
    (b"EXPLAIN ANALYZE SELECT 1", R, K::Show, ""),
    (b"EXPLAIN UPDATE t SET a=1", P, K::Show, ""),
    (b"EXPLAIN FOR CONNECTION 5", P, K::Show, ""),
    (b"EXPLAIN FORMAT=JSON INTO @v SELECT 1", P, K::Show, ""),
];

const DDL: &[Row] = &[
    (b"CREATE TABLE t (id INT)", P, K::Ddl, ""),
    (b"CREATE TEMPORARY TABLE tmp (id INT)", P, K::Ddl, "tmp+"),
    (b"CREATE OR REPLACE TEMPORARY TABLE tmp AS SELECT 1", P, K::Ddl, "tmp+"),
    (b"DROP TEMPORARY TABLE IF EXISTS tmp", P, K::Ddl, "tmp-"),
    (b"DROP TABLE t", P, K::Ddl, ""),
    (b"ALTER TABLE t ADD COLUMN c INT", P, K::Ddl, ""),
    (b"TRUNCATE TABLE t", P, K::Ddl, ""),
    (b"RENAME TABLE a TO b", P, K::Ddl, ""),
    (b"GRANT SELECT ON db.* TO 'u'@'%'", P, K::Ddl, ""),
    (b"REVOKE SELECT ON db.* FROM 'u'@'%'", P, K::Ddl, ""),
    (b"CREATE TABLE t2 AS SELECT GET_LOCK('a', 1)", P, K::Ddl, "lock"),
    (b"CREATE PROCEDURE p() BEGIN SELECT LAST_INSERT_ID(); UPDATE t SET a = 1; END", P, K::Ddl, ""),
    (b"CREATE DEFINER=`root`@`%` TRIGGER trg BEFORE INSERT ON t FOR EACH ROW BEGIN IF NEW.a IS NULL THEN SET NEW.a = 1; END IF; END", P, K::Ddl, ""),
    (b"CREATE PROCEDURE p() BEGIN SELECT 1; END; SELECT 2", P, K::Ddl, "multi"),
    (b"CREATE VIEW v AS SELECT LAST_INSERT_ID()", P, K::Ddl, ""),
    (b"CREATE FUNCTION f() RETURNS INT DETERMINISTIC BEGIN DECLARE x INT; SET x = CASE WHEN 1 THEN 2 END; CASE x WHEN 1 THEN SET x = 3; END CASE; RETURN x; END", P, K::Ddl, ""),
    (b"CREATE TABLE event (id INT); DROP TABLE event", P, K::Ddl, "multi"),
];

#[test]
fn classification_table() {
    let n = [
        SYSBENCH,
        CONNECTORS,
        ORMS,
        PRIMARY_FORCING,
        EXECUTABLE_COMMENTS,
        HINTS,
        SLOW_PATH,
        MULTI_AND_GARBAGE,
        UNPARSABLE_AND_ADMIN,
        DDL,
    ]
    .iter()
    .map(|rows| run(rows))
    .sum::<usize>();
    assert!(n >= 80, "only {n} statements");
}

#[test]
fn common_statements_never_reach_sqlparser() {
    clear_shape_cache();
    for rows in [
        SYSBENCH,
        CONNECTORS,
        ORMS,
        PRIMARY_FORCING,
        EXECUTABLE_COMMENTS,
        DDL,
    ] {
        for (sql, ..) in rows {
            classify(sql);
        }
    }
    assert_eq!(
        shape_cache_stats(),
        (0, 0),
        "a fast-path statement took the slow path"
    );
}

#[test]
fn slow_path_results_are_cached_by_shape() {
    clear_shape_cache();
    let a = classify(b"WITH x AS (SELECT 1 AS a) SELECT * FROM x WHERE a = 5");
    let b = classify(b"with x as (select 2 as a) select * from X where a = 6 /* other */");
    assert_eq!(a, b);
    assert_eq!(a.route, R);
    assert_eq!(shape_cache_stats(), (1, 1));
    // A cached read verdict never hides a primary-forcing feature.
    let c = classify(b"WITH x AS (SELECT 1 AS a) SELECT * FROM x WHERE a = GET_LOCK('a', 1)");
    assert_eq!(c.route, P);
    assert!(c.uses_user_lock);
    let d = classify(b"/*master*/ WITH x AS (SELECT 1 AS a) SELECT * FROM x WHERE a = 7");
    assert_eq!(d.route, P);
}

/// xorshift: deterministic pseudo-random bytes without a dependency.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn never_panics_on_noise() {
    let alphabet: &[u8] = b"SELECT FOR UPDATE WITH SET @@:=;'\"`\\/*!-#\n()M0x.,=\xff\xc3";
    let mut seed = 0x2545_f491_4f6c_dd1d;
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        buf.clear();
        let len = rng(&mut seed) % 48;
        for _ in 0..len {
            buf.push(alphabet[(rng(&mut seed) % alphabet.len() as u64) as usize]);
        }
        let c = classify(&buf);
        if c.route == R {
            assert!(
                matches!(c.kind, K::Read | K::Show),
                "{:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        let _ = parse_set(&buf);
        let _ = use_schema(&buf);
    }
    // Truncations of real statements.
    let full: &[u8] = b"/*!50100 SET */ @a := 'x\\'y', NAMES `u``v` /* c */ -- d\n; SELECT GET_LOCK(\"k\", 1) FOR UPDATE";
    for i in 0..=full.len() {
        let _ = classify(&full[..i]);
        let _ = parse_set(&full[..i]);
    }
    // Huge statements: linear lexing, no sqlparser.
    let big = format!(
        "WITH x AS (SELECT 1) SELECT * FROM x WHERE a IN ({}1)",
        "1, ".repeat(200_000)
    );
    assert_eq!(classify(big.as_bytes()).route, P);
    let big = format!("SELECT * FROM x WHERE a IN ({}1)", "'a', ".repeat(400_000));
    assert_eq!(classify(big.as_bytes()).route, R);
    // Deep nesting stays within sqlparser's recursion limit.
    let deep = format!(
        "WITH x AS (SELECT {}1{}) SELECT 1",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    assert_eq!(classify(deep.as_bytes()).route, P);
}

fn set1(sql: &str) -> SetAssignment {
    let v = parse_set(sql.as_bytes()).unwrap_or_else(|| panic!("unparsed: {sql}"));
    assert_eq!(v.len(), 1, "{sql}");
    v.into_iter().next().unwrap()
}

fn sa(scope: SetScope, name: &str, value: &str, lit: bool) -> SetAssignment {
    SetAssignment {
        scope,
        name: name.into(),
        value: value.into(),
        value_is_literal: lit,
    }
}

#[test]
fn parse_set_forms() {
    use SetScope::*;
    let cases = [
        (
            "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
            sa(Names, "names", "utf8mb4 COLLATE utf8mb4_unicode_ci", true),
        ),
        ("SET NAMES 'utf8mb4'", sa(Names, "names", "'utf8mb4'", true)),
        ("SET @a = 42", sa(User, "a", "42", true)),
        ("SET @a = NOW()", sa(User, "a", "NOW()", false)),
        ("SET @A := -1.5e3", sa(User, "a", "-1.5e3", true)),
        ("SET @`my var` = 'x'", sa(User, "my var", "'x'", true)),
        ("SET @a = b", sa(User, "a", "b", false)),
        (
            "SET @a = CURRENT_TIMESTAMP",
            sa(User, "a", "CURRENT_TIMESTAMP", false),
        ),
        (
            "SET SESSION time_zone = '+00:00'",
            sa(Session, "time_zone", "'+00:00'", true),
        ),
        (
            "SET @@session.sql_mode = 'ANSI'",
            sa(Session, "sql_mode", "'ANSI'", true),
        ),
        (
            "SET @@SQL_MODE = CONCAT(@@sql_mode, ',STRICT')",
            sa(Session, "sql_mode", "CONCAT(@@sql_mode, ',STRICT')", false),
        ),
        (
            "SET LOCAL wait_timeout = 60",
            sa(Session, "wait_timeout", "60", true),
        ),
        (
            "SET GLOBAL max_connections=10",
            sa(Global, "max_connections", "10", true),
        ),
        (
            "SET @@global.max_connections = DEFAULT",
            sa(Global, "max_connections", "DEFAULT", true),
        ),
        (
            "SET PERSIST max_connections = 10",
            sa(Global, "max_connections", "10", true),
        ),
        ("SET autocommit = ON", sa(Session, "autocommit", "ON", true)),
        (
            "SET character_set_results = NULL",
            sa(Session, "character_set_results", "NULL", true),
        ),
        (
            "SET `sql_mode` = _utf8mb4'ANSI'",
            sa(Session, "sql_mode", "_utf8mb4'ANSI'", true),
        ),
        (
            "SET default.key_buffer_size = 0",
            sa(Session, "default.key_buffer_size", "0", true),
        ),
        (
            "SET @v = (SELECT MAX(id) FROM t)",
            sa(User, "v", "(SELECT MAX(id) FROM t)", false),
        ),
        (
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            sa(
                Transaction,
                "transaction",
                "ISOLATION LEVEL READ COMMITTED",
                true,
            ),
        ),
        (
            "SET SESSION TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE",
            sa(
                Transaction,
                "session transaction",
                "READ ONLY, ISOLATION LEVEL SERIALIZABLE",
                true,
            ),
        ),
        (
            "SET GLOBAL TRANSACTION READ WRITE",
            sa(Transaction, "global transaction", "READ WRITE", true),
        ),
        (
            "SET CHARACTER SET utf8",
            sa(CharacterSet, "character set", "utf8", true),
        ),
        (
            "SET CHARSET DEFAULT",
            sa(CharacterSet, "character set", "DEFAULT", true),
        ),
        (
            "/*!40101 SET NAMES utf8 */;",
            sa(Names, "names", "utf8", true),
        ),
        (
            "SET sql_mode = 'a' /* why */ ; -- done",
            sa(Session, "sql_mode", "'a'", true),
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(set1(sql), want, "{sql}");
    }
    let multi = parse_set(b"SET autocommit=0, @b='x', GLOBAL g = 1, NAMES latin1").unwrap();
    assert_eq!(
        multi,
        vec![
            sa(Session, "autocommit", "0", true),
            sa(User, "b", "'x'", true),
            sa(Global, "g", "1", true),
            sa(Names, "names", "latin1", true),
        ]
    );
    let mysqldump =
        parse_set(b"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */")
            .unwrap();
    assert_eq!(
        mysqldump,
        vec![
            sa(User, "old_sql_mode", "@@SQL_MODE", false),
            sa(Session, "sql_mode", "'NO_AUTO_VALUE_ON_ZERO'", true),
        ]
    );
}

#[test]
fn parse_set_rejects() {
    for sql in [
        &b"SELECT 1"[..],
        b"SET",
        b"SET x",
        b"SET x =",
        b"SET PASSWORD = 'secret'",
        b"SET PASSWORD FOR 'u'@'%' = 'secret'",
        b"SET ROLE admin",
        b"SET DEFAULT ROLE ALL TO u",
        b"SET STATEMENT max_statement_time=60 FOR SELECT 1",
        b"SET @a = (1",
        b"SET @a = 1)",
        b"SET @a = 'unterminated",
        b"SET @a = 1; SET @b = 2",
        b"SET @a = '\xe9'",
        b"SET GLOBAL @a = 1",
        b"SET NAMES = 'utf8'",
        b"SET TRANSACTION",
        b"UPDATE t SET a = 1",
    ] {
        assert_eq!(parse_set(sql), None, "{}", String::from_utf8_lossy(sql));
    }
}

#[test]
fn set_to_sql_replays() {
    let items =
        parse_set(b"SET @`a b` = 1, NAMES utf8mb4 COLLATE utf8mb4_bin, SESSION sql_mode = ''")
            .unwrap();
    let sql: Vec<String> = items.iter().map(SetAssignment::to_sql).collect();
    assert_eq!(
        sql,
        [
            "SET @`a b` = 1",
            "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
            "SET SESSION sql_mode = ''"
        ]
    );
    assert_eq!(
        set1("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").to_sql(),
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"
    );
    for s in &sql {
        assert!(parse_set(s.as_bytes()).is_some(), "{s}");
    }
}

#[test]
fn use_schema_forms() {
    assert_eq!(use_schema(b"USE db").as_deref(), Some("db"));
    assert_eq!(use_schema(b"use `My``Db`;").as_deref(), Some("My`Db"));
    assert_eq!(
        use_schema(b"/* c */ USE shop_01 -- x").as_deref(),
        Some("shop_01")
    );
    assert_eq!(use_schema(b"USE 2024db").as_deref(), Some("2024db"));
    assert_eq!(
        use_schema(b"USE `caf\xc3\xa9`").as_deref(),
        Some("caf\u{e9}")
    );
    for sql in [
        &b"USE"[..],
        b"USE a b",
        b"USE a; USE b",
        b"SELECT 1",
        b"USE `x",
        b"USE 'db'",
        b"USE \xff",
    ] {
        assert_eq!(use_schema(sql), None, "{}", String::from_utf8_lossy(sql));
    }
}

#[test]
fn connection_bound_state_the_tracker_does_not_report() {
    use super::Holds;
    let holds = |sql: &[u8]| classify(sql).holds;
    assert_eq!(holds(b"HANDLER t OPEN"), Some(Holds::Handler));
    assert_eq!(holds(b"handler t read first"), Some(Holds::Handler));
    assert_eq!(holds(b"HANDLER t CLOSE;"), Some(Holds::HandlerRelease));
    assert_eq!(holds(b"BACKUP STAGE START"), Some(Holds::BackupStage));
    assert_eq!(holds(b"backup stage end"), Some(Holds::BackupRelease));
    assert_eq!(holds(b"XA START 'x'"), Some(Holds::Xa));
    assert_eq!(holds(b"XA END 'x'"), Some(Holds::Xa));
    assert_eq!(holds(b"XA COMMIT 'x'"), Some(Holds::XaRelease));
    assert_eq!(holds(b"XA ROLLBACK 'x'"), Some(Holds::XaRelease));
    assert_eq!(holds(b"SELECT 1"), None);
    assert_eq!(classify(b"BACKUP STAGE START").route, Route::Primary);
}

#[test]
fn statements_of_a_multi_statement() {
    let sql = b"KILL 5; SELECT ';' /* ; */; DO 1";
    let parts: Vec<&[u8]> = super::statement_ranges(sql)
        .into_iter()
        .map(|(a, b)| &sql[a..b])
        .collect();
    assert_eq!(parts, [&b"KILL 5"[..], b" SELECT ';' /* ; */", b" DO 1"]);
}

#[test]
fn facts_the_session_needs() {
    assert!(classify(b"SELECT LAST_INSERT_ID()").reads_insert_id);
    assert!(classify(b"select @@identity").reads_insert_id);
    assert!(!classify(b"SELECT ROW_COUNT()").reads_insert_id);
    assert!(!classify(b"SELECT 'last_insert_id'").reads_insert_id);
    assert!(classify(b"SELECT @a := 1").assigns_user_var);
    assert!(classify(b"SELECT 1, 2 INTO @a, @b").assigns_user_var);
    assert!(classify(b"CALL p(@out)").assigns_user_var);
    assert!(!classify(b"INSERT INTO t VALUES (@a)").assigns_user_var);
    assert!(!classify(b"SET @a = 1").assigns_user_var);
    assert!(!classify(b"SELECT @a").assigns_user_var);
}
