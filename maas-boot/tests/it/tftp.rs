//! The TFTP server against real clients (curl, tftp-hpa, atftp) and against a
//! small client written here for what those cannot do (windowsize checks with
//! gaps, WRQ, dropped packets, block-number rollover, hundreds at once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use maas_boot::tftp::packet::Request;
use maas_boot::tftp::{ErrorCode, Limits, Packet, TftpConfig};
use tokio::net::UdpSocket;

use crate::common::{Files, TftpServer, data, peer, run};

/// What the test client saw.
#[derive(Debug, Default)]
struct Fetched {
    content: Vec<u8>,
    oack: Vec<(String, String)>,
    data_packets: usize,
}

/// A minimal RFC 1350/2347/7440 client. `drop_first` ignores the first DATA
/// packet, as if it was lost, to make the server retransmit.
async fn fetch(
    server: SocketAddr,
    name: &[u8],
    options: &[(&str, &str)],
    drop_first: bool,
) -> Result<Fetched, (ErrorCode, String)> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let rrq = Packet::Rrq(Request {
        filename: name.to_vec(),
        mode: "octet".into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    });
    sock.send_to(&rrq.encode(), server).await.expect("send RRQ");
    let mut buf = vec![0u8; 70_000];
    let mut out = Fetched::default();
    let (mut blksize, mut window) = (512usize, 1usize);
    let mut expected: u16 = 1;
    let mut in_window = 0usize;
    let mut dropped = !drop_first;
    let mut tid: Option<SocketAddr> = None;
    loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
            .await
            .expect("server went silent")
            .expect("recv");
        let is_error = buf.get(..2) == Some(&[0, 5][..]);
        match tid {
            // A refused request may be answered from the listening port.
            None if is_error => {}
            None => {
                assert_ne!(from, server, "the transfer must come from a new port");
                tid = Some(from);
            }
            Some(t) => assert_eq!(from, t, "transfer port changed"),
        }
        let ack = |block: u16| Packet::Ack { block }.encode();
        match Packet::parse(&buf[..n]).expect("server sent garbage") {
            Packet::Oack { options } => {
                for (k, v) in &options {
                    match k.to_ascii_lowercase().as_str() {
                        "blksize" => blksize = v.parse().expect("blksize"),
                        "windowsize" => window = v.parse().expect("windowsize"),
                        _ => {}
                    }
                }
                out.oack = options;
                sock.send_to(&ack(0), from).await.expect("ack 0");
            }
            Packet::Data { block, data } => {
                out.data_packets += 1;
                if !dropped {
                    dropped = true;
                    continue;
                }
                if block != expected {
                    // A gap: acknowledge the last block in order so the server
                    // resumes after it (RFC 7440 §4).
                    in_window = 0;
                    sock.send_to(&ack(expected.wrapping_sub(1)), from)
                        .await
                        .expect("ack");
                    continue;
                }
                out.content.extend_from_slice(data);
                in_window += 1;
                let last = data.len() < blksize;
                if last || in_window == window {
                    in_window = 0;
                    sock.send_to(&ack(block), from).await.expect("ack");
                }
                expected = expected.wrapping_add(1);
                if last {
                    return Ok(out);
                }
            }
            Packet::Error { code, message } => return Err((code, message)),
            other => panic!("unexpected packet {other:?}"),
        }
    }
}

fn sample() -> (Files, Vec<u8>, Vec<u8>) {
    let big = data(3 * 1024 * 1024 + 77, 1);
    let exact = data(512 * 20, 2); // a multiple of the block size: ends with an empty block
    let files = Files::new(&[
        ("big.bin", &big),
        ("boot/exact.bin", &exact),
        ("text.cfg", b"line one\nline two\r\nend\n"),
    ]);
    (files, big, exact)
}

