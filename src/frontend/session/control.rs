//! Session-level commands Gantry answers itself or maps: COM_RESET_CONNECTION,
//! COM_CHANGE_USER, and KILL / COM_PROCESS_KILL with Gantry's connection ids.

use std::sync::atomic::Ordering;

use super::{End, Session, Target};
use crate::backend::PoolKey;
use crate::frontend::login::new_nonce;
use crate::protocol::auth::{self, FORWARDED_CAPABILITIES};
use crate::protocol::packet::{join_payload, put_packet};
use crate::protocol::reply::MyError;
use crate::protocol::{cmd, Expect};

/// A parsed COM_CHANGE_USER.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChangeUser {
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub collation: Option<u8>,
    pub plugin: Option<String>,
}

/// user NUL, auth (length-prefixed), db NUL, [charset u16] [plugin NUL] ...
pub(crate) fn parse_change_user(payload: &[u8]) -> Option<ChangeUser> {
    let rest = payload.get(1..)?;
    let nul = rest.iter().position(|b| *b == 0)?;
    let user = String::from_utf8_lossy(&rest[..nul]).into_owned();
    let rest = &rest[nul + 1..];
    let alen = *rest.first()? as usize;
    let auth_response = rest.get(1..1 + alen)?.to_vec();
    let rest = &rest[1 + alen..];
    let nul = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let database =
        Some(String::from_utf8_lossy(&rest[..nul]).into_owned()).filter(|d| !d.is_empty());
    let rest = rest.get(nul + 1..).unwrap_or(&[]);
    let collation = rest.get(..2).map(|c| c[0]);
    let rest = rest.get(2..).unwrap_or(&[]);
    let plugin = rest
        .iter()
        .position(|b| *b == 0)
        .map(|n| String::from_utf8_lossy(&rest[..n]).into_owned())
        .filter(|p| !p.is_empty());
    Some(ChangeUser {
        user,
        auth_response,
        database,
        collation,
        plugin,
    })
}

/// `KILL [HARD|SOFT] [CONNECTION|QUERY] id`: (query_only, id).
pub(crate) fn parse_kill(sql: &[u8]) -> Option<(bool, u32)> {
    let text = std::str::from_utf8(sql).ok()?;
    let mut words = text
        .trim()
        .trim_end_matches(';')
        .split_ascii_whitespace()
        .map(|w| w.to_ascii_uppercase());
    if words.next()? != "KILL" {
        return None;
    }
    let mut query = false;
    for w in words {
        match w.as_str() {
            "HARD" | "SOFT" | "CONNECTION" => {}
            "QUERY" => query = true,
            n => return n.parse().ok().map(|id| (query, id)),
        }
    }
    None
}

impl Session {
    pub(super) async fn reset_connection(&mut self, request: &[u8]) -> Result<(), End> {
        self.reset_session_state();
        if self.held.is_some() {
            if self.relay(request, Expect::Single, false).await? == Some(true) {
                if let Some(h) = self.held.as_mut() {
                    h.conn.forget_session_state();
                }
            }
            Ok(())
        } else {
            self.ok(1).await
        }
    }

    /// Forgets everything the server forgets on a reset.
    fn reset_session_state(&mut self) {
        self.state.clear_vars();
        self.stmts.clear();
        self.pins = 0;
        self.temp_tables = 0;
        self.last_insert_id = 0;
        self.info.pins.store(0, Ordering::Relaxed);
    }

    /// COM_CHANGE_USER: re-authenticates against `pwds` and starts the
    /// session afresh (a new backend connection with the new login).
    pub(super) async fn change_user(&mut self, request: &[u8]) -> Result<(), End> {
        let (payload, _) = join_payload(request);
        let Some(mut cu) = parse_change_user(&payload) else {
            return self
                .send_err(1, &MyError::malformed("COM_CHANGE_USER"))
                .await;
        };
        // The old login's connection state must not leak to the new user.
        if let Some(h) = self.held.take() {
            self.info.backend.store(0, Ordering::Relaxed);
            h.pool.discard(h.conn);
        }
        self.reset_session_state();
        let mut seq = 1;
        let mut nonce = self.nonce;
        if cu
            .plugin
            .as_deref()
            .is_some_and(|p| p != auth::NATIVE_PASSWORD)
        {
            nonce = new_nonce();
            self.out.clear();
            put_packet(&mut self.out, seq, &auth::auth_switch_to_native(&nonce));
            self.client.write_all(&self.out).await?;
            let (resp, s) = self.reader.read_payload(&mut self.client).await?;
            cu.auth_response = resp;
            seq = s.wrapping_add(1);
        }
        let password = self.ctx.password_of(&cu.user);
        let ok = password
            .as_deref()
            .is_some_and(|pw| auth::native_password_matches(&nonce, pw, &cu.auth_response));
        let Some(password) = password.filter(|_| ok) else {
            let host = self
                .info
                .client_addr
                .rsplit_once(':')
                .map_or("", |(h, _)| h);
            let err = MyError::access_denied(&cu.user, host, !cu.auth_response.is_empty());
            self.send_err(seq, &err).await?;
            return Err(End);
        };
        self.password = password;
        self.user = cu.user.clone();
        self.pool_key = PoolKey {
            user: cu.user.clone(),
            capabilities: self.pool_key.capabilities & FORWARDED_CAPABILITIES,
            collation: cu.collation.unwrap_or(self.pool_key.collation),
        };
        if let Ok(mut u) = self.info.user.lock() {
            u.clone_from(&cu.user);
        }
        self.state.schema = cu.database.clone();
        self.note_schema();
        if self.state.schema.is_some() {
            if let Err(e) = self.use_target(Target::Primary).await {
                return self.send_err(seq, &e).await;
            }
            if let Err(e) = self.sync_state().await {
                return self.send_err(seq, &e).await;
            }
        }
        self.ok(seq).await
    }

