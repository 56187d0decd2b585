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
    // All from 127.0.0.1: lift the per-client cap for this one.
    let config = TftpConfig {
        max_per_client: 200,
        ..TftpConfig::default()
    };
    let srv = TftpServer::start(files.tree(), config).await;
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

/// Every way out of the tree we could think of is refused, and none of them
/// returns a byte of the file outside it.
#[tokio::test]
async fn traversal_attempts_are_all_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    std::fs::write(root.join("ok.txt"), b"inside").expect("write");
    std::fs::write(dir.path().join("secret.txt"), b"SECRET").expect("write");
    std::os::unix::fs::symlink("../secret.txt", root.join("link")).expect("symlink");
    std::os::unix::fs::symlink(dir.path(), root.join("sub/up")).expect("symlink");
    let tree = Arc::new(maas_boot::tree::DirTree::new(&root).expect("tree"));
    let srv = TftpServer::start(tree, TftpConfig::default()).await;
    let long = vec![b'a'; 1025];
    let deep = b"a/".repeat(600);
    use ErrorCode::{AccessViolation as Av, FileNotFound as Nf, IllegalOperation as Io};
    let table: &[(&[u8], ErrorCode)] = &[
        (b"../secret.txt", Av),
        (b"/../secret.txt", Av),
        (b"..", Av),
        (b".", Av),
        (b"./secret.txt", Av),
        (b"sub/../../secret.txt", Av),
        (b"sub/./../secret.txt", Av),
        (b"sub/../ok.txt", Av),
        (b"//secret.txt", Av),
        (b"/", Av),
        (b"sub/", Av),
        (b"sub//ok.txt", Av),
        (b"....//secret.txt", Av),
        (b"..\\secret.txt", Av),
        (b"sub\\..\\..\\secret.txt", Av),
        (b"C:\\secret.txt", Av),
        (b"c:", Av),
        (b"\xc0\xae\xc0\xae/secret.txt", Av),
        (b"%c0%ae%c0%ae/secret.txt", Nf),
        (b"%2e%2e/secret.txt", Nf),
        (b"..%2fsecret.txt", Nf),
        (b"..../secret.txt", Nf),
        ("\u{ff0e}\u{ff0e}/secret.txt".as_bytes(), Nf),
        (b"\xff\xfe", Av),
        (b"sub/\x01x", Av),
        (b"sub/\x7fx", Av),
        (b"\x1b[2J", Av),
        (&long, Av),
        (&deep, Av),
        (b"link", Av),
        (b"sub/up/secret.txt", Av),
        (b"/etc/passwd", Nf),
        (b"secret.txt", Nf),
        (b"sub", Nf),
        // NUL ends the name on the wire: "secret" with mode ".txt".
        (b"secret\0.txt", Io),
    ];
    for (name, code) in table {
        let got = fetch(srv.addr, name, &[], false).await;
        match got {
            Err((c, _)) => assert_eq!(c, *code, "{}", String::from_utf8_lossy(name)),
            Ok(f) => panic!(
                "{} was served: {:?}",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(&f.content)
            ),
        }
    }
    // The tree still serves what is inside it.
    let ok = fetch(srv.addr, b"/ok.txt", &[], false)
        .await
        .expect("inside");
    assert_eq!(ok.content, b"inside");
}