#[tokio::test]
async fn curl_fetches_byte_exact_with_and_without_blksize() {
    let curl = peer("curl", "curl");
    let (files, big, exact) = sample();
    let srv = TftpServer::start(files.tree(), TftpConfig::default()).await;
    let out = tempfile::tempdir().unwrap();
    for (name, want, extra) in [
        ("big.bin", &big, None),
        ("big.bin", &big, Some("1468")),
        ("boot/exact.bin", &exact, None),
        ("boot/exact.bin", &exact, Some("1024")),
    ] {
        let url = format!("tftp://{}/{name}", srv.addr);
        let mut args = vec!["-sS", "-o", "got", url.as_str()];
        if let Some(b) = extra {
            args.extend(["--tftp-blksize", b]);
        }
        let (ok, log) = run(&curl, &args, out.path()).await;
        assert!(ok, "curl {args:?}: {log}");
        let got = std::fs::read(out.path().join("got")).unwrap();
        assert!(
            got == *want,
            "curl {args:?}: {} bytes, want {}",
            got.len(),
            want.len()
        );
    }
    // A missing file is TFTP error 1, which curl reports as exit 68.
    let url = format!("tftp://{}/nope", srv.addr);
    let st = tokio::process::Command::new(&curl)
        .args(["-sS", "-o", "/dev/null", &url])
        .status()
        .await
        .unwrap();
    assert_eq!(st.code(), Some(68));
}

#[tokio::test]
async fn tftp_hpa_fetches_binary_and_netascii() {
    let tftp = peer("tftp", "tftp-hpa");
    let (files, big, _) = sample();
    let srv = TftpServer::start(files.tree(), TftpConfig::default()).await;
    let out = tempfile::tempdir().unwrap();
    let port = srv.addr.port().to_string();
    let (ok, log) = run(
        &tftp,
        &[
            "-m",
            "binary",
            "127.0.0.1",
            &port,
            "-c",
            "get",
            "big.bin",
            "got",
        ],
        out.path(),
    )
    .await;
    assert!(ok, "{log}");
    assert!(std::fs::read(out.path().join("got")).unwrap() == big);
    // tftp-hpa's default mode is netascii: the server converts line ends and the
    // client converts them back, so a text file arrives unchanged.
    let (ok, log) = run(
        &tftp,
        &["127.0.0.1", &port, "-c", "get", "text.cfg", "t"],
        out.path(),
    )
    .await;
    assert!(ok, "{log}");
    assert_eq!(
        std::fs::read(out.path().join("t")).unwrap(),
        b"line one\nline two\r\nend\n"
    );
    // Writes are refused with "access violation".
    std::fs::write(out.path().join("up"), b"x").unwrap();
    let (_, log) = run(
        &tftp,
        &["-m", "binary", "127.0.0.1", &port, "-c", "put", "up"],
        out.path(),
    )
    .await;
    assert!(log.contains("Error code 2"), "{log}");
}

#[tokio::test]
async fn atftp_fetches_with_blksize_and_windowsize() {
    let atftp = peer("atftp", "atftp");
    let (files, big, _) = sample();
    let srv = TftpServer::start(files.tree(), TftpConfig::default()).await;
    let out = tempfile::tempdir().unwrap();
    let port = srv.addr.port().to_string();
    for opts in [
        &["blksize 1468"][..],
        &["blksize 1468", "windowsize 16"],
        &[],
    ] {
        let mut args = vec!["--trace"];
        for o in opts {
            args.extend(["--option", o]);
        }
        args.extend(["-g", "-r", "big.bin", "-l", "got", "127.0.0.1", &port]);
        let (ok, log) = run(&atftp, &args, out.path()).await;
        assert!(ok, "atftp {args:?}: {log}");
        assert!(
            std::fs::read(out.path().join("got")).unwrap() == big,
            "atftp {opts:?}"
        );
        if opts.contains(&"windowsize 16") {
            // atftp --trace prints the OACK it received.
            assert!(
                log.contains("OACK") && log.contains("windowsize: 16"),
                "windowsize not negotiated: {log}"
            );
        }
    }
}

