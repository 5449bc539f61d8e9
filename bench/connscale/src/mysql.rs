//! A minimal MySQL client: connection phase with mysql_native_password
//! (answering an auth switch too), COM_QUERY with text result sets, and
//! COM_QUIT. Enough to hold thousands of idle sessions cheaply and to read
//! status tables; nothing else (no TLS, no compression, no prepared
//! statements, no payloads of 16 MiB or more).

use sha1::{Digest, Sha1};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
const UTF8MB4_GENERAL_CI: u8 = 45;
const NATIVE: &str = "mysql_native_password";

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// A server ERR packet: code and message.
fn server_error(p: &[u8]) -> io::Error {
    let code = if p.len() >= 3 {
        u16::from_le_bytes([p[1], p[2]])
    } else {
        0
    };
    // Skip the '#' + 5-byte SQL state marker when present.
    let msg = if p.len() > 9 && p[3] == b'#' {
        &p[9..]
    } else {
        p.get(3..).unwrap_or(&[])
    };
    err(format!(
        "server error {code}: {}",
        String::from_utf8_lossy(msg)
    ))
}

/// mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))).
fn scramble_native(nonce: &[u8], password: &str) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha1::digest(password.as_bytes());
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(h2);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

/// Reads a length-encoded integer at `*pos`.
fn lenenc(p: &[u8], pos: &mut usize) -> io::Result<Option<u64>> {
    let first = *p.get(*pos).ok_or_else(|| err("truncated packet"))?;
    *pos += 1;
    let size = match first {
        0xfb => return Ok(None),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        v => return Ok(Some(v as u64)),
    };
    let bytes = p
        .get(*pos..*pos + size)
        .ok_or_else(|| err("truncated packet"))?;
    *pos += size;
    Ok(Some(
        bytes.iter().rev().fold(0u64, |v, b| (v << 8) | *b as u64),
    ))
}

fn lenenc_str(p: &[u8], pos: &mut usize) -> io::Result<Option<String>> {
    match lenenc(p, pos)? {
        None => Ok(None),
        Some(n) => {
            let s = p
                .get(*pos..*pos + n as usize)
                .ok_or_else(|| err("truncated packet"))?;
            *pos += n as usize;
            Ok(Some(String::from_utf8_lossy(s).into_owned()))
        }
    }
}

/// A text result set: column names and rows (NULL as `None`).
#[derive(Debug, Default)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }
}

pub struct Conn {
    stream: TcpStream,
    seq: u8,
}

impl Conn {
    /// Connects and logs in.
    pub async fn connect(
        addr: &str,
        user: &str,
        password: &str,
        db: Option<&str>,
    ) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Conn { stream, seq: 0 };
        let greeting = c.read_packet().await?;
        if greeting.first() == Some(&0xff) {
            return Err(server_error(&greeting));
        }
        let (nonce, server_caps) = parse_greeting(&greeting)?;

