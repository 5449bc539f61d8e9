//! `SHOW REPLICA STATUS` / `SHOW SLAVE STATUS` rows, read by column name:
//! MySQL 8.0.22+ says `Replica_*` / `Source_*` / `Seconds_Behind_Source`,
//! MariaDB and older MySQL say `Slave_*` / `Master_*` /
//! `Seconds_Behind_Master`, and column order differs between versions.

/// One result row as (column name, value); `None` is SQL NULL.
pub type Row = Vec<(String, Option<String>)>;

/// What the health loop needs from a replica's status row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `Yes`, `No`, `Connecting`, `Preparing`, …
    pub io_running: String,
    pub sql_running: String,
    /// NULL while the SQL thread is stopped (or the IO thread on MariaDB).
    pub seconds_behind: Option<u64>,
    pub source_host: String,
    pub source_port: Option<u16>,
    pub source_server_id: Option<u32>,
    pub last_io_error: String,
    pub last_sql_error: String,
    /// `Slave_SQL_Running_State` / `Replica_SQL_Running_State`.
    pub sql_state: String,
    /// MariaDB `Gtid_IO_Pos` or MySQL `Retrieved_Gtid_Set`: received.
    pub received_gtid: Option<String>,
    pub sql_delay: Option<u64>,
    /// The source's binlog coordinates received and executed: equal once
    /// the relay log is applied.
    pub read_file: String,
    pub read_pos: Option<u64>,
    pub exec_file: String,
    pub exec_pos: Option<u64>,
}

impl ReplicaStatus {
    pub fn from_row(row: &Row) -> ReplicaStatus {
        let get = |names: &[&str]| -> Option<&str> {
            names.iter().find_map(|n| {
                row.iter()
                    .find(|(c, _)| c.eq_ignore_ascii_case(n))
                    .and_then(|(_, v)| v.as_deref())
            })
        };
        let text = |names: &[&str]| get(names).unwrap_or("").trim().to_string();
        let num = |names: &[&str]| get(names).and_then(|v| v.trim().parse::<u64>().ok());
        ReplicaStatus {
            io_running: text(&["Replica_IO_Running", "Slave_IO_Running"]),
            sql_running: text(&["Replica_SQL_Running", "Slave_SQL_Running"]),
            seconds_behind: num(&["Seconds_Behind_Source", "Seconds_Behind_Master"]),
            source_host: text(&["Source_Host", "Master_Host"]),
            source_port: num(&["Source_Port", "Master_Port"]).and_then(|p| u16::try_from(p).ok()),
            source_server_id: num(&["Source_Server_Id", "Master_Server_Id"])
                .and_then(|p| u32::try_from(p).ok()),
            last_io_error: text(&["Last_IO_Error"]),
            last_sql_error: text(&["Last_SQL_Error"]),
            sql_state: text(&["Replica_SQL_Running_State", "Slave_SQL_Running_State"]),
            received_gtid: get(&["Gtid_IO_Pos", "Retrieved_Gtid_Set"])
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            sql_delay: num(&["SQL_Delay"]),
            read_file: text(&["Source_Log_File", "Master_Log_File"]),
            read_pos: num(&["Read_Source_Log_Pos", "Read_Master_Log_Pos"]),
            exec_file: text(&["Relay_Source_Log_File", "Relay_Master_Log_File"]),
            exec_pos: num(&["Exec_Source_Log_Pos", "Exec_Master_Log_Pos"]),
        }
    }

    pub fn io_ok(&self) -> bool {
        self.io_running.eq_ignore_ascii_case("yes")
    }

    /// Everything received from the source has been executed.
    pub fn relay_log_applied(&self) -> bool {
        self.read_pos.is_some()
            && self.read_file == self.exec_file
            && self.read_pos == self.exec_pos
    }

    pub fn sql_ok(&self) -> bool {
        self.sql_running.eq_ignore_ascii_case("yes")
    }