#[tokio::test]
async fn windowsize_negotiated_and_gaps_recovered() {
    let (files, big, _) = sample();
    let srv = TftpServer::start(files.tree(), TftpConfig::default()).await;
    let got = fetch(
        srv.addr,
        b"big.bin",
        &[("blksize", "1468"), ("windowsize", "16"), ("tsize", "0")],
        false,
    )
    .await
    .unwrap();
    assert_eq!(got.content, big);
    assert!(
        got.oack.contains(&("windowsize".into(), "16".into())),
        "{:?}",
        got.oack
    );
    assert!(
        got.oack.contains(&("tsize".into(), big.len().to_string())),
        "{:?}",
        got.oack
    );
    // Losing the first block of a window: the client acknowledges block 0 again,
    // the server resends the window, and the file still arrives whole.
    let got = fetch(
        srv.addr,
        b"big.bin",
        &[("blksize", "1468"), ("windowsize", "8")],
        true,
    )
    .await
    .unwrap();
    assert_eq!(got.content, big);
}

#[tokio::test]
async fn block_numbers_roll_over_past_65535() {
    let content = data(70_000 * 8 + 3, 9);
    let files = Files::new(&[("f", &content)]);
    let srv = TftpServer::start(files.tree(), TftpConfig::default()).await;
    let got = fetch(
        srv.addr,
        b"f",
        &[("blksize", "8"), ("windowsize", "64")],
        false,
    )
    .await
    .unwrap();
    assert_eq!(got.content.len(), content.len());
    assert!(got.content == content);
}

#[tokio::test]
async fn retransmits_a_lost_block_after_the_timeout() {
    let content = data(2000, 3);
    let files = Files::new(&[("f", &content)]);
    let srv = TftpServer::start(files.tree(), TftpConfig::default()).await;
    let start = std::time::Instant::now();
    let got = fetch(srv.addr, b"f", &[("timeout", "1")], true)
        .await
        .unwrap();
    assert_eq!(got.content, content);
    assert_eq!(got.data_packets, 5, "4 blocks + 1 retransmission");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "resent before the timeout"
    );
}

#[tokio::test]
async fn refusals_carry_the_right_error_codes() {
    let (files, _, _) = sample();
    let srv = TftpServer::start(files.tree(), TftpConfig::default()).await;
    for (name, code) in [
        (&b"missing"[..], ErrorCode::FileNotFound),
        (b"../etc/passwd", ErrorCode::AccessViolation),
        (b"//etc/passwd", ErrorCode::AccessViolation),
        (b"boot\\exact.bin", ErrorCode::AccessViolation),
        (&[b'a'; 2000][..], ErrorCode::AccessViolation),
    ] {
        let err = fetch(srv.addr, name, &[], false).await.unwrap_err();
        assert_eq!(err.0, code, "{}", String::from_utf8_lossy(name));
    }
    // WRQ: refused on the listening port.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let wrq = Packet::Wrq(Request {
        filename: b"x".to_vec(),
        mode: "octet".into(),
        options: vec![],
    });
    sock.send_to(&wrq.encode(), srv.addr).await.unwrap();
    let mut buf = [0u8; 600];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        Packet::parse(&buf[..n]).unwrap(),
        Packet::Error {
            code: ErrorCode::AccessViolation,
            ..
        }
    ));
    // Garbage is dropped without an answer and the server keeps serving.
    sock.send_to(b"\xff\xff garbage", srv.addr).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf))
            .await
            .is_err()
    );
    assert!(fetch(srv.addr, b"text.cfg", &[], false).await.is_ok());
}

#[tokio::test]
async fn serves_many_transfers_at_once() {
    let content = Arc::new(data(256 * 1024, 5));
    let files = Files::new(&[("f", &content)]);
    let srv = TftpServer::start(files.tree(), TftpConfig::default()).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let addr = srv.addr;
        let opts: &'static [(&str, &str)] = if i % 2 == 0 {
            &[("blksize", "1468"), ("windowsize", "4")]
        } else {
            &[]
        };
        tasks.push(tokio::spawn(
            async move { fetch(addr, b"f", opts, false).await },
        ));
    }
    for t in tasks {
        let got = t.await.unwrap().unwrap();
        assert!(got.content == *content);
    }
}

#[tokio::test]
async fn cancellation_stops_the_server() {
    let (files, _, _) = sample();
    let mut srv = TftpServer::start(
        files.tree(),
        TftpConfig {
            limits: Limits::default(),
            ..TftpConfig::default()
        },
    )
    .await;
    srv.cancel();
    let task = srv.task.take().unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(res.is_ok());
}
