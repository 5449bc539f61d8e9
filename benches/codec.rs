//! Packet codec cost: framing (`complete_len`, `put_packet`, `lenenc_int`)
//! and the response scanner that finds where a server response ends.
//!
//! Why: every forwarded command is framed once and every server response
//! byte goes through `ResponseScanner::scan`. The responses here are the
//! ones sysbench produces: a point select (`SELECT c FROM sbtest1 WHERE
//! id=?`, one row of 120 characters) and a range select (100 such rows),
//! each with and without CLIENT_DEPRECATE_EOF, scanned from one buffer and
//! in TCP-sized pieces as they arrive from a socket.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gantry::protocol::packet::{complete_len, lenenc_int, put_packet};
use gantry::protocol::{Expect, ResponseScanner, ScanState};
use std::hint::black_box;

const SERVER_STATUS_AUTOCOMMIT: u16 = 0x0002;
const TYPE_STRING: u8 = 0xfe;
const UTF8MB4_GENERAL_CI: u16 = 45;

fn put_lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    assert!(s.len() < 251, "only short strings needed here");
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

/// Column definition (Protocol::ColumnDefinition41) for `sbtest1.c`.
fn column_def() -> Vec<u8> {
    let mut p = Vec::new();
    for s in [&b"def"[..], b"sbtest", b"sbtest1", b"sbtest1", b"c", b"c"] {
        put_lenenc_str(&mut p, s);
    }
    p.push(0x0c);
    p.extend_from_slice(&UTF8MB4_GENERAL_CI.to_le_bytes());
    p.extend_from_slice(&480u32.to_le_bytes()); // CHAR(120) * 4 bytes
    p.push(TYPE_STRING);
    p.extend_from_slice(&1u16.to_le_bytes()); // NOT NULL
    p.push(0); // decimals
    p.extend_from_slice(&[0, 0]);
    p
}

/// A `c` value as sysbench generates it: 10 groups of 11 digits.
fn c_value(row: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(120);
    for g in 0..10 {
        if g > 0 {
            v.push(b'-');
        }
        let n = (row as u64 + 1) * 7_919 * (g as u64 + 3) % 100_000_000_000;
        v.extend_from_slice(format!("{n:011}").as_bytes());
    }
    v.truncate(119);
    v
}

/// The full wire bytes of a one-column text result set with `rows` rows.
fn result_set(rows: usize, deprecate_eof: bool) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut seq = 1; // the command was seq 0
    seq = put_packet(&mut out, seq, &[1]); // column count
    seq = put_packet(&mut out, seq, &column_def());
    if !deprecate_eof {
        let mut eof = vec![0xfe, 0, 0];
        eof.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        seq = put_packet(&mut out, seq, &eof);
    }
    for r in 0..rows {
        let mut row = Vec::with_capacity(121);
        put_lenenc_str(&mut row, &c_value(r));
        seq = put_packet(&mut out, seq, &row);
    }
    let terminator = if deprecate_eof {
        // OK packet with the 0xFE header: affected rows, insert id, status, warnings.
        let mut ok = vec![0xfe, 0, 0];
        ok.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        ok.extend_from_slice(&[0, 0]);
        ok
    } else {
        let mut eof = vec![0xfe, 0, 0];
        eof.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
        eof
    };
    put_packet(&mut out, seq, &terminator);
    out.to_vec()
}

/// An OK packet as answered to UPDATE/INSERT (one row affected).
fn ok_response() -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut ok = vec![0x00, 1, 0];
    ok.extend_from_slice(&SERVER_STATUS_AUTOCOMMIT.to_le_bytes());
    ok.extend_from_slice(&[0, 0]);
    put_packet(&mut out, 1, &ok);
    out.to_vec()
}

/// Scans `resp` fed in pieces of at most `chunk` bytes, the way the proxy
/// sees it: unforwarded bytes stay in the buffer until more arrive.
/// Returns the number of bytes forwarded (the whole response).
fn scan_chunked(resp: &[u8], chunk: usize, deprecate_eof: bool) -> usize {
    let mut sc = ResponseScanner::new(Expect::Query, deprecate_eof);
    let mut start = 0; // first byte not yet forwarded
    let mut end = 0; // bytes received so far
    loop {
        end = (end + chunk).min(resp.len());
        let (n, state) = sc.scan(&resp[start..end]).expect("valid response");
        start += n;
        if state == ScanState::Done {
            return start;
        }
        assert!(end < resp.len(), "response ended without Done");
    }
}

