//! One client session: the command loop, routing each command to a backend
//! connection, replaying session state there, and following the server's
//! status flags to know when the session must stay on one connection.

use bytes::BytesMut;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpStream;

mod causal;
mod control;
mod prepared;

#[doc(hidden)]
pub(crate) use control::{parse_change_user, parse_kill};

use super::client_stream::ClientStream;
use super::forward::{forward, ForwardError};
use super::registry::{pin, SessionInfo};
use super::state::{has_unresettable_state, SessionState};
use super::stmt::Statements;
use crate::backend::{BackendConn, BackendRuntime, Pool, PoolKey};
use crate::config::Consistency;
use crate::context::Context;
use crate::gtid::Gtid;
use crate::protocol::packet::{header, PacketReader};
use crate::protocol::reply::{err_packet, ok_packet, MyError};
use crate::protocol::{cmd, status, Expect, ResponseScanner};
use crate::router::{self, Classification, Route, StatementKind};

/// A backend connection the session is using.
struct Held {
    backend: Arc<BackendRuntime>,
    pool: Arc<Pool>,
    conn: BackendConn,
}

/// Where a command should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Primary,
    Replica,
    /// The connection in use, or the primary if there is none.
    Current,
}

/// The session ends (the client left, or its stream is unusable).
pub struct End;

impl From<io::Error> for End {
    fn from(_: io::Error) -> Self {
        End
    }
}

pub struct Session {
    ctx: Arc<Context>,
    info: Arc<SessionInfo>,
    client: ClientStream,
    reader: PacketReader,
    out: BytesMut,
    password: Arc<str>,
    pool_key: PoolKey,
    state: SessionState,
    held: Option<Held>,
    /// `pin` bits: while non-zero the session stays on `held`.
    pins: u32,
    temp_tables: u32,
    /// Status flags of the last response, for COM_PING answered locally.
    last_status: u16,
    /// Advances per read for the weighted replica choice.
    ticket: u32,
    /// LAST_INSERT_ID() as the client's session knows it.
    last_insert_id: u64,
    /// The next statement reads LAST_INSERT_ID(): replay it first.
    sync_insert_id: bool,
    /// Binary prepared statements under Gantry's ids.
    stmts: Statements,
    /// Reused buffer for packets Gantry rewrites or collects.
    scratch: BytesMut,
    /// The login nonce, which COM_CHANGE_USER's first answer is scrambled
    /// with.
    nonce: [u8; 20],
    user: String,
    /// Switch to the compression protocol after the login's OK.
    compress_after_login: bool,
    /// Read consistency (`consistency`, or `SET @@gantry_consistency`).
    consistency: Consistency,
    /// Everything this session committed: its reads must see it.
    causal: Option<Gtid>,
    /// A replica verified to have `causal` applied.
    verified_on: Option<u64>,
    /// The client said goodbye with COM_QUIT.
    quit: bool,
}

/// Whether the statement reads LAST_INSERT_ID() / @@identity.
fn mentions_insert_id(sql: &[u8]) -> bool {
    const NEEDLES: [&[u8]; 2] = [b"insert_id", b"identity"];
    NEEDLES
        .iter()
        .any(|n| sql.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n)))
}

/// Whether a statement that succeeded may have committed a write.
fn may_write(c: &Classification) -> bool {
    c.route == Route::Primary
        && !matches!(
            c.kind,
            StatementKind::Read
                | StatementKind::Show
                | StatementKind::Set
                | StatementKind::Use
                | StatementKind::Begin
                | StatementKind::Rollback
        )
}

/// Whether a non-SET statement may assign a user variable.
fn assigns_user_var(c: &Classification, sql: &[u8]) -> bool {
    sql.contains(&b'@')
        && (c.kind == StatementKind::Call
            || sql.windows(2).any(|w| w == b":=")
            || sql.windows(4).any(|w| w.eq_ignore_ascii_case(b"into")))
}

/// At session end: connections with session-only state are closed, which
/// also rolls back an open transaction, as a direct disconnect would.
impl Drop for Session {
    fn drop(&mut self) {
        if !self.quit {
            // The client vanished without COM_QUIT: a connection that carried
            // its session state is dropped the same way, so the server counts
            // the aborted client as it would directly.
            let pinned = self.pins != 0 || self.last_status & status::IN_TRANS != 0;
            if let (Some(h), true) = (self.held.as_mut(), pinned) {
                h.conn.abort_on_drop = true;
            }
        }
        self.release_held();
    }
}