    /// COM_PROCESS_KILL: like `KILL CONNECTION id`.
    pub(super) async fn process_kill(&mut self, request: &[u8]) -> Result<(), End> {
        match request.get(5..9) {
            Some(b) => {
                self.kill(false, u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .await
            }
            None => {
                self.send_err(1, &MyError::malformed("COM_PROCESS_KILL"))
                    .await
            }
        }
    }

    /// KILL with Gantry's connection ids: the statement the target session
    /// is running is killed on its backend; KILL CONNECTION also ends the
    /// target session.
    pub(super) async fn kill(&mut self, query_only: bool, id: u32) -> Result<(), End> {
        let Some(target) = self.ctx.sessions.get(id) else {
            return self
                .send_err(
                    1,
                    &MyError::new(1094, "HY000", format!("Unknown thread id: {id}")),
                )
                .await;
        };
        if id == self.info.id {
            if query_only {
                return self.ok(1).await;
            }
            self.send_err(1, &MyError::new(1927, "70100", "Connection was killed"))
                .await?;
            return Err(End);
        }
        if !query_only {
            // First, so that the victim's relay ends its session without
            // answering (its client sees the connection lost, as directly).
            target.kill();
        }
        let backend_id = target.backend.load(Ordering::Relaxed);
        let thread = target.backend_thread.load(Ordering::Relaxed);
        let runtime = self
            .ctx
            .topology
            .load()
            .by_id(backend_id)
            .map(|b| b.runtime.clone());
        if let (Some(runtime), true) = (runtime, thread != 0) {
            let pool = runtime.pool(&self.pool_key);
            match pool.acquire(&self.password, None).await {
                Ok(mut conn) => {
                    let what = if query_only { "QUERY" } else { "CONNECTION" };
                    let sql = format!("KILL {what} {thread}");
                    match conn.run(cmd::QUERY, sql.as_bytes()).await {
                        Ok(Ok(())) => pool.release(conn),
                        Ok(Err(e)) => {
                            pool.release(conn);
                            // 1094: the statement ended meanwhile; fine.
                            if e.code != 1094 {
                                return self.send_err(1, &e).await;
                            }
                        }
                        Err(_) => pool.discard(conn),
                    }
                }
                Err(e) => return self.send_err(1, &e).await,
            }
        }
        self.ok(1).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_statements() {
        assert_eq!(parse_kill(b"KILL 5"), Some((false, 5)));
        assert_eq!(parse_kill(b"kill query 12;"), Some((true, 12)));
        assert_eq!(parse_kill(b" KILL CONNECTION 7 "), Some((false, 7)));
        assert_eq!(parse_kill(b"KILL HARD QUERY 3"), Some((true, 3)));
        assert_eq!(parse_kill(b"KILL QUERY ID 3"), None);
        assert_eq!(parse_kill(b"KILLED 3"), None);
        assert_eq!(parse_kill(b"SELECT 1"), None);
        assert_eq!(parse_kill(&[0xff, 0xfe]), None);
    }

    #[test]
    fn change_user_packet() {
        let mut p = vec![0x11];
        p.extend_from_slice(b"bob\0");
        p.push(3);
        p.extend_from_slice(&[1, 2, 3]);
        p.extend_from_slice(b"shop\0");
        p.extend_from_slice(&[45, 0]);
        p.extend_from_slice(b"mysql_native_password\0");
        let cu = parse_change_user(&p).unwrap();
        assert_eq!(cu.user, "bob");
        assert_eq!(cu.auth_response, vec![1, 2, 3]);
        assert_eq!(cu.database.as_deref(), Some("shop"));
        assert_eq!(cu.collation, Some(45));
        assert_eq!(cu.plugin.as_deref(), Some("mysql_native_password"));
        // Old-style: no charset, no plugin, empty db.
        let cu = parse_change_user(b"\x11al\0\x00\0").unwrap();
        assert_eq!(cu.database, None);
        assert_eq!(cu.plugin, None);
        assert!(parse_change_user(b"\x11").is_none());
        assert!(parse_change_user(b"\x11al\0\x09ab").is_none());
    }
}
