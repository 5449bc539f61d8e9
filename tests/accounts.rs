//! `accounts-from-backend`: accounts created on the primary after Gantry
//! started log in through it (text and binary protocols, COM_CHANGE_USER)
//! with no password configured; host patterns are honoured; a dropped
//! account is refused after the next refresh.

mod common;

use mysql_async::prelude::*;
use std::time::Duration;

use common::{shared_topology, unique_name, wait_until, Gantry};

fn cli_as(g: &Gantry, user: &str, pw: &str, sql: &str) -> std::process::Output {
    std::process::Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{}", g.port),
            &format!("-u{user}"),
            &format!("-p{pw}"),
        ])
        .args(["-N", "-e", sql])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_created_on_the_primary_log_in_and_dropped_ones_do_not() {
    let topo = shared_topology();
    let primary = &topo.primary;
    primary.sql("GRANT SELECT ON mysql.global_priv TO 'monitor'@'127.0.0.1'");
    let late = unique_name("late");
    let hosty = unique_name("hosty");
    let g = Gantry::start(
        topo,
        &[
            "--accounts-from-backend",
            "true",
            "--accounts-refresh-ms",
            "500",
        ],
    );
    // Made after Gantry started.
    primary.sql(&format!(
        "CREATE USER '{late}'@'%' IDENTIFIED BY 'late_pw'; GRANT ALL ON test.* TO '{late}'@'%';\
         CREATE USER '{hosty}'@'10.9.9.%' IDENTIFIED BY 'far_pw';\
         CREATE USER '{hosty}'@'127.0.0.1' IDENTIFIED BY 'near_pw';\
         GRANT ALL ON test.* TO '{hosty}'@'127.0.0.1'"
    ));
    topo.wait_replicas_caught_up(Duration::from_secs(10));

    // Text protocol through libmariadb: found at once (an unknown user
    // reloads the accounts).
    let o = cli_as(&g, &late, "late_pw", "SELECT CURRENT_USER()");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("{late}@%")
    );
    let o = cli_as(&g, &late, "wrong", "SELECT 1");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ERROR 1045 (28000)"),
        "{o:?}"
    );
    // Binary protocol, reads on a replica and a write on the primary.
    let url = format!(
        "mysql://{late}:late_pw@127.0.0.1:{}/test?prefer_socket=false",
        g.port
    );
    let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
    let v: Option<i64> = c.exec_first("SELECT ? + 1", (41,)).await.unwrap();
    assert_eq!(v, Some(42));
    let table = unique_name("acct");
    c.query_drop(format!("CREATE TABLE test.{table} (x INT)"))
        .await
        .unwrap();
    c.exec_drop(format!("INSERT INTO test.{table} VALUES (?)"), (7,))
        .await
        .unwrap();
    drop(c);

    // Host patterns: from 127.0.0.1 the 127.0.0.1 account applies.
    let o = cli_as(&g, &hosty, "near_pw", "SELECT CURRENT_USER()");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("{hosty}@127.0.0.1")
    );
    let o = cli_as(&g, &hosty, "far_pw", "SELECT 1");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ERROR 1045"),
        "{o:?}"
    );

    // COM_CHANGE_USER from a configured account to a server one.
    let mut c = mysql_async::Conn::from_url(g.url("app", "app_pw", "test").as_str())
        .await
        .unwrap();
    c.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some(late.clone()))
            .with_pass(Some("late_pw".into())),
    )
    .await
    .unwrap();
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who, Some(format!("{late}@%")));
    drop(c);

    // Dropped: refused once the accounts are reloaded.
    primary.sql(&format!("DROP USER '{late}'@'%'"));
    wait_until(
        Duration::from_secs(10),
        "the dropped account refused",
        || {
            String::from_utf8_lossy(&cli_as(&g, &late, "late_pw", "SELECT 1").stderr)
                .contains("ERROR 1045 (28000)")
        },
    );
    primary.sql(&format!(
        "DROP USER '{hosty}'@'10.9.9.%'; DROP USER '{hosty}'@'127.0.0.1'; DROP TABLE test.{table}"
    ));
    assert!(!g.log().contains("late_pw") && !g.log().contains("near_pw"));
}