/// One address can hold at most `max_per_client` transfers; other addresses
/// are unaffected, and a finished transfer gives its slot back.
#[tokio::test]
async fn transfers_per_client_address_are_capped() {
    let content = data(1 << 20, 9);
    let files = Files::new(&[("big", &content)]);
    let config = TftpConfig {
        max_per_client: 3,
        ..TftpConfig::default()
    };
    let srv = TftpServer::start(files.tree(), config).await;
    let rrq = Packet::Rrq(Request {
        filename: b"big".to_vec(),
        mode: "octet".into(),
        options: vec![],
    })
    .encode();
    // Three transfers that never ACK: the server holds them (retransmitting).
    let mut held = Vec::new();
    for _ in 0..3 {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        sock.send_to(&rrq, srv.addr).await.expect("rrq");
        let mut buf = [0u8; 600];
        let (n, tid) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("first DATA")
            .expect("recv");
        assert!(matches!(
            Packet::parse(&buf[..n]),
            Ok(Packet::Data { block: 1, .. })
        ));
        held.push((sock, tid));
    }
    // A fourth from the same address is refused with ERROR 0.
    let err = fetch(srv.addr, b"big", &[], false).await.unwrap_err();
    assert_eq!(err.0, ErrorCode::Undefined, "{}", err.1);
    assert!(err.1.contains("too many"), "{}", err.1);
    // Another address (127.0.0.2 is loopback too) is served meanwhile.
    let other = UdpSocket::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2");
    other.send_to(&rrq, srv.addr).await.expect("rrq");
    let mut buf = [0u8; 600];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), other.recv_from(&mut buf))
        .await
        .expect("served")
        .expect("recv");
    assert!(matches!(
        Packet::parse(&buf[..n]),
        Ok(Packet::Data { block: 1, .. })
    ));
    // One held client gives up (ERROR): its slot comes back.
    let (sock, tid) = held.pop().expect("held");
    let abort = Packet::Error {
        code: ErrorCode::Undefined,
        message: "bye".into(),
    }
    .encode();
    sock.send_to(&abort, tid).await.expect("abort");
    let mut served = None;
    for _ in 0..50 {
        match fetch(srv.addr, b"big", &[], false).await {
            Ok(f) => {
                served = Some(f);
                break;
            }
            Err((ErrorCode::Undefined, _)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(served.expect("slot given back").content, content);
}

/// A tree that records which local address each request was for.
struct Recording {
    inner: Arc<dyn maas_boot::tree::BootTree>,
    locals: std::sync::Mutex<Vec<SocketAddr>>,
}

#[async_trait::async_trait]
impl maas_boot::tree::BootTree for Recording {
    async fn open(
        &self,
        path: &maas_boot::tree::BootPath,
        client: &maas_boot::tree::Client,
    ) -> maas_boot::Result<maas_boot::tree::BootFile> {
        self.locals.lock().expect("lock").push(client.local);
        self.inner.open(path, client).await
    }
}

/// On a wildcard socket the transfer answers from the address the request
/// was sent to (IP_PKTINFO), and the tree is told that address (configs put
/// it in URLs as the rack): 127.0.0.2 here, not the kernel's pick 127.0.0.1.
#[tokio::test]
async fn replies_leave_from_the_address_the_request_came_to() {
    let content = data(3000, 11);
    let files = Files::new(&[("f", &content)]);
    let tree = Arc::new(Recording {
        inner: files.tree(),
        locals: std::sync::Mutex::new(Vec::new()),
    });
    let sock = UdpSocket::bind("0.0.0.0:0").await.expect("bind wildcard");
    let port = sock.local_addr().expect("addr").port();
    let cancel = tokio_util::sync::CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    tokio::spawn(maas_boot::tftp::serve(
        sock,
        tree.clone(),
        TftpConfig::default(),
        cancel.clone(),
    ));
    for ip in ["127.0.0.2", "127.0.0.3"] {
        let server: SocketAddr = format!("{ip}:{port}").parse().expect("addr");
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let rrq = Packet::Rrq(Request {
            filename: b"f".to_vec(),
            mode: "octet".into(),
            options: vec![],
        });
        client.send_to(&rrq.encode(), server).await.expect("rrq");
        let mut buf = [0u8; 600];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("DATA")
            .expect("recv");
        assert!(matches!(
            Packet::parse(&buf[..n]),
            Ok(Packet::Data { block: 1, .. })
        ));
        assert_eq!(from.ip().to_string(), ip, "DATA came from {from}");
        assert_ne!(from.port(), port, "from the transfer's own port");
        // Finish it so the transfer ends cleanly.
        let got = fetch(server, b"f", &[], false).await.expect("fetch");
        assert_eq!(got.content, content);
    }
    let locals = tree.locals.lock().expect("lock").clone();
    assert!(
        locals.iter().any(|l| l.ip().to_string() == "127.0.0.2")
            && locals.iter().any(|l| l.ip().to_string() == "127.0.0.3")
            && locals
                .iter()
                .all(|l| l.port() == port && !l.ip().is_unspecified()),
        "{locals:?}"
    );
}
