//! Classifier cost over a realistic statement mix.
//!
//! Why: `classify` runs on every COM_QUERY; the design target is ≤ 1 µs
//! median per statement. Groups: the whole mix (throughput in statements),
//! each statement alone, and the sqlparser slow path uncached vs cached.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gantry::router::{classify, parse_set};
use std::hint::black_box;
use std::time::Duration;

/// One sysbench oltp_read_write transaction, connector chatter and ORM reads.
const MIX: &[&str] = &[
    // sysbench oltp_read_write
    "BEGIN",
    "SELECT c FROM sbtest1 WHERE id=5012",
    "SELECT c FROM sbtest3 WHERE id=49871",
    "SELECT c FROM sbtest2 WHERE id=1",
    "SELECT c FROM sbtest1 WHERE id=77",
    "SELECT c FROM sbtest4 WHERE id=9981",
    "SELECT c FROM sbtest1 WHERE id=313",
    "SELECT c FROM sbtest2 WHERE id=42",
    "SELECT c FROM sbtest1 WHERE id=5000",
    "SELECT c FROM sbtest3 WHERE id=6",
    "SELECT c FROM sbtest1 WHERE id=100000",
    "SELECT c FROM sbtest1 WHERE id BETWEEN 5012 AND 5111",
    "SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 5012 AND 5111",
    "SELECT c FROM sbtest1 WHERE id BETWEEN 5012 AND 5111 ORDER BY c",
    "SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 5012 AND 5111 ORDER BY c",
    "UPDATE sbtest1 SET k=k+1 WHERE id=5012",
    "UPDATE sbtest1 SET c='15193137848-62373245765-30186082613-96391582425-53427457218-14262306416-46335349212-63244117219-56211563287-42352924262' WHERE id=5012",
    "DELETE FROM sbtest1 WHERE id=5012",
    "INSERT INTO sbtest1 (id, k, c, pad) VALUES (5012, 4993, '83868641912-28773972837-60736120486-75162659906-27563526494-20381887404-41576422241-93426793964-56405065102-33518432330', '67847967377-48000963322-62604785301-91415491898-96926520291')",
    "COMMIT",
    // connectors on connect
    "SELECT @@version_comment LIMIT 1",
    "/* mysql-connector-java-8.0.33 (Revision: 7d6b0800528b6b25c68b52dc10d6c1c8429c100c) */SELECT  @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@character_set_connection AS character_set_connection, @@max_allowed_packet AS max_allowed_packet, @@sql_mode AS sql_mode, @@time_zone AS time_zone, @@transaction_isolation AS transaction_isolation, @@wait_timeout AS wait_timeout",
    "SET NAMES utf8mb4",
    "SET autocommit=0",
    "SET SESSION sql_mode='STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET character_set_results = NULL",
    "SHOW VARIABLES LIKE 'lower_case_table_names'",
    "SELECT @@session.transaction_read_only",
    // ORM reads
    "select user0_.id as id1_0_, user0_.email as email2_0_, user0_.name as name3_0_ from users user0_ where user0_.id=?",
    "SELECT `auth_user`.`id`, `auth_user`.`password`, `auth_user`.`last_login`, `auth_user`.`is_superuser`, `auth_user`.`username` FROM `auth_user` WHERE `auth_user`.`username` = 'alice' LIMIT 21",
    "SELECT `users`.* FROM `users` WHERE `users`.`id` = 42 LIMIT 1",
    "SELECT * FROM `orders` WHERE `orders`.`user_id` = 42 AND `orders`.`deleted_at` IS NULL ORDER BY `orders`.`id` DESC LIMIT 20",
    "select count(*) as aggregate from `posts` where `posts`.`user_id` in (1, 2, 3, 4, 5)",
    "SELECT posts.id AS posts_id, posts.title AS posts_title FROM posts WHERE posts.author_id = 7 ORDER BY posts.created_at DESC",
    "SELECT t0.id, t1.name FROM orders t0 LEFT OUTER JOIN customers t1 ON t1.id = t0.customer_id WHERE (t0.status = 'open')",
    "/*controller='users',action='show',framework='rails'*/ SELECT `users`.* FROM `users` WHERE `users`.`id` = 7 LIMIT 1",
    "INSERT INTO `sessions` (`session_id`, `data`, `updated_at`) VALUES ('f3a1', '{}', '2024-05-01 10:00:00')",
    "SELECT LAST_INSERT_ID()",
    "SET @a = 1",
];

const WITH_READ: &str = "WITH recent AS (SELECT id, user_id FROM orders WHERE created_at > '2024-01-01') SELECT u.name, COUNT(*) FROM users u JOIN recent r ON r.user_id = u.id GROUP BY u.name";

fn mix(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(MIX.len() as u64));
    g.bench_function("mix", |b| {
        b.iter(|| {
            for q in MIX {
                black_box(classify(black_box(q.as_bytes())));
            }
        })
    });
    g.finish();
}

fn each(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify_each");
    // 39 statements: keep each short so the whole run stays in minutes.
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(1));
    for (i, q) in MIX.iter().enumerate() {
        // Alphanumeric labels: they become report directory names.
        let head: String = q
            .chars()
            .take(24)
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let label = format!("{i:02}_{head}");
        g.bench_with_input(BenchmarkId::from_parameter(label), q, |b, q| {
            b.iter(|| classify(black_box(q.as_bytes())))
        });
    }
    g.finish();
}

fn slow_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("slow_path");
    // Distinct table names give distinct shapes, so (almost) every call
    // misses the 4096-slot cache and pays for sqlparser.
    let distinct: Vec<String> = (0..50_000)
        .map(|i| WITH_READ.replace("FROM users u", &format!("FROM users_{i} u")))
        .collect();
    let mut n = 0;
    g.bench_function("with_uncached", |b| {
        b.iter(|| {
            n = (n + 1) % distinct.len();
            classify(black_box(distinct[n].as_bytes()))
        })
    });
    classify(WITH_READ.as_bytes());
    g.bench_function("with_cached", |b| {
        b.iter(|| classify(black_box(WITH_READ.as_bytes())))
    });
    g.finish();
}

fn set_parsing(c: &mut Criterion) {
    let sets: Vec<&str> = MIX
        .iter()
        .copied()
        .filter(|q| q.starts_with("SET"))
        .collect();
    c.bench_function("parse_set/mix", |b| {
        b.iter(|| {
            for q in &sets {
                black_box(parse_set(black_box(q.as_bytes())));
            }
        })
    });
}

criterion_group!(benches, mix, each, slow_path, set_parsing);
criterion_main!(benches);
