use super::*;
use crate::protocol::packet::put_packet;
use bytes::BytesMut;

fn packets(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut seq = 1;
    for p in payloads {
        seq = put_packet(&mut out, seq, p);
    }
    out.to_vec()
}

/// Feeds `bytes` in chunks of `step`; returns (bytes accepted, final state).
fn feed(sc: &mut ResponseScanner, bytes: &[u8], step: usize) -> (usize, ScanState) {
    let mut buffered: Vec<u8> = Vec::new();
    let mut forwarded = 0;
    let mut state = ScanState::More;
    for chunk in bytes.chunks(step) {
        buffered.extend_from_slice(chunk);
        let (n, st) = sc.scan(&buffered).unwrap();
        forwarded += n;
        buffered.drain(..n);
        state = st;
        if st != ScanState::More {
            break;
        }
    }
    (forwarded, state)
}

const OK: &[u8] = &[0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00];
const EOF: &[u8] = &[0xfe, 0x00, 0x00, 0x02, 0x00];
const COLDEF: &[u8] =
    b"\x03def\x00\x00\x00\x01c\x00\x0c\x21\x00\x00\x00\x00\xfd\x00\x00\x00\x00\x00";

#[test]
fn ok_response_ends_after_one_packet() {
    for step in [1, 3, 100] {
        let bytes = packets(&[OK]);
        let mut sc = ResponseScanner::new(Expect::Query, false);
        assert_eq!(feed(&mut sc, &bytes, step), (bytes.len(), ScanState::Done));
        assert_eq!(sc.status, Some(0x0002));
        assert_eq!(sc.affected_rows, 1);
    }
}

#[test]
fn classic_result_set_with_eof() {
    let bytes = packets(&[&[0x01], COLDEF, EOF, b"\x01a", b"\xfb", EOF]);
    for step in [1, 2, 7, 1000] {
        let mut sc = ResponseScanner::new(Expect::Query, false);
        assert_eq!(feed(&mut sc, &bytes, step), (bytes.len(), ScanState::Done));
        assert!(!sc.error);
    }
}

#[test]
fn deprecate_eof_result_set_ends_with_ok_fe() {
    let term: &[u8] = &[0xfe, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];
    let bytes = packets(&[&[0x02], COLDEF, COLDEF, b"\x01a\x01b", term]);
    let mut sc = ResponseScanner::new(Expect::Query, true);
    assert_eq!(feed(&mut sc, &bytes, 1), (bytes.len(), ScanState::Done));
}

#[test]
fn error_in_place_of_rows_ends_response() {
    let err: &[u8] = b"\xff\x7a\x04#HY000boom";
    let bytes = packets(&[&[0x01], COLDEF, EOF, b"\x01a", err]);
    let mut sc = ResponseScanner::new(Expect::Query, false);
    assert_eq!(feed(&mut sc, &bytes, 5), (bytes.len(), ScanState::Done));
    assert!(sc.error);
    assert_eq!(sc.error_code, 0x047a);
}

#[test]
fn more_results_continue_until_last_status() {
    let ok_more: &[u8] = &[0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00];
    let eof_more: &[u8] = &[0xfe, 0x00, 0x00, 0x0a, 0x00];
    let bytes = packets(&[&[0x01], COLDEF, EOF, b"\x011", eof_more, ok_more, OK]);
    let mut sc = ResponseScanner::new(Expect::Query, false);
    assert_eq!(feed(&mut sc, &bytes, 3), (bytes.len(), ScanState::Done));
}

#[test]
fn row_starting_with_fe_is_not_a_terminator() {
    // A 9-byte text row whose first value has a 0xFE-encoded length would be
    // >16 MiB; but a short classic-EOF rule row of length >= 9 starting 0xFE
    // must pass as a row.
    let row: &[u8] = &[0xfe, 1, 0, 0, 0, 0, 0, 0, 0, b'x'];
    let bytes = packets(&[&[0x01], COLDEF, EOF, row, EOF]);
    let mut sc = ResponseScanner::new(Expect::Query, false);
    assert_eq!(feed(&mut sc, &bytes, 4), (bytes.len(), ScanState::Done));
}