pub struct SessionSetup {
    pub ctx: Arc<Context>,
    pub info: Arc<SessionInfo>,
    pub client: TcpStream,
    pub reader: PacketReader,
    pub password: Arc<str>,
    pub pool_key: PoolKey,
    pub schema: Option<String>,
    pub nonce: [u8; 20],
    pub user: String,
    /// The client negotiated CLIENT_COMPRESS.
    pub compress: bool,
}

impl Session {
    pub fn new(s: SessionSetup) -> Self {
        let consistency = {
            let cfg = s.ctx.config.load();
            cfg.user_consistency
                .iter()
                .find(|(u, _)| *u == s.user)
                .map_or(cfg.consistency, |(_, m)| *m)
        };
        let ticket = s.info.id.wrapping_mul(2_654_435_761);
        Self {
            ctx: s.ctx,
            info: s.info,
            client: ClientStream::new(s.client),
            compress_after_login: s.compress,
            consistency,
            causal: None,
            verified_on: None,
            quit: false,
            reader: s.reader,
            out: BytesMut::with_capacity(256),
            password: s.password,
            pool_key: s.pool_key,
            state: SessionState {
                schema: s.schema,
                ..Default::default()
            },
            held: None,
            pins: 0,
            temp_tables: 0,
            last_status: status::AUTOCOMMIT,
            ticket,
            last_insert_id: 0,
            sync_insert_id: false,
            stmts: Statements::default(),
            scratch: BytesMut::new(),
            nonce: s.nonce,
            user: s.user,
        }
    }

    /// Validates the schema given at login on the primary (as a direct
    /// connection would) and sends the final OK or the server's error.
    pub async fn finish_login(&mut self, seq: u8) -> Result<(), End> {
        if self.state.schema.is_some() {
            if let Err(e) = self.use_target(Target::Primary).await {
                self.send_err(seq, &e).await?;
                return Err(End);
            }
            if let Err(e) = self.sync_state().await {
                self.send_err(seq, &e).await?;
                return Err(End);
            }
        }
        self.out.clear();
        ok_packet(&mut self.out, seq, 0, self.last_status, false);
        self.client.write_all(&self.out).await?;
        if self.compress_after_login {
            self.client.enable_compression();
        }
        Ok(())
    }

    pub async fn run(mut self) {
        let _ = self.command_loop().await;
    }

    async fn command_loop(&mut self) -> Result<(), End> {
        loop {
            let n = match self.next_command().await? {
                Some(n) => n,
                None => return Ok(()),
            };
            let request = self.reader.buf.split_to(n);
            let (len, _) = header(&request);
            if len == 0 {
                self.send_err(1, &MyError::malformed("empty command"))
                    .await?;
                continue;
            }
            self.info.queries.fetch_add(1, Ordering::Relaxed);
            match request[4] {
                cmd::QUIT => {
                    self.quit = true;
                    return Ok(());
                }
                cmd::QUERY => self.query(&request).await?,
                cmd::PING => self.ok(1).await?,
                cmd::INIT_DB => self.init_db(&request).await?,
                cmd::FIELD_LIST => {
                    self.simple(&request, Target::Replica, Expect::FieldList)
                        .await?;
                }
                cmd::STATISTICS => {
                    self.simple(&request, Target::Current, Expect::Single)
                        .await?;
                }
                cmd::RESET_CONNECTION => self.reset_connection(&request).await?,
                cmd::CHANGE_USER => self.change_user(&request).await?,
                cmd::PROCESS_KILL => self.process_kill(&request).await?,
                cmd::SET_OPTION => {
                    self.simple(&request, Target::Current, Expect::Single)
                        .await?;
                    self.set_pin(pin::SESSION_OPTION, true);
                }
                cmd::STMT_PREPARE => self.stmt_prepare(&request).await?,
                cmd::STMT_EXECUTE => self.stmt_execute(&request).await?,
                cmd::STMT_FETCH => self.stmt_fetch(&request).await?,
                cmd::STMT_RESET => self.stmt_reset(&request).await?,
                cmd::STMT_CLOSE => self.stmt_close(&request).await,
                cmd::STMT_SEND_LONG_DATA => self.stmt_long_data(request),
                other => self.send_err(1, &MyError::unknown_command(other)).await?,
            }
        }
    }