fn scan_whole(resp: &[u8], deprecate_eof: bool) -> usize {
    let mut sc = ResponseScanner::new(Expect::Query, deprecate_eof);
    let (n, state) = sc.scan(resp).expect("valid response");
    debug_assert_eq!(state, ScanState::Done);
    n
}

fn scanner(c: &mut Criterion) {
    let cases = [("point_select", 1usize), ("range_100_rows", 100usize)];
    let mut g = c.benchmark_group("scan");
    for (name, rows) in cases {
        for deprecate_eof in [true, false] {
            let resp = result_set(rows, deprecate_eof);
            assert_eq!(scan_whole(&resp, deprecate_eof), resp.len());
            assert_eq!(scan_chunked(&resp, 1448, deprecate_eof), resp.len());
            let eof = if deprecate_eof {
                "ok_eof"
            } else {
                "classic_eof"
            };
            g.throughput(Throughput::Bytes(resp.len() as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("{name}/{eof}"), "whole"),
                &resp,
                |b, resp| b.iter(|| scan_whole(black_box(resp), deprecate_eof)),
            );
            // 1448 bytes: one loopback/ethernet TCP segment's payload with
            // timestamps; 16 KiB: one read into Gantry's buffer.
            for chunk in [1448usize, 16 * 1024] {
                if chunk >= resp.len() {
                    continue;
                }
                g.bench_with_input(
                    BenchmarkId::new(format!("{name}/{eof}"), format!("chunks_{chunk}")),
                    &resp,
                    |b, resp| b.iter(|| scan_chunked(black_box(resp), chunk, deprecate_eof)),
                );
            }
        }
    }
    let ok = ok_response();
    g.throughput(Throughput::Bytes(ok.len() as u64));
    g.bench_function("ok_packet", |b| b.iter(|| scan_whole(black_box(&ok), true)));
    g.finish();
}

fn framing(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");

    // complete_len: split a 100-row response into its packets.
    let resp = result_set(100, true);
    let packets = {
        let mut n = 0;
        let mut rest = &resp[..];
        while let Some(len) = complete_len(rest) {
            rest = &rest[len..];
            n += 1;
        }
        assert!(rest.is_empty());
        n
    };
    g.throughput(Throughput::Elements(packets));
    g.bench_function("complete_len/range_100_rows", |b| {
        b.iter(|| {
            let mut rest = black_box(&resp[..]);
            let mut n = 0u64;
            while let Some(len) = complete_len(rest) {
                rest = &rest[len..];
                n += 1;
            }
            n
        })
    });

    // complete_len on a row packet cut in half (the "need more" answer).
    let mut row = BytesMut::new();
    put_packet(&mut row, 3, &c_value(0));
    let partial = &row[..row.len() / 2];
    assert_eq!(complete_len(partial), None);
    g.throughput(Throughput::Elements(1));
    g.bench_function("complete_len/incomplete", |b| {
        b.iter(|| complete_len(black_box(partial)))
    });

    // put_packet: frame a COM_QUERY point select into a reused buffer.
    let mut query = vec![0x03u8];
    query.extend_from_slice(b"SELECT c FROM sbtest1 WHERE id=5012");
    let mut out = BytesMut::with_capacity(16 * 1024);
    g.bench_function("put_packet/com_query", |b| {
        b.iter(|| {
            out.clear();
            put_packet(&mut out, 0, black_box(&query))
        })
    });
    // put_packet: a 1 KiB payload (a row-sized INSERT).
    let big = vec![b'x'; 1024];
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("put_packet/1KiB", |b| {
        b.iter(|| {
            out.clear();
            put_packet(&mut out, 0, black_box(&big))
        })
    });

    // lenenc_int over the four encodings.
    let ints: [&[u8]; 4] = [
        &[0x05],
        &[0xfc, 0x01, 0x02],
        &[0xfd, 1, 0, 1],
        &[0xfe, 1, 0, 0, 0, 0, 0, 0, 0],
    ];
    g.throughput(Throughput::Elements(ints.len() as u64));
    g.bench_function("lenenc_int/mix", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for i in &ints {
                sum += lenenc_int(black_box(i)).map_or(0, |(v, _)| v);
            }
            sum
        })
    });
    g.finish();
}

criterion_group!(benches, scanner, framing);
criterion_main!(benches);