#[test]
fn huge_row_streams_without_buffering_whole() {
    let big = vec![b'z'; MAX_PAYLOAD + 100];
    let mut row = vec![0xfe];
    row.extend_from_slice(&((big.len()) as u64).to_le_bytes());
    row.extend_from_slice(&big);
    let bytes = packets(&[&[0x01], COLDEF, EOF, &row, EOF]);
    let mut sc = ResponseScanner::new(Expect::Query, false);
    // Feed in 64 KiB chunks: the scanner forwards almost everything at once.
    let (n, st) = feed(&mut sc, &bytes, 65536);
    assert_eq!((n, st), (bytes.len(), ScanState::Done));
}

#[test]
fn local_infile_request_then_ok() {
    let bytes = packets(&[b"\xfb/tmp/x.csv"]);
    let mut sc = ResponseScanner::new(Expect::Query, false);
    assert_eq!(
        feed(&mut sc, &bytes, 100),
        (bytes.len(), ScanState::LocalInfile)
    );
    sc.resume_after_local_infile(3);
    let mut ok = BytesMut::new();
    put_packet(&mut ok, 4, OK);
    assert_eq!(sc.scan(&ok).unwrap(), (ok.len(), ScanState::Done));
}

#[test]
fn prepare_response_counts_params_and_columns() {
    let stmt_ok: &[u8] = &[0x00, 7, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0];
    let bytes = packets(&[stmt_ok, COLDEF, COLDEF, EOF, COLDEF, EOF]);
    let mut sc = ResponseScanner::new(Expect::Prepare, false);
    assert_eq!(feed(&mut sc, &bytes, 2), (bytes.len(), ScanState::Done));
    let p = sc.prepared.unwrap();
    assert_eq!((p.statement_id, p.columns, p.params), (7, 1, 2));

    let bytes = packets(&[stmt_ok, COLDEF, COLDEF, COLDEF]);
    let mut sc = ResponseScanner::new(Expect::Prepare, true);
    assert_eq!(feed(&mut sc, &bytes, 2), (bytes.len(), ScanState::Done));
}

#[test]
fn execute_with_cursor_stops_after_column_eof() {
    let cursor_eof: &[u8] = &[0xfe, 0x00, 0x00, 0x42, 0x00];
    let bytes = packets(&[&[0x01], COLDEF, cursor_eof]);
    let mut sc = ResponseScanner::new(Expect::Execute, false);
    assert_eq!(feed(&mut sc, &bytes, 1), (bytes.len(), ScanState::Done));
    // binary rows start with 0x00 and are rows, not OK packets
    let bytes = packets(&[b"\x00\x00\x01a", b"\x00\x00\x01b", EOF]);
    let mut sc = ResponseScanner::new(Expect::Fetch, false);
    assert_eq!(feed(&mut sc, &bytes, 3), (bytes.len(), ScanState::Done));
}

#[test]
fn field_list_and_single() {
    let bytes = packets(&[COLDEF, COLDEF, EOF]);
    let mut sc = ResponseScanner::new(Expect::FieldList, false);
    assert_eq!(feed(&mut sc, &bytes, 1), (bytes.len(), ScanState::Done));
    let bytes = packets(&[b"Uptime: 5  Threads: 1"]);
    let mut sc = ResponseScanner::new(Expect::Single, false);
    assert_eq!(feed(&mut sc, &bytes, 1), (bytes.len(), ScanState::Done));
}

#[test]
fn garbage_does_not_panic() {
    for seed in 0u8..=255 {
        let bytes: Vec<u8> = (0..64u8)
            .map(|i| i.wrapping_mul(seed).wrapping_add(seed))
            .collect();
        for expect in [
            Expect::Query,
            Expect::Execute,
            Expect::Prepare,
            Expect::FieldList,
            Expect::Fetch,
            Expect::Single,
        ] {
            let mut sc = ResponseScanner::new(expect, seed % 2 == 0);
            let _ = sc.scan(&bytes);
        }
    }
}