    /// Waits for the next command. A session that keeps a backend
    /// connection it does not need gives it back after `idle-release`.
    async fn next_command(&mut self) -> Result<Option<usize>, End> {
        if self.info.killed.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if let (Some(h), 0) = (self.held.as_ref(), self.pins) {
            // Under pressure, also give the connection back at once when
            // another client starts waiting for one from that pool. (Only
            // then: listening means a shared waiter list per statement.)
            let idle = self.ctx.settings.load().idle_release;
            let pressed = h.pool.under_pressure();
            let wanted = h.pool.wanted.notified();
            tokio::select! {
                r = tokio::time::timeout(idle, self.reader.fill_packet(&mut self.client)) => {
                    if let Ok(r) = r {
                        return Ok(r?);
                    }
                }
                _ = wanted, if pressed => {}
                _ = self.info.kill_signal.notified() => return Ok(None),
            }
            self.release_held();
        }
        tokio::select! {
            r = self.reader.fill_packet(&mut self.client) => Ok(r?),
            _ = self.info.kill_signal.notified() => Ok(None),
        }
    }

    async fn query(&mut self, request: &[u8]) -> Result<(), End> {
        let (len, _) = header(request);
        let end = (4 + len).min(request.len());
        let sql = &request[5..end];
        if sql.len() > 4 && sql[..4].eq_ignore_ascii_case(b"kill") {
            if let Some((query_only, id)) = control::parse_kill(sql) {
                return self.kill(query_only, id).await;
            }
        }
        let class = router::classify(sql);
        if class.kind == StatementKind::Set {
            if let Some(value) = causal::set_consistency_value(sql) {
                return self.set_consistency(&value).await;
            }
        }
        let mut target = self.target_for(&class, sql);
        if target == Target::Replica {
            let mode = causal::hinted_consistency(sql).unwrap_or(self.consistency);
            if mode != Consistency::Eventual {
                if !self.prepare_causal_read(mode).await? {
                    return Ok(());
                }
                target = Target::Current;
            }
        }
        let ran = self
            .run_on(
                request,
                target,
                Expect::Query,
                class.route == Route::Replica,
            )
            .await?;
        if ran == Some(true) {
            self.after_statement(&class, sql);
            if self.consistency == Consistency::ReadYourWrites
                && may_write(&class)
                && self.pins & pin::TRANSACTION == 0
            {
                self.learn_write_position().await;
            }
        }
        Ok(())
    }

    fn target_for(&mut self, c: &Classification, sql: &[u8]) -> Target {
        if self.pins != 0 {
            return Target::Current;
        }
        if c.asks_previous {
            // LAST_INSERT_ID() is the session's, not the last connection's:
            // run it on the primary, replaying the id Gantry saw in OK packets.
            if mentions_insert_id(sql) {
                self.sync_insert_id = true;
                return Target::Primary;
            }
            // ROW_COUNT(), FOUND_ROWS(), SHOW WARNINGS: the connection that
            // ran the previous statement.
            return Target::Current;
        }
        match c.route {
            Route::Primary => Target::Primary,
            Route::Replica => Target::Replica,
        }
    }

    /// Runs a command and relays its response. `Ok(Some(true))`: the server
    /// answered without error; `Ok(Some(false))`: it answered with ERR;
    /// `Ok(None)`: Gantry answered with its own ERR.
    async fn run_on(
        &mut self,
        request: &[u8],
        target: Target,
        expect: Expect,
        is_read: bool,
    ) -> Result<Option<bool>, End> {
        if !self.prepare_conn(target).await? {
            return Ok(None);
        }
        self.relay(request, expect, is_read).await
    }

