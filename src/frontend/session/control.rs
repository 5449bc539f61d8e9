//! Session-level commands Gantry answers itself or maps: COM_RESET_CONNECTION,
//! COM_CHANGE_USER, and KILL / COM_PROCESS_KILL with Gantry's connection ids.

use std::sync::atomic::Ordering;

use super::{End, Session, Target};
use crate::backend::PoolKey;
use crate::backend::Purpose;
use crate::frontend::login::new_nonce;
use crate::protocol::auth::{self, FORWARDED_CAPABILITIES};
use crate::protocol::cmd;
use crate::protocol::credential::Credential;
use crate::protocol::packet::{join_payload, put_packet};
use crate::protocol::reply::MyError;

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

impl Session {
    /// COM_RESET_CONNECTION: the held connection is reset (with tracking
    /// set up again); connections this session left elsewhere are no
    /// longer its own (a new token), so they are reset before reuse.
    pub(super) async fn reset_connection(&mut self) -> Result<(), End> {
        self.reset_session_state();
        self.token = super::new_token();
        self.started = std::time::Instant::now();
        self.last_status = crate::protocol::status::AUTOCOMMIT;
        if let Some(h) = self.binding.held_mut() {
            let addr = h.backend.addr.clone();
            match h.conn.reset_for(self.token).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.discard_held();
                    return self.send_err(1, &e).await;
                }
                Err(_) => {
                    self.discard_held();
                    return self.send_err(1, &MyError::backend_lost(&addr)).await;
                }
            }
        }
        self.ok(1).await
    }

    /// Forgets everything the server forgets on a reset.
    fn reset_session_state(&mut self) {
        self.state.clear_vars();
        self.stmts.clear();
        self.binding.clear_pins();
        self.temp_tables = 0;
        self.last_insert_id = 0;
        self.wait_timeout = None;
        self.own_tracking = false;
    }

    /// A COM_QUERY with KILL statements under Gantry's ids, alone or in a
    /// multi-statement: each KILL is carried out by Gantry (ownership
    /// checked), and stands as `DO 0` in what the server runs, so the
    /// results keep their number and order.
    pub(super) async fn query_with_kill(&mut self, request: &[u8], sql: &[u8]) -> Result<(), End> {
        let ranges = crate::router::statement_ranges(sql);
        let kills: Vec<(usize, usize, bool, u32)> = ranges
            .iter()
            .filter_map(|&(a, b)| {
                crate::router::parse_kill(&sql[a..b]).map(|(q, id)| (a, b, q, id))
            })
            .collect();
        if kills.is_empty() {
            let class = crate::router::classify(sql);
            return self.run_query(request, sql, class).await;
        }
        let statements = ranges
            .iter()
            .filter(|(a, b)| !sql[*a..*b].trim_ascii().is_empty())
            .count();
        for &(_, _, query_only, id) in &kills {
            if let Err(e) = self.carry_out_kill(query_only, id).await? {
                return self.send_err(1, &e).await;
            }
        }
        if statements == 1 {
            return self.ok(1).await;
        }
        let mut text = Vec::with_capacity(sql.len());
        let mut at = 0;
        for &(a, b, _, _) in &kills {
            text.extend_from_slice(&sql[at..a]);
            text.extend_from_slice(b" DO 0 ");
            at = b;
        }
        text.extend_from_slice(&sql[at..]);
        let rewritten = super::command_packet(cmd::QUERY, &text);
        let class = crate::router::classify(&text);
        self.run_query(&rewritten, &text, class).await
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
        let mut seq = 1;
        let mut nonce = self.nonce;
        let client_ip = self
            .info
            .client_addr
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let known = crate::accounts::credential_for(&self.ctx, &cu.user, client_ip).await;
        // caching_sha2_password natively, as at login (see `login`).
        let sha2 = cu.plugin.as_deref() == Some(auth::CACHING_SHA2)
            && known.as_deref().is_none_or(|c| c.clear().is_some());
        let mut sha2_ok = None;
        if sha2 {
            let password = known.as_deref().and_then(Credential::clear);
            let r = (self.ctx.sha2)
                .authenticate(
                    &mut self.client,
                    &mut self.reader,
                    crate::frontend::sha2::Attempt {
                        user: &cu.user,
                        password,
                        nonce: &self.nonce,
                        response: &cu.auth_response,
                    },
                    seq,
                )
                .await?;
            tracing::debug!(user = %cu.user, path = r.path, accepted = r.accepted, "caching_sha2 auth (COM_CHANGE_USER)");
            seq = r.next_seq;
            sha2_ok = Some(r.accepted);
        } else if cu
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
        let transport_ok =
            (self.ctx.settings.load().tls).transport_allows(&cu.user, self.client.transport());
        let learnt = known
            .as_deref()
            .and_then(|c| match sha2_ok {
                Some(accepted) => accepted.then(|| c.clone()),
                None => c.verify(&nonce, &cu.auth_response),
            })
            .filter(|_| transport_ok);
        let Some(password) = learnt.map(std::sync::Arc::new) else {
            let host = self
                .info
                .client_addr
                .rsplit_once(':')
                .map_or("", |(h, _)| h);
            let err = MyError::access_denied(&cu.user, host, !cu.auth_response.is_empty());
            tracing::info!(user = %cu.user, client = %self.info.client_addr, "COM_CHANGE_USER refused");
            // The server keeps the connection, as the old user.
            return self.send_err(seq, &err).await;
        };
        // The old login's connection state must not leak to the new user.
        self.binding.discard();
        self.reset_session_state();
        self.token = super::new_token();
        self.started = std::time::Instant::now();
        self.last_status = crate::protocol::status::AUTOCOMMIT;
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
        self.set_schema(cu.database.clone());
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

    /// KILL with Gantry's connection ids (a statement or COM_PROCESS_KILL).
    pub(super) async fn kill(&mut self, query_only: bool, id: u32) -> Result<(), End> {
        match self.carry_out_kill(query_only, id).await? {
            Ok(()) => self.ok(1).await,
            Err(e) => self.send_err(1, &e).await,
        }
    }

    /// Kills the statement the target session runs on its backend and, for
    /// KILL CONNECTION, the session. Who may is decided as the server
    /// decides it, before anything is touched: the same account, or one
    /// with SUPER / CONNECTION ADMIN (asked of the server); the backend
    /// KILL itself runs under this session's account too. `Ok(Err)`: the
    /// error for the client (1094, 1095, or the server's).
    pub(super) async fn carry_out_kill(
        &mut self,
        query_only: bool,
        id: u32,
    ) -> Result<Result<(), MyError>, End> {
        let not_owner = || MyError::new(1095, "HY000", format!("You are not owner of thread {id}"));
        let Some(target) = self.ctx.sessions.get(id) else {
            return Ok(Err(MyError::new(
                1094,
                "HY000",
                format!("Unknown thread id: {id}"),
            )));
        };
        if id == self.info.id {
            if query_only {
                return Ok(Ok(()));
            }
            self.send_err(1, &MyError::new(1927, "70100", "Connection was killed"))
                .await?;
            return Err(End);
        }
        // Ownership first, so nobody's session is touched by a KILL the
        // server would refuse: the same account, or one the server lets
        // kill others.
        let same_user = target.user.lock().map(|u| *u == self.user).unwrap_or(false);
        if !same_user && !self.may_kill_others().await {
            return Ok(Err(not_owner()));
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
            .map(|b| b.runtime.clone())
            .filter(|_| thread != 0 && backend_id != 0);
        let Some(runtime) = runtime else {
            return Ok(Ok(()));
        };
        let pool = runtime.pool(&self.pool_key);
        let mut conn = match pool
            .acquire_for(&self.password, None, Purpose::Reserved)
            .await
        {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let what = if query_only { "QUERY" } else { "CONNECTION" };
        let sql = format!("KILL {what} {thread}");
        let answer = match conn.run(cmd::QUERY, sql.as_bytes()).await {
            Ok(answer) => answer,
            Err(_) => {
                conn.discard();
                return Ok(Err(MyError::backend_lost(&runtime.addr)));
            }
        };
        match answer {
            // 1094: the statement or connection ended meanwhile; fine.
            Ok(()) => Ok(Ok(())),
            Err(e) if e.code == 1094 => Ok(Ok(())),
            Err(e) if e.code == 1095 => Ok(Err(not_owner())),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Whether this session's account may kill other accounts' sessions,
    /// as the server decides it (SUPER or CONNECTION ADMIN).
    async fn may_kill_others(&mut self) -> bool {
        let Some(primary) = self
            .ctx
            .topology
            .load()
            .primary()
            .map(|p| p.runtime.clone())
        else {
            return false;
        };
        let pool = primary.pool(&self.pool_key);
        let Ok(mut conn) = pool
            .acquire_for(&self.password, None, Purpose::Reserved)
            .await
        else {
            return false;
        };
        const SQL: &str = "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES \
             WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN') AND GRANTEE = \
             CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
             SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
        match conn.query_value(SQL).await {
            Ok(Ok(v)) => v.is_some_and(|n| n != "0"),
            Ok(Err(_)) => false,
            Err(_) => {
                conn.discard();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
