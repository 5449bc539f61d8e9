//! Entry points for the `cargo fuzz` targets in `fuzz/`: each takes the
//! fuzzer's bytes, drives the real parsing code with them and checks the
//! invariants that must hold for any input. A panic here is a bug in Gantry
//! (network and configuration input must never crash the proxy). Not part of
//! Gantry's API.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;

use crate::admin::parse::{parse as parse_admin, Command};
use crate::config::{BackendAddr, UserPassword};
use crate::frontend::client_stream::FrameCodec;
use crate::frontend::session::parse_change_user;
use crate::frontend::state::SessionState;
use crate::frontend::stmt::{rewrite_execute, set_statement_id, statement_id, ClientStatement};
use crate::gtid::{GtidSet, MariaPos};
use crate::protocol::auth::{
    backend_capabilities, backend_login, native_password_matches, parse_backend_greeting,
    parse_login, server_greeting, ServerIdentity, CLIENT_PROTOCOL_41,
};
use crate::protocol::packet::{
    announced_payload, complete_len, header, join_payload, lenenc_int, put_packet, Incoming,
    PacketReader, ReadInto, MAX_PAYLOAD,
};
use crate::protocol::reply::parse_err;
use crate::protocol::{Expect, ResponseScanner, ScanState};
use crate::router::parse_kill;
use crate::router::{classify, parse_set, use_schema, Hint, Route, StatementKind};

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every entry point under its target's name (`fuzz/fuzz_targets/<name>.rs`,
/// corpus in `fuzz/corpus/<name>/`).
pub const TARGETS: [(&str, Target); 8] = [
    ("packet", packet),
    ("response", response),
    ("handshake", handshake),
    ("stmt_execute", stmt_execute),
    ("compressed", compressed),
    ("classifier", classifier),
    ("admin", admin),
    ("config", config),
];

/// Runs a future that never waits (the sources below are in memory).
fn run_now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an in-memory read waited"),
    }
}

/// A byte source that hands out `data` in pieces of at most `piece` bytes.
struct Pieces<'a> {
    data: &'a [u8],
    piece: usize,
}

impl ReadInto for Pieces<'_> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let n = self.piece.min(self.data.len());
        buf.extend_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Packet framing: `complete_len`, `join_payload`, `put_packet`,
/// `lenenc_int` and the `PacketReader` fed in pieces.
pub fn packet(data: &[u8]) {
    let Some((&mode, wire)) = data.split_first() else {
        return;
    };
    if let Some(n) = complete_len(wire) {
        assert!(n >= 4 && n <= wire.len());
        let (payload, _) = join_payload(&wire[..n]);
        assert!(payload.len() <= n - 4);
    }
    let _ = lenenc_int(wire);

    // Framing any payload and joining it again gives it back.
    let mut out = BytesMut::new();
    let next = put_packet(&mut out, mode, wire);
    assert_eq!(complete_len(&out), Some(out.len()));
    let (back, last) = join_payload(&out);
    assert_eq!(back, wire);
    assert_eq!(last.wrapping_add(1), next);

    // The reader returns exactly the packets `complete_len` sees.
    let mut src = Pieces {
        data: wire,
        piece: (mode as usize >> 2) + 1,
    };
    let mut reader = PacketReader::new();
    // A client command limit small enough for fuzzed inputs to reach.
    let max_packet = 64 + usize::from(mode) * 8;
    loop {
        match mode & 3 {
            0 => match run_now(reader.fill_packet(&mut src)) {
                Ok(Some(n)) => {
                    assert_eq!(complete_len(&reader.buf), Some(n));
                    let _ = reader.buf.split_to(n);
                }
                Ok(None) | Err(_) => break,
            },
            1 => match run_now(reader.read_payload(&mut src)) {
                Ok((payload, _)) => assert!(payload.len() <= wire.len()),
                Err(_) => break,
            },
            _ => match run_now(reader.fill_command(&mut src, max_packet)) {
                Ok(Some(Incoming::Whole(n))) => {
                    assert_eq!(complete_len(&reader.buf), Some(n));
                    assert!(announced_payload(&reader.buf) < max_packet);
                    let _ = reader.buf.split_to(n);
                }
                // What is reported first ends the command loop (or, for a
                // long command, is passed on from there).
                Ok(Some(Incoming::TooLarge)) => {
                    assert!(announced_payload(&reader.buf) >= max_packet);
                    break;
                }
                Ok(Some(Incoming::LongQuery | Incoming::LongExecute)) => {
                    assert_eq!(header(&reader.buf).0, MAX_PAYLOAD);
                    assert!(matches!(reader.buf[4], 0x03 | 0x17));
                    break;
                }
                Ok(None) | Err(_) => break,
            },
        }
    }
}