        let mut caps = CLIENT_LONG_PASSWORD
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH;
        if db.is_some() {
            caps |= CLIENT_CONNECT_WITH_DB;
        }
        caps &= server_caps | CLIENT_CONNECT_WITH_DB;
        // Answer for native whatever plugin the greeting names; a server
        // that wants another one switches us (handled below).
        let auth = scramble_native(&nonce, password);
        let mut p = Vec::with_capacity(128);
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(UTF8MB4_GENERAL_CI);
        p.extend_from_slice(&[0u8; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(auth.len() as u8);
        p.extend_from_slice(&auth);
        if let Some(db) = db {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(NATIVE.as_bytes());
        p.push(0);
        c.write_packet(&p).await?;

        loop {
            let r = c.read_packet().await?;
            match r.first() {
                Some(0x00) => return Ok(c),
                Some(0xff) => return Err(server_error(&r)),
                Some(0xfe) => {
                    // Auth switch: plugin name NUL, then the new nonce.
                    let rest = &r[1..];
                    let nul = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
                    let name = String::from_utf8_lossy(&rest[..nul]).into_owned();
                    if name != NATIVE {
                        return Err(err(format!(
                            "server wants auth plugin {name}, only {NATIVE} is supported"
                        )));
                    }
                    let mut nonce = rest.get(nul + 1..).unwrap_or(&[]).to_vec();
                    if nonce.last() == Some(&0) {
                        nonce.pop();
                    }
                    let auth = scramble_native(&nonce, password);
                    c.write_packet(&auth).await?;
                }
                _ => return Err(err("unexpected packet during login")),
            }
        }
    }

    /// Runs one statement and returns its result set (empty for OK).
    pub async fn query(&mut self, sql: &str) -> io::Result<ResultSet> {
        self.seq = 0;
        let mut p = Vec::with_capacity(1 + sql.len());
        p.push(0x03);
        p.extend_from_slice(sql.as_bytes());
        self.write_packet(&p).await?;

        let mut rs = ResultSet::default();
        let first = self.read_packet().await?;
        match first.first() {
            Some(0x00) => return Ok(rs),
            Some(0xff) => return Err(server_error(&first)),
            Some(0xfb) => return Err(err("LOCAL INFILE not supported")),
            _ => {}
        }
        let mut pos = 0;
        let ncols = lenenc(&first, &mut pos)?.ok_or_else(|| err("bad column count"))? as usize;
        for _ in 0..ncols {
            let def = self.read_packet().await?;
            let mut pos = 0;
            // catalog, schema, table, org_table, name
            for _ in 0..4 {
                lenenc_str(&def, &mut pos)?;
            }
            rs.columns
                .push(lenenc_str(&def, &mut pos)?.unwrap_or_default());
        }
        let eof = self.read_packet().await?;
        if eof.first() != Some(&0xfe) {
            return Err(err("expected EOF after column definitions"));
        }
        loop {
            let row = self.read_packet().await?;
            match row.first() {
                Some(0xfe) if row.len() < 9 => return Ok(rs),
                Some(0xff) => return Err(server_error(&row)),
                _ => {
                    let mut pos = 0;
                    let mut vals = Vec::with_capacity(ncols);
                    for _ in 0..ncols {
                        vals.push(lenenc_str(&row, &mut pos)?);
                    }
                    rs.rows.push(vals);
                }
            }
        }
    }

    /// Sends COM_QUIT and closes the socket.
    pub async fn quit(mut self) -> io::Result<()> {
        self.seq = 0;
        self.write_packet(&[0x01]).await?;
        self.stream.shutdown().await
    }

    async fn read_packet(&mut self) -> io::Result<Vec<u8>> {
        let mut h = [0u8; 4];
        self.stream.read_exact(&mut h).await?;
        let len = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
        if len == 0xff_ffff {
            return Err(err("payloads of 16 MiB or more are not supported"));
        }
        self.seq = h[3].wrapping_add(1);
        let mut p = vec![0u8; len];
        self.stream.read_exact(&mut p).await?;
        Ok(p)
    }

    async fn write_packet(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(4 + payload.len());
        let n = payload.len() as u32;
        out.extend_from_slice(&n.to_le_bytes()[..3]);
        out.push(self.seq);
        out.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.stream.write_all(&out).await
    }
}

/// (nonce, capabilities) from a HandshakeV10 greeting.
fn parse_greeting(p: &[u8]) -> io::Result<(Vec<u8>, u32)> {
    let bad = || err("malformed greeting");
    if p.first() != Some(&10) {
        return Err(err("unsupported protocol version"));
    }
    let mut pos = 1 + p[1..].iter().position(|b| *b == 0).ok_or_else(bad)? + 1;
    pos += 4; // connection id
    let mut nonce = p.get(pos..pos + 8).ok_or_else(bad)?.to_vec();
    pos += 9; // part 1 + filler
    let cap_lo = u16::from_le_bytes([
        *p.get(pos).ok_or_else(bad)?,
        *p.get(pos + 1).ok_or_else(bad)?,
    ]);
    pos += 2;
    let mut caps = cap_lo as u32;
    if p.len() > pos {
        pos += 3; // charset, status
        let cap_hi = u16::from_le_bytes([
            *p.get(pos).ok_or_else(bad)?,
            *p.get(pos + 1).ok_or_else(bad)?,
        ]);
        caps |= (cap_hi as u32) << 16;
        pos += 2;
        let auth_len = *p.get(pos).ok_or_else(bad)? as usize;
        pos += 11; // length + 10 reserved
        let n2 = auth_len.saturating_sub(8).max(13);
        let part2 = p.get(pos..(pos + n2).min(p.len())).ok_or_else(bad)?;
        // part 2 ends with a NUL that is not part of the nonce
        let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
        nonce.extend_from_slice(part2);
    }
    nonce.truncate(20);
    Ok((nonce, caps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_sizes() {
        let mut pos = 0;
        assert_eq!(lenenc(&[0xfc, 0x34, 0x12], &mut pos).unwrap(), Some(0x1234));
        assert_eq!(pos, 3);
        let mut pos = 0;
        assert_eq!(lenenc(&[0xfd, 1, 2, 3], &mut pos).unwrap(), Some(0x030201));
        let mut pos = 0;
        assert_eq!(lenenc(&[0xfb], &mut pos).unwrap(), None);
    }

    #[test]
    fn native_scramble_empty_password_is_empty() {
        assert!(scramble_native(&[1; 20], "").is_empty());
        assert_eq!(scramble_native(&[1; 20], "pw").len(), 20);
    }
}
