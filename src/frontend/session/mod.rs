//! One client session: the command loop, routing each command to a backend
//! connection, replaying session state there, and following the server's
//! status flags to know when the session must stay on one connection.

use crate::frontend::transport::Transport;
use crate::protocol::credential::Credential;
use bytes::BytesMut;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

mod binding;
mod causal;
mod control;
mod effects;
mod long;
mod prepared;
mod replay;

#[doc(hidden)]
pub(crate) use control::parse_change_user;

use super::client_stream::ClientStream;
use super::registry::{pin, SessionInfo};
use super::state::SessionState;
use super::stmt::Statements;
use crate::backend::relay::{ForwardError, Watch};
use crate::backend::Purpose;
use crate::backend::{BackendRuntime, PoolKey};
use crate::config::Consistency;
use crate::context::Context;
use crate::gtid::Gtid;
use crate::protocol::packet::{header, Incoming, PacketReader, PacketSpan};
use crate::protocol::reply::{err_packet, ok_packet, MyError};
use crate::protocol::{cmd, status, Expect, MAX_PAYLOAD};
use crate::router::{self, Classification, Route, StatementKind};
use binding::Binding;

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
    password: Arc<Credential>,
    pool_key: PoolKey,
    state: SessionState,
    /// The backend connection held, and why (pins).
    binding: Binding,
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
    /// A command streamed to the backend (see `long`) whose rest is still
    /// arriving: an answer given before it was passed on waits for its end.
    streaming: Option<PacketSpan>,
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
    /// What the next connection is taken for: a login may use the pools'
    /// reserve.
    purpose: Purpose,
    /// Marks the backend connections that carry this session's state; a
    /// connection with another owner is reset before it serves this one
    /// (see `acquire`).
    token: u64,
    /// When the session (re)started: a connection whose defaults are older
    /// may not have today's global values.
    started: std::time::Instant,
    /// The client asked for session tracking itself (else Gantry strips
    /// the tracker data it asked the servers for).
    client_tracks: bool,
    /// Reused buffer for the tracker data of a response.
    track: Vec<u8>,
    /// The client changed session_track_* itself: it gets the tracking data
    /// its settings produce, unfiltered.
    own_tracking: bool,
    /// `wait_timeout` the session set: an idle client is closed after it,
    /// as the server would.
    wait_timeout: Option<std::time::Duration>,
}

/// A command packet Gantry writes itself (`command` followed by `body`):
/// a client's statement it rewrote, or one it prepares on its own.
fn command_packet(command: u8, body: &[u8]) -> BytesMut {
    let mut payload = Vec::with_capacity(body.len() + 1);
    payload.push(command);
    payload.extend_from_slice(body);
    let mut packet = BytesMut::with_capacity(payload.len() + 4);
    crate::protocol::packet::put_packet(&mut packet, 0, &payload);
    packet
}

/// A token no session or connection has had yet (0 means none).
fn new_token() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What woke an idle session up.
enum Wake {
    Command(Option<Incoming>),
    Killed,
    Release,
    BackendReadable,
    WaitTimeout,
}

/// At session end: connections with session-only state are closed, which
/// also rolls back an open transaction, as a direct disconnect would.
impl Drop for Session {
    fn drop(&mut self) {
        if !self.quit {
            // The client vanished without COM_QUIT: a connection that carried
            // its session state is dropped the same way, so the server counts
            // the aborted client as it would directly.
            let pinned = self.carries_state();
            if let (Some(h), true) = (self.binding.held_mut(), pinned) {
                h.conn.abort_on_drop = true;
            }
        }
        self.release_held();
    }
}