    /// Either thread running or trying to (a replica, even if broken), as
    /// opposed to a server whose replication was stopped or reset.
    pub fn is_replicating(&self) -> bool {
        let io = self.io_running.to_ascii_lowercase();
        self.sql_ok() || (!io.is_empty() && io != "no")
    }

    /// Why this replica may not serve reads, if its threads say so.
    pub fn thread_problem(&self) -> Option<String> {
        if !self.io_ok() {
            let state = if self.io_running.is_empty() {
                "No"
            } else {
                &self.io_running
            };
            return Some(with_error(
                format!("IO thread not running ({state})"),
                &self.last_io_error,
            ));
        }
        if !self.sql_ok() {
            return Some(with_error(
                "SQL thread stopped".into(),
                &self.last_sql_error,
            ));
        }
        None
    }
}

fn with_error(what: String, err: &str) -> String {
    if err.is_empty() {
        what
    } else {
        let short: String = err.chars().take(160).collect();
        format!("{what}: {short}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a row from the documented column list, with `values` for
    /// some columns and `""` for the rest.
    fn row(columns: &str, values: &[(&str, Option<&str>)]) -> Row {
        columns
            .split(',')
            .map(|c| {
                let v = values
                    .iter()
                    .find(|(n, _)| *n == c)
                    .map(|(_, v)| v.map(str::to_string))
                    .unwrap_or(Some(String::new()));
                (c.to_string(), v)
            })
            .collect()
    }

    /// MariaDB 10.11 `SHOW SLAVE STATUS` (as printed by the test topology).
    const MARIADB_10_11: &str = "Slave_IO_State,Master_Host,Master_User,Master_Port,Connect_Retry,\
Master_Log_File,Read_Master_Log_Pos,Relay_Log_File,Relay_Log_Pos,Relay_Master_Log_File,\
Slave_IO_Running,Slave_SQL_Running,Replicate_Do_DB,Replicate_Ignore_DB,Replicate_Do_Table,\
Replicate_Ignore_Table,Replicate_Wild_Do_Table,Replicate_Wild_Ignore_Table,Last_Errno,\
Last_Error,Skip_Counter,Exec_Master_Log_Pos,Relay_Log_Space,Until_Condition,Until_Log_File,\
Until_Log_Pos,Master_SSL_Allowed,Master_SSL_CA_File,Master_SSL_CA_Path,Master_SSL_Cert,\
Master_SSL_Cipher,Master_SSL_Key,Seconds_Behind_Master,Master_SSL_Verify_Server_Cert,\
Last_IO_Errno,Last_IO_Error,Last_SQL_Errno,Last_SQL_Error,Replicate_Ignore_Server_Ids,\
Master_Server_Id,Master_SSL_Crl,Master_SSL_Crlpath,Using_Gtid,Gtid_IO_Pos,\
Replicate_Do_Domain_Ids,Replicate_Ignore_Domain_Ids,Parallel_Mode,SQL_Delay,\
SQL_Remaining_Delay,Slave_SQL_Running_State,Slave_DDL_Groups,Slave_Non_Transactional_Groups,\
Slave_Transactional_Groups,Replicate_Rewrite_DB";

    /// MySQL 8.0.22+ `SHOW REPLICA STATUS` (reference manual column list).
    const MYSQL_8: &str = "Replica_IO_State,Source_Host,Source_User,Source_Port,Connect_Retry,\
Source_Log_File,Read_Source_Log_Pos,Relay_Log_File,Relay_Log_Pos,Relay_Source_Log_File,\
Replica_IO_Running,Replica_SQL_Running,Replicate_Do_DB,Replicate_Ignore_DB,\
Replicate_Do_Table,Replicate_Ignore_Table,Replicate_Wild_Do_Table,\
Replicate_Wild_Ignore_Table,Last_Errno,Last_Error,Skip_Counter,Exec_Source_Log_Pos,\
Relay_Log_Space,Until_Condition,Until_Log_File,Until_Log_Pos,Source_SSL_Allowed,\
Source_SSL_CA_File,Source_SSL_CA_Path,Source_SSL_Cert,Source_SSL_Cipher,Source_SSL_Key,\
Seconds_Behind_Source,Source_SSL_Verify_Server_Cert,Last_IO_Errno,Last_IO_Error,\
Last_SQL_Errno,Last_SQL_Error,Replicate_Ignore_Server_Ids,Source_Server_Id,Source_UUID,\
Source_Info_File,SQL_Delay,SQL_Remaining_Delay,Replica_SQL_Running_State,\
Source_Retry_Count,Source_Bind,Last_IO_Error_Timestamp,Last_SQL_Error_Timestamp,\
Source_SSL_Crl,Source_SSL_Crlpath,Retrieved_Gtid_Set,Executed_Gtid_Set,Auto_Position,\
Replicate_Rewrite_DB,Channel_Name,Source_TLS_Version,Source_public_key_path,\
Get_Source_public_key,Network_Namespace";

    /// MySQL 5.7 / 8.0 before 8.0.22 `SHOW SLAVE STATUS`.
    const MYSQL_5_7: &str = "Slave_IO_State,Master_Host,Master_User,Master_Port,Connect_Retry,\
Master_Log_File,Read_Master_Log_Pos,Relay_Log_File,Relay_Log_Pos,Relay_Master_Log_File,\
Slave_IO_Running,Slave_SQL_Running,Replicate_Do_DB,Replicate_Ignore_DB,Replicate_Do_Table,\
Replicate_Ignore_Table,Replicate_Wild_Do_Table,Replicate_Wild_Ignore_Table,Last_Errno,\
Last_Error,Skip_Counter,Exec_Master_Log_Pos,Relay_Log_Space,Until_Condition,Until_Log_File,\
Until_Log_Pos,Master_SSL_Allowed,Master_SSL_CA_File,Master_SSL_CA_Path,Master_SSL_Cert,\
Master_SSL_Cipher,Master_SSL_Key,Seconds_Behind_Master,Master_SSL_Verify_Server_Cert,\
Last_IO_Errno,Last_IO_Error,Last_SQL_Errno,Last_SQL_Error,Replicate_Ignore_Server_Ids,\
Master_Server_Id,Master_UUID,Master_Info_File,SQL_Delay,SQL_Remaining_Delay,\
Slave_SQL_Running_State,Master_Retry_Count,Master_Bind,Last_IO_Error_Timestamp,\
Last_SQL_Error_Timestamp,Master_SSL_Crl,Master_SSL_Crlpath,Retrieved_Gtid_Set,\
Executed_Gtid_Set,Auto_Position,Replicate_Rewrite_DB,Channel_Name,Master_TLS_Version";

    #[test]
    fn mariadb_healthy_row() {
        let s = ReplicaStatus::from_row(&row(
            MARIADB_10_11,
            &[
                ("Slave_IO_Running", Some("Yes")),
                ("Slave_SQL_Running", Some("Yes")),
                ("Seconds_Behind_Master", Some("0")),
                ("Master_Host", Some("127.0.0.1")),
                ("Master_Port", Some("3306")),
                ("Master_Server_Id", Some("1")),
                ("Gtid_IO_Pos", Some("0-1-23")),
                ("SQL_Delay", Some("0")),
                ("SQL_Remaining_Delay", None),
                (
                    "Slave_SQL_Running_State",
                    Some("Slave has read all relay log; waiting for more updates"),
                ),
            ],
        ));
        assert!(s.io_ok() && s.sql_ok() && s.is_replicating());
        assert_eq!(s.thread_problem(), None);
        assert_eq!(s.seconds_behind, Some(0));
        assert_eq!(
            (s.source_host.as_str(), s.source_port),
            ("127.0.0.1", Some(3306))
        );
        assert_eq!(s.source_server_id, Some(1));
        assert_eq!(s.received_gtid.as_deref(), Some("0-1-23"));
        assert!(s.sql_state.starts_with("Slave has read all relay log"));
    }

    #[test]
    fn mariadb_sql_thread_stopped_has_null_lag() {
        let s = ReplicaStatus::from_row(&row(
            MARIADB_10_11,
            &[
                ("Slave_IO_Running", Some("Yes")),
                ("Slave_SQL_Running", Some("No")),
                ("Seconds_Behind_Master", None),
                (
                    "Last_SQL_Error",
                    Some("Duplicate entry '1' for key 'PRIMARY'"),
                ),
            ],
        ));
        assert_eq!(s.seconds_behind, None);
        assert!(s.is_replicating());
        let why = s.thread_problem().expect("SQL thread stopped is a problem");
        assert!(
            why.starts_with("SQL thread stopped: Duplicate entry"),
            "{why}"
        );
    }

    #[test]
    fn mysql8_names_are_read() {
        let s = ReplicaStatus::from_row(&row(
            MYSQL_8,
            &[
                ("Replica_IO_Running", Some("Connecting")),
                ("Replica_SQL_Running", Some("Yes")),
                ("Seconds_Behind_Source", Some("0")),
                ("Source_Host", Some("db1")),
                ("Source_Port", Some("3307")),
                ("Last_IO_Error", Some("error connecting to source")),
                (
                    "Retrieved_Gtid_Set",
                    Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"),
                ),
                (
                    "Replica_SQL_Running_State",
                    Some("Replica has read all relay log"),
                ),
            ],
        ));
        // Seconds_Behind_Source reads 0 but the IO thread is not connected.
        assert_eq!(s.seconds_behind, Some(0));
        assert!(!s.io_ok() && s.is_replicating());
        let why = s.thread_problem().unwrap();
        assert_eq!(
            why,
            "IO thread not running (Connecting): error connecting to source"
        );
        assert_eq!(s.source_port, Some(3307));
        assert!(s.received_gtid.unwrap().ends_with(":1-5"));
    }

    #[test]
    fn mysql57_slave_names_and_stopped_replication() {
        let s = ReplicaStatus::from_row(&row(
            MYSQL_5_7,
            &[
                ("Slave_IO_Running", Some("No")),
                ("Slave_SQL_Running", Some("No")),
                ("Seconds_Behind_Master", None),
                ("Master_Port", Some("99999")),
                ("SQL_Delay", Some("30")),
            ],
        ));
        assert!(!s.is_replicating());
        assert_eq!(s.source_port, None, "out-of-range port is not trusted");
        assert_eq!(s.sql_delay, Some(30));
        assert_eq!(s.thread_problem().unwrap(), "IO thread not running (No)");
    }

    #[test]
    fn missing_columns_and_garbage_do_not_panic() {
        let s = ReplicaStatus::from_row(&vec![
            ("Seconds_Behind_Master".into(), Some("-3".into())),
            ("Slave_IO_Running".into(), None),
        ]);
        assert_eq!(s.seconds_behind, None);
        assert!(!s.io_ok() && !s.is_replicating());
        assert_eq!(
            ReplicaStatus::from_row(&Vec::new()),
            ReplicaStatus::default()
        );
    }

    #[test]
    fn the_relay_log_is_applied_when_read_and_executed_coordinates_meet() {
        let row = |read: &str, exec: &str, names: [&str; 4]| -> Row {
            vec![
                (names[0].into(), Some("bin.000002".into())),
                (names[1].into(), Some(read.into())),
                (names[2].into(), Some("bin.000002".into())),
                (names[3].into(), Some(exec.into())),
            ]
        };
        let maria = [
            "Master_Log_File",
            "Read_Master_Log_Pos",
            "Relay_Master_Log_File",
            "Exec_Master_Log_Pos",
        ];
        let mysql = [
            "Source_Log_File",
            "Read_Source_Log_Pos",
            "Relay_Source_Log_File",
            "Exec_Source_Log_Pos",
        ];
        for names in [maria, mysql] {
            assert!(ReplicaStatus::from_row(&row("900", "900", names)).relay_log_applied());
            assert!(!ReplicaStatus::from_row(&row("900", "400", names)).relay_log_applied());
        }
        assert!(!ReplicaStatus::default().relay_log_applied());
    }
}
