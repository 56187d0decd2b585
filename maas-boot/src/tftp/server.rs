//! The TFTP server loop: a bound socket and a cancellation token in, one tokio
//! task per transfer on its own ephemeral port out. Deciding what to do with a
//! request ([`accept`]) and running a transfer ([`Transfer`]) are pure; this
//! module only moves datagrams and file bytes.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::options::{Limits, Negotiated, negotiate};
use super::packet::{ErrorCode, MAX_PACKET, Packet, Request};
use super::transfer::{Action, Transfer};
use crate::tree::{BootFile, BootPath, BootTree, Client};
use crate::{Error, Result};

/// Server settings.
#[derive(Clone, Debug)]
pub struct TftpConfig {
    /// Negotiation limits.
    pub limits: Limits,
    /// Retransmissions of one window before a transfer is abandoned.
    pub max_retries: u32,
    /// Transfers running at once; requests beyond it get ERROR 0 "server busy".
    pub max_transfers: usize,
    /// Largest file sent in netascii mode (it is converted in memory).
    pub max_netascii: u64,
}

impl Default for TftpConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_retries: 5,
            max_transfers: 2048,
            max_netascii: 16 << 20,
        }
    }
}

/// What the server does with a datagram that arrived on its listening port.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start a read transfer of this path.
    Read {
        /// The validated path.
        path: BootPath,
        /// Whether the content must be converted to netascii.
        netascii: bool,
        /// The client's options, for negotiation once the size is known.
        options: Vec<(String, String)>,
    },
    /// Answer with this ERROR and forget the client.
    Refuse(ErrorCode, String),
    /// Say nothing (garbage, or a packet that only makes sense mid-transfer).
    Drop,
}

/// Decides what to do with a datagram sent to the listening port. Pure.
pub fn accept(datagram: &[u8]) -> Decision {
    match Packet::parse(datagram) {
        Ok(Packet::Rrq(Request {
            filename,
            mode,
            options,
        })) => {
            let netascii = match mode.as_str() {
                "octet" => false,
                "netascii" => true,
                other => {
                    return Decision::Refuse(
                        ErrorCode::IllegalOperation,
                        format!("unsupported mode {other:?}"),
                    );
                }
            };
            match BootPath::parse(&filename) {
                Ok(path) => Decision::Read {
                    path,
                    netascii,
                    options,
                },
                Err(e) => Decision::Refuse(ErrorCode::AccessViolation, e.to_string()),
            }
        }
        Ok(Packet::Wrq(_)) => Decision::Refuse(
            ErrorCode::AccessViolation,
            "write requests are not accepted".into(),
        ),
        // A stray ERROR/ACK/DATA on the listening port belongs to no transfer.
        Ok(_) => Decision::Drop,
        // Malformed requests get an answer so a real client stops retrying;
        // anything that is not even a request is dropped to avoid reflection.
        Err(e) if matches!(datagram.get(..2), Some([0, 1]) | Some([0, 2])) => {
            Decision::Refuse(ErrorCode::IllegalOperation, e.to_string())
        }
        Err(_) => Decision::Drop,
    }
}

/// The TFTP error code for a tree error.
pub fn error_code(e: &Error) -> ErrorCode {
    match e {
        Error::NotFound(_) => ErrorCode::FileNotFound,
        Error::AccessDenied(_) => ErrorCode::AccessViolation,
        _ => ErrorCode::Undefined,
    }
}

/// Serves read requests on `socket` from `tree` until `cancel` fires.
///
/// Each transfer runs in its own task on a fresh socket bound to the listening
/// address with port 0 (RFC 1350's transfer identifier) and connected to the
/// client, so the kernel filters out strangers.
pub async fn serve(
    socket: UdpSocket,
    tree: Arc<dyn BootTree>,
    config: TftpConfig,
    cancel: CancellationToken,
) -> Result<()> {
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("reading the TFTP socket address", e))?;
    let slots = Arc::new(Semaphore::new(config.max_transfers));
    let config = Arc::new(config);
    let mut buf = vec![0u8; MAX_PACKET + 1];
    tracing::info!(%local, "tftp: serving");
    loop {
        let (n, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from earlier sends surface here on Linux; they say
                // nothing about the next request.
                Err(e) => { tracing::debug!(error = %e, "tftp: recv"); continue; }
            },
        };
        match accept(&buf[..n]) {
            Decision::Drop => tracing::debug!(%peer, "tftp: dropped a stray packet"),
            Decision::Refuse(code, msg) => {
                tracing::info!(%peer, code = code.code(), %msg, "tftp: refused");
                send_error(&socket, peer, code, &msg).await;
            }
            Decision::Read {
                path,
                netascii,
                options,
            } => {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    send_error(&socket, peer, ErrorCode::Undefined, "server busy").await;
                    continue;
                };
                let tree = tree.clone();
                let config = config.clone();
                let cancel = cancel.child_token();
                tokio::spawn(async move {
                    let _permit = permit;
                    let client = Client { peer, local };
                    if let Err(e) = run(
                        tree,
                        config,
                        client,
                        path.clone(),
                        netascii,
                        options,
                        cancel,
                    )
                    .await
                    {
                        tracing::info!(%peer, %path, error = %e, "tftp: transfer failed");
                    }
                });
            }
        }
    }
    tracing::info!(%local, "tftp: stopped");
    Ok(())
}

async fn send_error(socket: &UdpSocket, peer: SocketAddr, code: ErrorCode, msg: &str) {
    let pkt = Packet::Error {
        code,
        message: msg.to_owned(),
    }
    .encode();
    if let Err(e) = socket.send_to(&pkt, peer).await {
        tracing::debug!(%peer, error = %e, "tftp: could not send ERROR");
    }
}