    /// Makes `held` a connection for `target` in the session's state. On
    /// failure the client has been sent the error and `false` is returned.
    async fn prepare_conn(&mut self, target: Target) -> Result<bool, End> {
        if let Err(e) = self.use_target(target).await {
            self.send_err(1, &e).await?;
            return Ok(false);
        }
        if let Err(e) = self.sync_state().await {
            self.send_err(1, &e).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Relays `request` on the held connection (see `run_on`).
    async fn relay(
        &mut self,
        request: &[u8],
        expect: Expect,
        is_read: bool,
    ) -> Result<Option<bool>, End> {
        let held = self.held.as_mut().expect("prepare_conn sets held");
        let backend = held.backend.clone();
        let result = forward(
            &mut self.client,
            &mut self.reader,
            &mut held.conn,
            request,
            expect,
        )
        .await;
        self.count(&backend, is_read);
        match result {
            Ok(sc) => {
                self.note_response(&sc);
                Ok(Some(!sc.error))
            }
            Err(ForwardError::Client(_)) => {
                self.discard_held();
                Err(End)
            }
            Err(ForwardError::Backend {
                error,
                clean,
                next_seq,
            }) => self.backend_failed(&backend, &error, clean, next_seq).await,
        }
    }

    /// Follows insert ids and the transaction/autocommit status flags.
    fn note_response(&mut self, sc: &ResponseScanner) {
        if sc.last_insert_id != 0 {
            self.last_insert_id = sc.last_insert_id;
            if let Some(h) = self.held.as_mut() {
                h.conn.last_insert_id = sc.last_insert_id;
            }
        }
        if let Some(st) = sc.status {
            self.last_status = st;
            self.set_pin(pin::TRANSACTION, st & status::IN_TRANS != 0);
            self.set_pin(pin::AUTOCOMMIT_OFF, st & status::AUTOCOMMIT == 0);
        }
    }

    /// The held backend connection failed: tell the client if its stream
    /// allows, and end the session if it lost a transaction or pinned state.
    async fn backend_failed(
        &mut self,
        backend: &BackendRuntime,
        error: &io::Error,
        clean: bool,
        next_seq: u8,
    ) -> Result<Option<bool>, End> {
        tracing::warn!(backend = %backend.addr, %error, "backend failed during a command");
        self.ctx
            .stats
            .backend_errors
            .fetch_add(1, Ordering::Relaxed);
        let was_pinned = self.pins != 0;
        self.discard_held();
        if !clean || self.info.killed.load(Ordering::Relaxed) {
            return Err(End);
        }
        self.send_err(next_seq, &MyError::backend_lost(&backend.addr))
            .await?;
        if was_pinned {
            // The transaction or pinned state is gone with the connection;
            // carrying on would silently change what the client's next
            // statement means.
            return Err(End);
        }
        Ok(None)
    }

    /// Commands other than COM_QUERY that are simply relayed. Returns
    /// whether the server answered without error.
    async fn simple(
        &mut self,
        request: &[u8],
        target: Target,
        expect: Expect,
    ) -> Result<bool, End> {
        let target = if self.pins != 0 {
            Target::Current
        } else {
            target
        };
        let is_read = target == Target::Replica;
        Ok(self.run_on(request, target, expect, is_read).await? == Some(true))
    }

    async fn init_db(&mut self, request: &[u8]) -> Result<(), End> {
        let schema = String::from_utf8_lossy(&request[5..]).into_owned();
        if self
            .run_on(request, Target::Current, Expect::Single, false)
            .await?
            == Some(true)
        {
            self.state.schema = Some(schema.clone());
            if let Some(h) = self.held.as_mut() {
                h.conn.schema = Some(schema.clone());
            }
            self.note_schema();
        }
        Ok(())
    }

    /// Session bookkeeping after a statement the server accepted.
    fn after_statement(&mut self, c: &Classification, sql: &[u8]) {
        match c.kind {
            StatementKind::Set => {
                if let Some(assignments) = router::parse_set(sql) {
                    let effect = self.state.record_set(&assignments);
                    if effect.needs_pin {
                        self.set_pin(pin::USER_VARIABLE, true);
                    }
                    if let Some(h) = self.held.as_mut() {
                        h.conn.vars = self.state.vars.clone();
                        h.conn.vars_hash = self.state.vars_hash;
                    }
                }
            }
            StatementKind::Use => {
                if let Some(schema) = router::use_schema(sql) {
                    self.state.schema = Some(schema.clone());
                    if let Some(h) = self.held.as_mut() {
                        h.conn.schema = Some(schema);
                    }
                    self.note_schema();
                }
            }
            StatementKind::Lock => self.set_pin(pin::LOCK_TABLES, true),
            StatementKind::Unlock => self.set_pin(pin::LOCK_TABLES, false),
            StatementKind::Prepare => self.set_pin(pin::SQL_PREPARE, true),
            _ => {}
        }
        if c.creates_temp_table {
            self.temp_tables += 1;
        }
        if c.drops_temp_table {
            self.temp_tables = self.temp_tables.saturating_sub(1);
        }
        self.set_pin(pin::TEMP_TABLE, self.temp_tables > 0);
        if c.uses_user_lock {
            self.set_pin(pin::USER_LOCK, true);
        }
        // `@v := …`, `SELECT … INTO @v`, `CALL p(@out)`: the server assigned
        // a user variable Gantry cannot replay.
        if c.route == Route::Primary && c.kind != StatementKind::Set && assigns_user_var(c, sql) {
            self.set_pin(pin::USER_VARIABLE, true);
        }
    }

    fn set_pin(&mut self, bit: u32, on: bool) {
        let next = if on {
            self.pins | bit
        } else {
            self.pins & !bit
        };
        if next != self.pins {
            self.pins = next;
            self.info.pins.store(next, Ordering::Relaxed);
        }
    }

    fn note_schema(&self) {
        if let Ok(mut s) = self.info.schema.lock() {
            s.clone_from(&self.state.schema);
        }
    }

    fn count(&self, backend: &BackendRuntime, is_read: bool) {
        backend.stats.queries.fetch_add(1, Ordering::Relaxed);
        let stats = &self.ctx.stats;
        stats.queries.fetch_add(1, Ordering::Relaxed);
        if is_read {
            backend.stats.reads.fetch_add(1, Ordering::Relaxed);
            let on_primary = self
                .ctx
                .topology
                .load()
                .primary()
                .is_some_and(|p| p.runtime.id == backend.id);
            if on_primary {
                stats.reads_on_primary.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.reads_on_replica.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            backend.stats.writes.fetch_add(1, Ordering::Relaxed);
            stats.writes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Makes `held` a connection to the backend `target` resolves to.
    async fn use_target(&mut self, target: Target) -> Result<(), MyError> {
        let topo = self.ctx.topology.load();
        let chosen = match target {
            Target::Current if self.held.is_some() => return Ok(()),
            Target::Current | Target::Primary => topo.primary(),
            Target::Replica => {
                self.ticket = self.ticket.wrapping_add(1);
                topo.pick_replica(self.ticket).or_else(|| topo.primary())
            }
        };
        let Some(entry) = chosen else {
            return Err(MyError::new(
                2003,
                "HY000",
                "No primary backend is available",
            ));
        };
        // The health loop saw read_only=1 (failover in progress): refuse
        // rather than send; the next probe clears the flag.
        if target != Target::Replica && entry.read_only {
            return Err(MyError::primary_read_only(entry.addr()));
        }
        if self.pins != 0 && self.held.is_some() {
            return Ok(());
        }
        let backend = entry.runtime.clone();
        let fallback = topo.primary().map(|p| p.runtime.clone());
        drop(topo);
        match self.use_backend(backend.clone()).await {
            Ok(()) => Ok(()),
            Err(e) => match fallback {
                // A replica that cannot be reached: the read goes to the primary.
                Some(p) if target == Target::Replica && p.id != backend.id => {
                    tracing::debug!(replica = %backend.addr, error = %e, "read falls back to the primary");
                    self.acquire(p).await
                }
                _ => Err(e),
            },
        }
    }

    /// Makes `held` a connection to `backend` (the one held, if it is).
    async fn use_backend(&mut self, backend: Arc<BackendRuntime>) -> Result<(), MyError> {
        if self
            .held
            .as_ref()
            .is_some_and(|h| h.backend.id == backend.id)
        {
            return Ok(());
        }
        self.release_held();
        self.acquire(backend).await
    }

    async fn acquire(&mut self, backend: Arc<BackendRuntime>) -> Result<(), MyError> {
        let pool = backend.pool(&self.pool_key);
        let conn = pool
            .acquire(&self.password, self.state.schema.as_deref())
            .await?;
        self.hold(Held {
            backend,
            pool,
            conn,
        });
        Ok(())
    }

    /// Makes `held` the session's connection, visible to KILL and the admin.
    fn hold(&mut self, held: Held) {
        self.info.backend.store(held.backend.id, Ordering::Relaxed);
        self.info
            .backend_thread
            .store(held.conn.thread_id, Ordering::Relaxed);
        self.held = Some(held);
    }

    /// Brings the held connection to the session's schema and variables.
    async fn sync_state(&mut self) -> Result<(), MyError> {
        if self.state.schema.is_none()
            && self.held.as_ref().is_some_and(|h| h.conn.schema.is_some())
        {
            // A server cannot unselect a database: a session without one
            // gets a fresh connection in place of this one.
            let Some(h) = self.held.take() else {
                return Ok(());
            };
            let Held {
                backend,
                pool,
                conn,
            } = h;
            match pool.reconnect(conn, &self.password).await {
                Ok(conn) => self.hold(Held {
                    backend,
                    pool,
                    conn,
                }),
                Err(e) => {
                    self.info.backend.store(0, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        let Some(h) = self.held.as_mut() else {
            return Ok(());
        };
        let addr = h.backend.addr.clone();
        let mut lost = false;
        let mut result = Ok(());
        if self.state.schema.is_some() && h.conn.schema != self.state.schema {
            let schema = self.state.schema.clone().unwrap_or_default();
            match h.conn.run(cmd::INIT_DB, schema.as_bytes()).await {
                Ok(Ok(())) => h.conn.schema = Some(schema),
                Ok(Err(e)) => result = Err(e),
                Err(_) => lost = true,
            }
        }
        if result.is_ok() && !lost && h.conn.vars_hash != self.state.vars_hash {
            for sql in self.state.replay_sql(&h.conn.vars) {
                match h.conn.run(cmd::QUERY, sql.as_bytes()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => result = Err(e),
                    Err(_) => lost = true,
                }
                if result.is_err() || lost {
                    break;
                }
            }
            if result.is_ok() && !lost {
                h.conn.vars = self.state.vars.clone();
                h.conn.vars_hash = self.state.vars_hash;
            }
        }
        if result.is_ok() && !lost && self.sync_insert_id {
            self.sync_insert_id = false;
            let want = self.last_insert_id;
            if want != 0 && h.conn.last_insert_id != want {
                let sql = format!("DO LAST_INSERT_ID({want})");
                match h.conn.run(cmd::QUERY, sql.as_bytes()).await {
                    Ok(Ok(())) => h.conn.last_insert_id = want,
                    Ok(Err(e)) => result = Err(e),
                    Err(_) => lost = true,
                }
            }
        }
        if lost {
            self.discard_held();
            return Err(MyError::backend_lost(&addr));
        }
        result
    }

    /// Gives the held connection back to its pool if its state is shareable.
    fn release_held(&mut self) {
        if let Some(h) = self.held.take() {
            self.info.backend.store(0, Ordering::Relaxed);
            if self.pins != 0
                || self.last_status & status::IN_TRANS != 0
                || has_unresettable_state(&h.conn.vars)
            {
                h.pool.discard(h.conn);
            } else {
                h.pool.release(h.conn);
            }
        }
    }

    fn discard_held(&mut self) {
        if let Some(h) = self.held.take() {
            self.info.backend.store(0, Ordering::Relaxed);
            h.pool.discard(h.conn);
        }
        // Whatever was pinned lived on that connection.
        self.pins = 0;
        self.temp_tables = 0;
        self.last_status = status::AUTOCOMMIT;
        self.info.pins.store(0, Ordering::Relaxed);
    }

    async fn ok(&mut self, seq: u8) -> Result<(), End> {
        self.out.clear();
        ok_packet(&mut self.out, seq, 0, self.last_status, false);
        self.client.write_all(&self.out).await?;
        Ok(())
    }

    async fn send_err(&mut self, seq: u8, e: &MyError) -> Result<(), End> {
        self.out.clear();
        err_packet(&mut self.out, seq, e);
        self.client.write_all(&self.out).await?;
        Ok(())
    }
}
