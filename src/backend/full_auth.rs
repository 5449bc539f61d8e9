//! caching_sha2_password full authentication towards a backend (MySQL 8
//! without a cached entry for the account): the clear password over TLS,
//! otherwise encrypted with the server's RSA public key, which is asked
//! for first. Only a configured clear password can do it.

use bytes::BytesMut;

use super::stream::BackendStream;
use crate::protocol::packet::{put_packet, PacketReader};
use crate::protocol::reply::MyError;
use crate::protocol::rsa_key::encrypt_password;
use crate::protocol::sha2::{cleartext_packet, MORE_DATA, REQUEST_PUBLIC_KEY};

/// After the server's `0x01 0x04` with sequence id `seq`: sends the
/// password; the server's OK or ERR is left for the caller to read.
pub(super) async fn send_password(
    stream: &mut BackendStream,
    reader: &mut PacketReader,
    seq: u8,
    nonce: &[u8],
    password: Option<&str>,
    addr: &str,
) -> Result<(), MyError> {
    let io_err = |e: std::io::Error| MyError::backend_unreachable(addr, &e.to_string());
    let Some(password) = password else {
        return Err(MyError::new(
            1251,
            "08004",
            format!(
                "backend {addr} needs caching_sha2_password full authentication, which takes \
                 the clear password; this account is configured by its native hash only"
            ),
        ));
    };
    let mut out = BytesMut::with_capacity(300);
    if matches!(stream, BackendStream::Tls(_)) {
        put_packet(&mut out, seq.wrapping_add(1), &cleartext_packet(password));
        let sent = stream.write_all(&out).await.map_err(io_err);
        out.fill(0);
        return sent;
    }
    put_packet(&mut out, seq.wrapping_add(1), &[REQUEST_PUBLIC_KEY]);
    stream.write_all(&out).await.map_err(io_err)?;
    let (key, key_seq) = reader.read_payload(stream).await.map_err(io_err)?;
    if key.first() == Some(&0xff) {
        return Err(crate::protocol::reply::parse_err(&key)
            .unwrap_or_else(|| MyError::new(1045, "28000", "backend refused login")));
    }
    let pem = key.strip_prefix(&[MORE_DATA]).ok_or_else(|| {
        MyError::new(
            1043,
            "08S01",
            "unexpected packet instead of the server's public key",
        )
    })?;
    let cipher = encrypt_password(pem, password, nonce).map_err(|e| {
        MyError::new(
            2061,
            "HY000",
            format!("caching_sha2_password with backend {addr}: {e}"),
        )
    })?;
    out.clear();
    put_packet(&mut out, key_seq.wrapping_add(1), &cipher);
    stream.write_all(&out).await.map_err(io_err)
}