/// What a scanner made of a whole server response.
#[derive(Debug, PartialEq, Eq)]
enum Scanned {
    Done {
        forwarded: usize,
        last_seq: u8,
        status: Option<u16>,
        error: Option<u16>,
        affected_rows: u64,
        last_insert_id: u64,
        prepared: Option<(u32, u16, u16)>,
    },
    Incomplete(usize),
    Malformed(&'static str),
}

fn scan_response(expect: Expect, deprecate_eof: bool, wire: &[u8], piece: usize) -> Scanned {
    let mut s = ResponseScanner::new(expect, deprecate_eof);
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut forwarded = 0;
    loop {
        let (n, state) = match s.scan(&buf) {
            Ok(r) => r,
            Err(e) => return Scanned::Malformed(e.0),
        };
        assert!(n <= buf.len(), "scanner forwarded more than it was given");
        forwarded += n;
        buf.drain(..n);
        let _ = s.at_packet_boundary();
        match state {
            ScanState::Done => {
                return Scanned::Done {
                    forwarded,
                    last_seq: s.last_seq,
                    status: s.status,
                    error: s.error.then_some(s.error_code),
                    affected_rows: s.affected_rows,
                    last_insert_id: s.last_insert_id,
                    prepared: s.prepared.map(|p| (p.statement_id, p.columns, p.params)),
                }
            }
            // The client's (empty) file follows; the server then answers.
            ScanState::LocalInfile => s.resume_after_local_infile(s.last_seq.wrapping_add(2)),
            ScanState::More if fed == wire.len() => return Scanned::Incomplete(forwarded),
            ScanState::More => {
                let end = (fed + piece).min(wire.len());
                buf.extend_from_slice(&wire[fed..end]);
                fed = end;
            }
        }
    }
}

/// The response scanner, fed the same bytes at once and in small pieces
/// (it must come to the same end either way), plus ERR packets and the
/// GTID positions Gantry reads from server answers.
pub fn response(data: &[u8]) {
    let Some((&mode, wire)) = data.split_first() else {
        return;
    };
    const EXPECT: [Expect; 6] = [
        Expect::Query,
        Expect::Execute,
        Expect::Prepare,
        Expect::FieldList,
        Expect::Fetch,
        Expect::Single,
    ];
    let expect = EXPECT[(mode & 0x07) as usize % EXPECT.len()];
    let deprecate_eof = mode & 0x80 != 0;
    let piece = ((mode >> 3) & 0x0f) as usize + 1;
    let whole = scan_response(expect, deprecate_eof, wire, usize::MAX);
    let pieces = scan_response(expect, deprecate_eof, wire, piece);
    match (&whole, &pieces) {
        // Where a malformed packet is noticed does not depend on the pieces.
        (Scanned::Malformed(a), Scanned::Malformed(b)) => assert_eq!(a, b),
        _ => assert_eq!(whole, pieces, "{expect:?} deprecate_eof={deprecate_eof}"),
    }

    let _ = parse_err(wire);
    let text = String::from_utf8_lossy(wire);
    let maria = MariaPos::parse(&text);
    assert!(maria.covers(&maria));
    assert_eq!(maria.missing(&maria), 0);
    let set = GtidSet::parse(&text);
    assert!(set.is_subset(&set));
    assert_eq!(set.count_not_in(&set), 0);
    let _ = set.count_not_in(&GtidSet::default());
}

/// The connection phase: the client's login request, a backend's greeting
/// (and the login Gantry builds from it), COM_CHANGE_USER and KILL.
pub fn handshake(data: &[u8]) {
    let login = parse_login(data);
    if let Ok(login) = &login {
        let _ = native_password_matches(&[b'x'; 20], "pw", &login.auth_response);
        let _ = format!("{login:?}");
    }
    if let Ok(greeting) = parse_backend_greeting(data) {
        if let Ok(login) = &login {
            let _ = backend_capabilities(
                u64::from(login.capabilities),
                &greeting,
                login.database.is_some(),
            );
        }
        let id = ServerIdentity::from_backend(&greeting, None);
        let mine = server_greeting(
            &id,
            greeting.connection_id,
            &[b'n'; 20],
            false,
            crate::protocol::auth::NATIVE_PASSWORD,
        );
        let again = parse_backend_greeting(&mine).expect("Gantry's own greeting parses");
        assert_eq!(again.connection_id, greeting.connection_id);
        let caps = backend_capabilities(0, &greeting, true);
        if let Ok(out) = backend_login(
            &greeting,
            caps,
            45,
            "app",
            &crate::protocol::credential::Credential::Clear("pw".into()),
            Some("db"),
        ) {
            if caps & u64::from(CLIENT_PROTOCOL_41) != 0 {
                let login = parse_login(&out).expect("Gantry's own login parses");
                assert_eq!(login.user, "app");
                assert_eq!(login.collation, 45);
            }
        }
    }
    if let Some(cu) = parse_change_user(data) {
        assert!(cu.auth_response.len() < data.len());
        let _ = (cu.user, cu.database, cu.collation, cu.plugin);
    }
    let _ = parse_kill(data);
}

/// COM_STMT_EXECUTE rewriting. The first bytes choose the statement's
/// parameter count and whether types were bound before; the rest is the
/// client's payload.
pub fn stmt_execute(data: &[u8]) {
    let [params, flags, payload @ ..] = data else {
        return;
    };
    let n = *params as usize;
    let mut stmt = ClientStatement {
        key: 0,
        sql: Arc::from(&b"SELECT ?"[..]),
        class: classify(b"SELECT ?"),
        params: n as u16,
        param_types: (flags & 1 != 0).then(|| vec![0xfd; 2 * n]),
        long_data: Default::default(),
        cursor: None,
    };
    let backend_id = u32::from(*flags) << 8 | 0x5a;
    let mut out = BytesMut::new();
    if rewrite_execute(payload, backend_id, &mut stmt, &mut out) {
        assert_eq!(complete_len(&out), Some(out.len()));
        let (body, _) = join_payload(&out);
        assert_eq!(body[0], payload[0]);
        assert_eq!(statement_id(&body), Some(backend_id));
        assert_eq!(&body[5..10], &payload[5..10]);
        assert!(body.len() >= payload.len());
        if let Some(types) = &stmt.param_types {
            assert_eq!(types.len(), 2 * n);
        }
    } else {
        assert!(out.is_empty());
    }
    let mut copy = payload.to_vec();
    set_statement_id(&mut copy, backend_id);
    let _ = statement_id(payload);
}

/// The compression protocol: the client's frames received in pieces, and
/// any data framed by Gantry decoding back to itself.
pub fn compressed(data: &[u8]) {
    let Some((&mode, wire)) = data.split_first() else {
        return;
    };
    let mut rx = FrameCodec::default();
    let mut plain = BytesMut::new();
    'feed: for piece in wire.chunks(mode as usize % 32 + 1) {
        rx.receive(piece);
        loop {
            match rx.take_frame(&mut plain) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let _ = complete_len(&plain);

    let mut tx = FrameCodec::default();
    let framed = tx.frame(wire).expect("framing never fails").to_vec();
    let mut rx = FrameCodec::default();
    rx.receive(&framed);
    let mut back = BytesMut::new();
    while rx
        .take_frame(&mut back)
        .expect("Gantry's own frames decode")
        .is_some()
    {}
    assert_eq!(&back[..], wire);
}

/// The statement classifier and the SET / USE parsers, with the session
/// state a SET is recorded into and replayed from.
pub fn classifier(data: &[u8]) {
    let c = classify(data);
    assert_eq!(classify(data), c, "the shape cache changed the verdict");
    let must_be_primary = c.hint == Some(Hint::Primary)
        || c.asks_previous
        || c.multi_statement
        || c.uses_user_lock
        || c.calc_found_rows
        || c.creates_temp_table
        || c.drops_temp_table
        || matches!(
            c.kind,
            StatementKind::Write
                | StatementKind::Ddl
                | StatementKind::Begin
                | StatementKind::Commit
                | StatementKind::Rollback
                | StatementKind::Set
                | StatementKind::Use
                | StatementKind::Lock
                | StatementKind::Unlock
                | StatementKind::LoadData
                | StatementKind::Prepare
                | StatementKind::Deallocate
                | StatementKind::Execute
        );
    if must_be_primary {
        assert_eq!(c.route, Route::Primary, "{c:?}");
    }
    if let Some(items) = parse_set(data) {
        assert!(!items.is_empty());
        for a in &items {
            let _ = a.to_sql();
        }
        let mut state = SessionState::default();
        let _ = state.record_user_vars(&items);
        for a in &items {
            state.set_system(&a.name, &a.value);
        }
        let _ = state.replay_sql(&[]);
        let applied = state.vars.clone();
        assert!(state.extends(&applied));
        assert!(
            state.replay_sql(&applied).is_none(),
            "a connection already in this state needs no replay"
        );
    }
    let _ = use_schema(data);
}

/// The admin port's command parser, and the address/account parsers its
/// arguments go through.
pub fn admin(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match parse_admin(&text) {
        Ok(Command::AddMaster(a) | Command::AddSlave(a)) => {
            assert_eq!(BackendAddr::parse(&a.to_config_string()), Ok(a));
        }
        Ok(Command::AddPwd(up)) => {
            assert!(UserPassword::parse(&up.to_config_string()) == Ok(up));
        }
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// The configuration file: TOML text to a validated `Config`.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::from_toml_text(text) {
        Ok(cfg) => {
            let _ = cfg.entries();
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.exit_code();
        }
    }
}

#[cfg(test)]
mod tests {
    //! The committed corpora (seeds and inputs that once crashed) run through
    //! every entry point with `cargo test`, without cargo-fuzz: the cheap
    //! smoke check `scripts/fuzz-smoke.sh` runs in CI.
    use super::*;
    use std::path::Path;

    #[test]
    fn entry_points_accept_empty_and_foreign_input() {
        for (_, f) in TARGETS {
            f(b"");
            f(b"\x01\x05\x00\x00\x00\x03SELECT 1");
            f(b"SET @a = 1, NAMES utf8mb4");
        }
    }

    #[test]
    fn committed_corpora_replay() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, f) in TARGETS {
            let dir = root.join(name);
            let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
            let mut n = 0;
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let run = std::panic::catch_unwind(|| f(&data));
                assert!(run.is_ok(), "fuzz target {name} panicked on {path:?}");
                n += 1;
            }
            assert!(n > 0, "no corpus for {name}");
        }
    }
}