pub struct SessionSetup {
    pub ctx: Arc<Context>,
    pub info: Arc<SessionInfo>,
    pub client: Transport,
    pub reader: PacketReader,
    pub password: Arc<Credential>,
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
        let binding = Binding::new(s.info.clone());
        Self {
            ctx: s.ctx,
            info: s.info,
            client: ClientStream::new(s.client),
            compress_after_login: s.compress,
            consistency,
            causal: None,
            verified_on: None,
            quit: false,
            purpose: Purpose::Session,
            token: new_token(),
            started: std::time::Instant::now(),
            client_tracks: s.pool_key.capabilities
                & u64::from(crate::protocol::auth::CLIENT_SESSION_TRACK)
                != 0,
            track: Vec::new(),
            own_tracking: false,
            wait_timeout: None,
            reader: s.reader,
            out: BytesMut::with_capacity(256),
            password: s.password,
            pool_key: s.pool_key,
            state: SessionState {
                schema: s.schema,
                ..Default::default()
            },
            binding,
            temp_tables: 0,
            last_status: status::AUTOCOMMIT,
            ticket,
            last_insert_id: 0,
            sync_insert_id: false,
            stmts: Statements::default(),
            scratch: BytesMut::new(),
            streaming: None,
            nonce: s.nonce,
            user: s.user,
        }
    }

    /// Validates the schema given at login on the primary (as a direct
    /// connection would) and sends the final OK or the server's error.
    pub async fn finish_login(&mut self, seq: u8) -> Result<(), End> {
        if self.state.schema.is_some() {
            // On any backend that is up: reads may go on while the primary
            // is away. Logins may use the pools' reserve.
            self.purpose = Purpose::Reserved;
            let used = match self.use_target(Target::Primary).await {
                Ok(()) => Ok(()),
                Err(_) => self.use_target(Target::Replica).await,
            };
            self.purpose = Purpose::Session;
            if let Err(e) = used {
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
            self.info.busy.store(false, Ordering::Relaxed);
            let next = self.next_command().await?;
            self.info.busy.store(true, Ordering::Relaxed);
            let n = match next {
                Some(Incoming::Whole(n)) => n,
                Some(Incoming::LongQuery) => {
                    self.long_query().await?;
                    continue;
                }
                Some(Incoming::LongExecute) => {
                    self.long_execute().await?;
                    continue;
                }
                Some(Incoming::TooLarge) => return self.refuse_too_large().await,
                None => return Ok(()),
            };
            // A large command's buffer is given back after it.
            let large = n > 256 * 1024;
            self.dispatch(n).await?;
            if large {
                self.reader.shrink();
                if self.scratch.capacity() > 256 * 1024 {
                    self.scratch = BytesMut::new();
                }
            }
        }
    }

    /// Runs the command of `n` bytes at the head of the client buffer.
    async fn dispatch(&mut self, n: usize) -> Result<(), End> {
        {
            let request = self.reader.buf.split_to(n);
            let (len, _) = header(&request);
            if len == 0 {
                return self.send_err(1, &MyError::malformed("empty command")).await;
            }
            self.info.queries.fetch_add(1, Ordering::Relaxed);
            match request[4] {
                cmd::QUIT => {
                    self.quit = true;
                    return Err(End);
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
                cmd::RESET_CONNECTION => self.reset_connection().await?,
                cmd::CHANGE_USER => self.change_user(&request).await?,
                cmd::PROCESS_KILL => self.process_kill(&request).await?,
                cmd::SET_OPTION => {
                    self.simple(&request, Target::Current, Expect::Single)
                        .await?;
                    self.binding.set_pin(pin::SESSION_OPTION, true);
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
        Ok(())
    }

    /// Waits for the next command. A session that keeps a backend
    /// connection it does not need gives it back after `idle-release`; a
    /// connection that carries the session's state and is closed by its
    /// server (wait_timeout, restart) closes the client too, as directly.
    async fn next_command(&mut self) -> Result<Option<Incoming>, End> {
        loop {
            if self.info.killed.load(Ordering::Relaxed) {
                if self.ctx.shutdown.is_started() {
                    // Idle at shutdown: the answer to the client's next command.
                    let _ = self.send_err(1, &MyError::server_shutdown()).await;
                }
                return Ok(None);
            }
            let releasable = self.binding.is_held() && !self.binding.pinned();
            let idle = self.ctx.settings.load().idle_release;
            let max_packet = self.ctx.topology.load().max_packet();
            let wake = {
                let held = self.binding.held();
                // Under pressure, also give the connection back at once when
                // another client starts waiting for one from that pool. (Only
                // then: listening means a shared waiter list per statement.)
                let pressed = releasable && held.is_some_and(|h| h.conn.pool().under_pressure());
                let wanted = async {
                    match held {
                        Some(h) if pressed => h.conn.pool().wanted.notified().await,
                        _ => std::future::pending().await,
                    }
                };
                let backend = async {
                    match held {
                        Some(h) => {
                            h.conn.readable().await;
                        }
                        None => std::future::pending().await,
                    }
                };
                let release = async {
                    if releasable {
                        tokio::time::sleep(idle).await
                    } else {
                        std::future::pending().await
                    }
                };
                let wait_timeout = async {
                    match self.wait_timeout {
                        Some(d) => tokio::time::sleep(d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    // In this order when several are ready: a held
                    // connection that its server closed is seen before the
                    // command that would otherwise be sent on it.
                    biased;
                    _ = self.info.kill_signal.notified() => Wake::Killed,
                    _ = backend => Wake::BackendReadable,
                    r = self.reader.fill_command(&mut self.client, max_packet) => Wake::Command(r?),
                    _ = release => Wake::Release,
                    _ = wanted => Wake::Release,
                    _ = wait_timeout => Wake::WaitTimeout,
                }
            };
            match wake {
                Wake::Command(r) => {
                    // The held connection's server may have died just now,
                    // before its EOF woke this loop: the command then goes
                    // to a live connection instead.
                    if !self.carries_state()
                        && self.binding.held_mut().is_some_and(|h| h.conn.is_stale())
                    {
                        self.discard_held();
                    }
                    return Ok(r);
                }
                // `kill` sets the flag before it signals: the loop's first
                // check ends the session.
                Wake::Killed => continue,
                Wake::WaitTimeout => return Ok(None),
                Wake::Release => self.release_held(),
                Wake::BackendReadable => {
                    if self.binding.held_mut().is_some_and(|h| h.conn.is_stale()) {
                        if self.carries_state() {
                            return Ok(None);
                        }
                        self.discard_held();
                    }
                }
            }
        }
    }

    /// The held connection has state that exists nowhere else.
    fn carries_state(&self) -> bool {
        self.binding.pinned() || self.last_status & status::IN_TRANS != 0
    }

    async fn query(&mut self, request: &[u8]) -> Result<(), End> {
        let (len, _) = header(request);
        let end = (4 + len).min(request.len());
        let sql = &request[5..end];
        // A statement longer than one packet was not inspected whole.
        if len == MAX_PAYLOAD {
            return self.run_query(request, sql, router::uninspected()).await;
        }
        let class = router::classify(sql);
        if class.kill {
            return self.query_with_kill(request, sql).await;
        }
        if class.connection_id {
            let text = router::with_connection_id(sql, self.info.id);
            let rewritten = command_packet(cmd::QUERY, &text);
            return self.run_query(&rewritten, &text, class).await;
        }
        self.run_query(request, sql, class).await
    }

    /// Routes and runs one COM_QUERY, then applies what it did.
    async fn run_query(
        &mut self,
        request: &[u8],
        sql: &[u8],
        class: Classification,
    ) -> Result<(), End> {
        if class.kind == StatementKind::Set {
            if let Some(value) = router::gantry_consistency_value(sql) {
                return self.set_consistency(&value).await;
            }
        }
        let mut target = self.target_for(&class);
        if target == Target::Replica {
            let mode = router::consistency_hint(sql)
                .and_then(|h| h.parse().ok())
                .unwrap_or(self.consistency);
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
        if let Some(reported) = ran {
            self.statement_effects(&class, sql, reported);
        }
        Ok(())
    }

    fn target_for(&mut self, c: &Classification) -> Target {
        if self.binding.pinned() {
            return Target::Current;
        }
        if c.asks_previous {
            // LAST_INSERT_ID() is the session's, not the last connection's:
            // run it on the primary, replaying the id Gantry saw in OK packets.
            if c.reads_insert_id {
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

    /// Runs a command and relays its response. `Ok(Some(r))`: the server
    /// answered (`r.ok`: without error); `Ok(None)`: Gantry answered with
    /// its own ERR.
    async fn run_on(
        &mut self,
        request: &[u8],
        target: Target,
        expect: Expect,
        is_read: bool,
    ) -> Result<Option<effects::Reported>, End> {
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
    ) -> Result<Option<effects::Reported>, End> {
        self.relay_after(request, expect, is_read, None).await
    }

    /// `relay`, for a request already sent (empty `request`) whose last
    /// packet had sequence id `sent_seq`.
    async fn relay_after(
        &mut self,
        request: &[u8],
        expect: Expect,
        is_read: bool,
        sent_seq: Option<u8>,
    ) -> Result<Option<effects::Reported>, End> {
        let held = self.binding.held_mut().expect("prepare_conn sets held");
        let backend = held.backend.clone();
        let mut sc = held.conn.scanner(expect);
        // Tracking data as the client would get it directly: none, or what
        // the servers' defaults show (unless it changed the settings).
        sc.strip = !(self.client_tracks && self.own_tracking);
        if self.client_tracks && !self.own_tracking {
            sc.view = Some(held.conn.track_view.clone());
        }
        sc.track = std::mem::take(&mut self.track);
        sc.track.clear();
        if let Some(seq) = sent_seq {
            sc.last_seq = seq;
        }
        let watch = Watch {
            backend_down: &self.info.backend_down,
            backend: &backend,
            read_timeout: self.ctx.settings.load().backend_read_timeout,
        };
        let result = held
            .conn
            .forward(&mut self.client, &mut self.reader, request, &mut sc, &watch)
            .await;
        self.count(&backend, is_read);
        let reported = self.note_response(&sc);
        self.track = std::mem::take(&mut sc.track);
        match result {
            Ok(()) => Ok(Some(reported)),
            Err(ForwardError::Client(_)) => {
                self.discard_held();
                Err(End)
            }
            Err(ForwardError::ClientGone) => {
                // As a server would: the abandoned statement is stopped, and
                // its connection (and transaction) closed.
                self.kill_abandoned(&backend);
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

    /// KILL CONNECTION, over a connection of its own, for the held
    /// connection of a client that went away: its statement stops and its
    /// transaction rolls back, even if the statement had not started yet
    /// when the KILL arrived (the connection is discarded anyway).
    fn kill_abandoned(&self, backend: &Arc<BackendRuntime>) {
        let Some(h) = self.binding.held() else {
            return;
        };
        let thread = h.conn.thread_id;
        let pool = h.conn.pool().clone();
        let password = self.password.clone();
        let addr = backend.addr.clone();
        tokio::spawn(async move {
            let mut conn = match pool.acquire_for(&password, None, Purpose::Reserved).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(backend = %addr, thread, error = %e, "could not stop the statement of a client that went away");
                    return;
                }
            };
            let sql = format!("KILL CONNECTION {thread}");
            match conn.run(cmd::QUERY, sql.as_bytes()).await {
                Ok(_) => {
                    tracing::info!(backend = %addr, thread, "stopped the statement of a client that went away")
                }
                Err(_) => conn.discard(),
            }
        });
    }

    /// The held backend connection failed: tell the client if its stream
    /// allows, and end the session if it lost a transaction or pinned state.
    async fn backend_failed(
        &mut self,
        backend: &BackendRuntime,
        error: &io::Error,
        clean: bool,
        next_seq: u8,
    ) -> Result<Option<effects::Reported>, End> {
        tracing::warn!(backend = %backend.addr, %error, "backend failed during a command");
        self.ctx
            .stats
            .backend_errors
            .fetch_add(1, Ordering::Relaxed);
        let was_pinned = self.binding.pinned();
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
        let target = if self.binding.pinned() {
            Target::Current
        } else {
            target
        };
        let is_read = target == Target::Replica;
        Ok(self
            .run_on(request, target, expect, is_read)
            .await?
            .is_some_and(|r| r.ok))
    }

    async fn init_db(&mut self, request: &[u8]) -> Result<(), End> {
        let schema = String::from_utf8_lossy(&request[5..]).into_owned();
        let ran = self
            .run_on(request, Target::Current, Expect::Single, false)
            .await?;
        if ran.is_some_and(|r| r.ok && !r.tracked) {
            self.set_schema(Some(schema));
        }
        Ok(())
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

    async fn ok(&mut self, seq: u8) -> Result<(), End> {
        self.out.clear();
        ok_packet(&mut self.out, seq, 0, self.last_status, false);
        self.client.write_all(&self.out).await?;
        Ok(())
    }

    async fn send_err(&mut self, mut seq: u8, e: &MyError) -> Result<(), End> {
        if let Some(mut span) = self.streaming.take() {
            // The client is still sending the command: it reads the answer
            // after it, numbered after its last packet.
            self.pass_on(&mut span, false).await?;
            seq = span.last_seq.wrapping_add(1);
        }
        self.out.clear();
        err_packet(&mut self.out, seq, e);
        self.client.write_all(&self.out).await?;
        Ok(())
    }
}