/// Converts to netascii: LF becomes CR LF, a lone CR becomes CR NUL (RFC 764).
fn to_netascii(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    for &b in data {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            b => out.push(b),
        }
    }
    out
}

async fn run(
    tree: Arc<dyn BootTree>,
    config: Arc<TftpConfig>,
    client: Client,
    path: BootPath,
    netascii: bool,
    options: Vec<(String, String)>,
    cancel: CancellationToken,
) -> Result<()> {
    let bind: SocketAddr = SocketAddr::new(client.local.ip(), 0);
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| Error::io("binding a TFTP transfer socket", e))?;
    sock.connect(client.peer)
        .await
        .map_err(|e| Error::io("connecting a TFTP transfer socket", e))?;

    let mut file = match tree.open(&path, &client).await {
        Ok(f) => f,
        Err(e) => {
            let code = error_code(&e);
            let pkt = Packet::Error {
                code,
                message: match code {
                    ErrorCode::FileNotFound => "file not found".into(),
                    ErrorCode::AccessViolation => "access violation".into(),
                    // Don't leak server-side paths or I/O details to the network.
                    _ => "could not read file".into(),
                },
            };
            let _ = sock.send(&pkt.encode()).await;
            return Err(e);
        }
    };
    tracing::debug!(peer = %client.peer, %path, size = file.len(), "tftp: read request");
    if netascii {
        if file.len() > config.max_netascii {
            let pkt = Packet::Error {
                code: ErrorCode::Undefined,
                message: "file too large for netascii, use octet mode".into(),
            };
            let _ = sock.send(&pkt.encode()).await;
            return Err(Error::Invalid(format!("{path}: too large for netascii")));
        }
        let mut raw = vec![0u8; file.len() as usize];
        let n = file.read_at(0, &mut raw)?;
        raw.truncate(n);
        file = BootFile::Bytes(to_netascii(&raw).into());
    }
    let size = file.len();
    let Negotiated {
        blksize,
        windowsize,
        timeout,
        oack,
    } = negotiate(&options, size, &config.limits);

    let mut transfer = Transfer::new(
        size,
        blksize,
        windowsize,
        !oack.is_empty(),
        timeout,
        config.max_retries,
        tokio::time::Instant::now().into_std(),
    );
    let oack_pkt = Packet::Oack { options: oack }.encode();
    let mut out = vec![0u8; 4 + usize::from(blksize)];
    let mut inbuf = vec![0u8; MAX_PACKET + 1];
    let mut action = transfer.start(tokio::time::Instant::now().into_std());
    loop {
        match action {
            Action::SendOack => send(&sock, &oack_pkt).await?,
            Action::SendBlocks { first, last } => {
                for index in first..=last {
                    let (offset, len) = transfer.block_range(index, size);
                    out[0..2].copy_from_slice(&3u16.to_be_bytes());
                    out[2..4].copy_from_slice(&(index as u16).to_be_bytes());
                    let n = file.read_at(offset, &mut out[4..4 + len])?;
                    send(&sock, &out[..4 + n]).await?;
                }
            }
            Action::Wait => {}
            Action::Done => return Ok(()),
            Action::GiveUp => {
                return Err(Error::Invalid(format!(
                    "{path}: no ACK after {} retries",
                    config.max_retries
                )));
            }
        }
        let deadline = tokio::time::Instant::from_std(transfer.deadline());
        action = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep_until(deadline) => {
                transfer.on_timeout(tokio::time::Instant::now().into_std())
            }
            r = sock.recv(&mut inbuf) => {
                let now = tokio::time::Instant::now().into_std();
                match r {
                    Ok(n) => match Packet::parse(&inbuf[..n]) {
                        Ok(Packet::Ack { block }) => transfer.on_ack(block, now),
                        Ok(Packet::Error { code, message }) => {
                            return Err(Error::Invalid(format!(
                                "{path}: client sent ERROR {}: {message}", code.code()
                            )));
                        }
                        Ok(_) | Err(_) => {
                            let pkt = Packet::Error {
                                code: ErrorCode::IllegalOperation,
                                message: "expected an ACK".into(),
                            };
                            let _ = sock.send(&pkt.encode()).await;
                            return Err(Error::Invalid(format!("{path}: client sent a non-ACK")));
                        }
                    },
                    // ICMP port unreachable: the client went away.
                    Err(e) => return Err(Error::io("receiving an ACK", e)),
                }
            }
        };
    }
}

async fn send(sock: &UdpSocket, pkt: &[u8]) -> Result<()> {
    sock.send(pkt)
        .await
        .map(|_| ())
        .map_err(|e| Error::io("sending a TFTP packet", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_writes_and_bad_paths() {
        assert!(matches!(
            accept(b"\x00\x02f\x00octet\x00"),
            Decision::Refuse(ErrorCode::AccessViolation, _)
        ));
        assert!(matches!(
            accept(b"\x00\x01../x\x00octet\x00"),
            Decision::Refuse(ErrorCode::AccessViolation, _)
        ));
        assert!(matches!(
            accept(b"\x00\x01x\x00mail\x00"),
            Decision::Refuse(ErrorCode::IllegalOperation, _)
        ));
        assert_eq!(accept(b"\x00\x04\x00\x01"), Decision::Drop);
        assert_eq!(accept(b"garbage"), Decision::Drop);
        assert!(matches!(
            accept(b"\x00\x01x\x00netascii\x00"),
            Decision::Read { netascii: true, .. }
        ));
    }

    #[test]
    fn netascii_conversion() {
        assert_eq!(to_netascii(b"a\nb\rc"), b"a\r\nb\r\0c");
    }
}
