//! Bad input: a generated corpus of well over 1,000 malformed API requests
//! (wrong types, missing fields, huge bodies, bad UTF-8, bad op names,
//! bad and garbled OAuth headers, bad multipart bodies, path junk), sent
//! concurrently to the real `maasd` started with a 1 MiB body limit. Every
//! answer must be a 4xx with a message (no 5xx, no dropped connection), the
//! oversized bodies 413, and the server must still be healthy afterwards.
//! Run on SQLite and PostgreSQL.

use maas_e2e::harden::{
    ApiKey, Client, StartOpts, build, machine_spec, nonce, now_secs, oauth_header, par_map, pct,
    pct_bytes, raw,
};
use maas_e2e::{Maasd, Postgres, maasd_binary};
use serde_json::json;

const LIMIT: usize = 1 << 20;

/// A deterministic xorshift generator: the corpus is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// One malformed request and, when MAAS defines it, the exact status.
struct Bad {
    name: String,
    bytes: Vec<u8>,
    want: Option<u16>,
}

struct Ctx {
    admin: ApiKey,
    alice: ApiKey,
    ready: String,
    deployed: String,
}

const API: &str = "/MAAS/api/2.0";

/// One form field: name and raw value (which need not be UTF-8).
type FormPair<'a> = (&'a str, &'a [u8]);

fn form_body(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct_bytes(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn signed(key: &ApiKey, method: &str, target: &str, ctype: Option<&str>, body: &[u8]) -> Vec<u8> {
    let auth = oauth_header(key);
    let mut h = vec![("Authorization", auth.as_str())];
    if let Some(c) = ctype {
        h.push(("Content-Type", c));
    }
    build(method, target, &h, body)
}

fn urlenc(key: &ApiKey, method: &str, target: &str, pairs: &[(&str, &[u8])]) -> Vec<u8> {
    signed(
        key,
        method,
        target,
        Some("application/x-www-form-urlencoded"),
        &form_body(pairs),
    )
}

/// The whole corpus.
fn corpus(c: &Ctx) -> Vec<Bad> {
    let mut out = Vec::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut add =
        |name: String, bytes: Vec<u8>, want: Option<u16>| out.push(Bad { name, bytes, want });
    let r = &c.ready;
    let d = &c.deployed;
    let a = &c.admin;

    // --- wrong types and invalid values, field by field (admin, valid OAuth)
    // Not numbers at all (MAAS's allocate and list filters read cpu_count
    // and mem as floats), then not whole numbers either (Django's
    // IntegerField for the machine form, maasd's paging, event limits).
    let not_floats: &[&str] = &[
        "abc", "0x10", "[]", "{}", "1 2", "--1", "true", "4GB", "\u{2163}",
    ];
    let not_ints: Vec<&str> = not_floats
        .iter()
        .copied()
        .chain([
            "1.5",
            "NaN",
            "inf",
            "-inf",
            "1e3",
            "99999999999999999999999",
        ])
        .collect();
    for v in &not_ints {
        for field in ["cpu_count", "memory", "swap_size"] {
            add(
                format!("PUT machine {field}={v}"),
                urlenc(
                    a,
                    "PUT",
                    &format!("{API}/machines/{r}/"),
                    &[(field, v.as_bytes())],
                ),
                Some(400),
            );
        }
        for field in ["offset", "limit"] {
            add(
                format!("list {field}={v}"),
                signed(
                    a,
                    "GET",
                    &format!("{API}/machines/?{field}={}", pct(v)),
                    None,
                    b"",
                ),
                Some(400),
            );
        }
        add(
            format!("events limit={v}"),
            signed(
                a,
                "GET",
                &format!("{API}/events/?op=query&limit={}", pct(v)),
                None,
                b"",
            ),
            Some(400),
        );
    }
    for v in not_floats {
        for field in ["cpu_count", "mem"] {
            add(
                format!("allocate {field}={v}"),
                urlenc(
                    a,
                    "POST",
                    &format!("{API}/machines/?op=allocate"),
                    &[(field, v.as_bytes())],
                ),
                Some(400),
            );
            add(
                format!("list {field}={v}"),
                signed(
                    a,
                    "GET",
                    &format!("{API}/machines/?{field}={}", pct(v)),
                    None,
                    b"",
                ),
                Some(400),
            );
        }
    }
    let not_bools: &[&str] = &["maybe", "2", "truthy", "nein", "-1", "on off", "\u{2713}"];
    for v in not_bools {
        for (op, field, target) in [
            ("deploy", "ephemeral_deploy", r.as_str()),
            ("deploy", "enable_hw_sync", r),
            ("deploy", "install_kvm", r),
            ("release", "erase", d),
            ("release", "force", d),
            ("release", "quick_erase", d),
            ("commission", "skip_storage", r),
            ("commission", "enable_ssh", r),
        ] {
            let key = if op == "release" { &c.alice } else { a };
            add(
                format!("{op} {field}={v}"),
                urlenc(
                    key,
                    "POST",
                    &format!("{API}/machines/{target}/?op={op}"),
                    &[(field, v.as_bytes())],
                ),
                Some(400),
            );
        }
        for field in ["dry_run", "verbose"] {
            add(
                format!("allocate {field}={v}"),
                urlenc(
                    a,
                    "POST",
                    &format!("{API}/machines/?op=allocate"),
                    &[(field, v.as_bytes())],
                ),
                Some(400),
            );
        }
        add(
            format!("create user is_superuser={v}"),
            urlenc(
                a,
                "POST",
                &format!("{API}/users/"),
                &[
                    ("username", b"victim"),
                    ("password", b"pw"),
                    ("email", b"v@example.com"),
                    ("is_superuser", v.as_bytes()),
                ],
            ),
            Some(400),
        );
    }
    let bad_strings: &[(&str, &str)] = &[
        ("hostname", "-leading-dash"),
        ("hostname", "has space"),
        ("hostname", "under_score"),
        ("hostname", "\u{fc}n\u{ef}c\u{f8}d\u{e9}"),
        ("architecture", "z80"),
        ("architecture", "amd64/"),
        ("architecture", "/generic"),
        ("architecture", "amd64/generic/extra"),
        ("zone", "no-such-zone"),
        ("pool", "no-such-pool"),
        ("domain", "no-such-domain"),
        ("power_type", "telekinesis"),
        ("power_parameters", "{not json"),
        ("power_parameters", "[1,2,3]"),
        ("power_parameters", "\"a string\""),
    ];
    for (field, v) in bad_strings {
        add(
            format!("PUT machine {field}={v}"),
            urlenc(
                a,
                "PUT",
                &format!("{API}/machines/{r}/"),
                &[(field, v.as_bytes())],
            ),
            Some(400),
        );
    }
    add(
        "PUT hostname 64 chars".into(),
        urlenc(
            a,
            "PUT",
            &format!("{API}/machines/{r}/"),
            &[("hostname", "h".repeat(64).as_bytes())],
        ),
        Some(400),
    );
    add(
        "PUT ipmi without address".into(),
        urlenc(
            a,
            "PUT",
            &format!("{API}/machines/{r}/"),
            &[("power_type", b"ipmi")],
        ),
        Some(400),
    );
    for (field, v, want) in [
        ("storage", "garbage(", 400),
        ("storage", "root:abc", 400),
        ("interfaces", "???", 400),
        ("interfaces", "eth0:nokey", 400),
        ("tags", "no-such-tag", 400),
        ("zone", "no-such-zone", 400),
        ("not_in_zone", "no-such-zone", 400),
        ("pool", "no-such-pool", 400),
        ("arch", "z80", 400),
        ("no_such_constraint", "1", 400),
        ("pod", "p1", 400),
        ("not_zones", "z", 400),
    ] {
        add(
            format!("allocate {field}={v}"),
            urlenc(
                a,
                "POST",
                &format!("{API}/machines/?op=allocate"),
                &[(field, v.as_bytes())],
            ),
            Some(want),
        );
    }
    for (field, v) in [
        ("user_data", "!!!not base64!!!"),
        ("user_data", "YWJj="),
        ("distro_series", "ubuntu/jammy/extra"),
        ("distro_series", "/"),
        ("install_kvm", "true"),
        ("install_rackd", "true"),
        ("register_vmhost", "true"),
    ] {
        add(
            format!("deploy {field}={v}"),
            urlenc(
                a,
                "POST",
                &format!("{API}/machines/{r}/?op=deploy"),
                &[(field, v.as_bytes())],
            ),
            Some(400),
        );
    }
    for v in ["gentle", "SOFT ", "1"] {
        add(
            format!("power_off stop_mode={v}"),
            urlenc(
                &c.alice,
                "POST",
                &format!("{API}/machines/{d}/?op=power_off"),
                &[("stop_mode", v.as_bytes())],
            ),
            Some(400),
        );
    }
    for (q, want) in [
        ("status=nonsense", 400),
        ("mac_address=zz:zz", 400),
        ("mac_address=01:02:03", 400),
    ] {
        add(
            format!("list {q}"),
            signed(a, "GET", &format!("{API}/machines/?{q}"), None, b""),
            Some(want),
        );
    }
    add(
        "storage layout bogus".into(),
        urlenc(
            a,
            "POST",
            &format!("{API}/machines/{r}/?op=set_storage_layout"),
            &[("storage_layout", b"raid99")],
        ),
        Some(400),
    );

    // --- missing fields
    let missing: Vec<(&str, String, Vec<FormPair<'_>>)> = vec![
        (
            "create machine, nothing",
            format!("{API}/machines/"),
            vec![],
        ),
        (
            "create machine, no mac",
            format!("{API}/machines/"),
            vec![("architecture", b"amd64")],
        ),
        (
            "create machine, bad mac",
            format!("{API}/machines/"),
            vec![("architecture", b"amd64"), ("mac_addresses", b"not-a-mac")],
        ),
        (
            "create machine, no arch",
            format!("{API}/machines/"),
            vec![("mac_addresses", b"52:54:00:aa:bb:cc")],
        ),
        ("create user, nothing", format!("{API}/users/"), vec![]),
        (
            "create user, no password",
            format!("{API}/users/"),
            vec![("username", b"u1"), ("email", b"u1@x")],
        ),
        (
            "create user, duplicate",
            format!("{API}/users/"),
            vec![
                ("username", b"admin"),
                ("password", b"x"),
                ("email", b"a@x"),
                ("is_superuser", b"0"),
            ],
        ),
        ("create zone, nothing", format!("{API}/zones/"), vec![]),
        (
            "create zone, blank",
            format!("{API}/zones/"),
            vec![("name", b"")],
        ),
        (
            "create zone, space",
            format!("{API}/zones/"),
            vec![("name", b"has space")],
        ),
        (
            "create zone, duplicate",
            format!("{API}/zones/"),
            vec![("name", b"default")],
        ),
        (
            "create pool, nothing",
            format!("{API}/resourcepools/"),
            vec![],
        ),
        ("create tag, nothing", format!("{API}/tags/"), vec![]),
        (
            "create tag, bad name",
            format!("{API}/tags/"),
            vec![("name", b"bad tag!")],
        ),
        ("create domain, nothing", format!("{API}/domains/"), vec![]),
        (
            "create fabric vlan, nothing",
            format!("{API}/fabrics/0/vlans/"),
            vec![],
        ),
        ("create subnet, nothing", format!("{API}/subnets/"), vec![]),
        (
            "create subnet, bad cidr",
            format!("{API}/subnets/"),
            vec![("cidr", b"10.0.0.0/99")],
        ),
        (
            "create iprange, nothing",
            format!("{API}/ipranges/"),
            vec![],
        ),
        (
            "create boot source, nothing",
            format!("{API}/boot-sources/"),
            vec![],
        ),
        (
            "create sshkey, nothing",
            format!("{API}/account/prefs/sshkeys/"),
            vec![],
        ),
        (
            "create sshkey, garbage",
            format!("{API}/account/prefs/sshkeys/"),
            vec![("key", b"not an ssh key")],
        ),
        (
            "set_config, nothing",
            format!("{API}/maas/?op=set_config"),
            vec![],
        ),
        (
            "set_config, unknown",
            format!("{API}/maas/?op=set_config"),
            vec![("name", b"no_such_setting"), ("value", b"1")],
        ),
        (
            "delete token, nothing",
            format!("{API}/account/?op=delete_authorisation_token"),
            vec![],
        ),
        (
            "delete token, unknown",
            format!("{API}/account/?op=delete_authorisation_token"),
            vec![("token_key", b"nope")],
        ),
        (
            "accept, unknown id",
            format!("{API}/machines/?op=accept"),
            vec![("machines", b"zzzzzz")],
        ),
        (
            "release many, unknown id",
            format!("{API}/machines/?op=release"),
            vec![("machines", b"zzzzzz")],
        ),
        (
            "clone, nothing",
            format!("{API}/machines/?op=clone"),
            vec![],
        ),
        (
            "clone, unknown source",
            format!("{API}/machines/?op=clone"),
            vec![("source", b"zzzzzz"), ("destinations", b"yyyyyy")],
        ),
        (
            "set_zone, nothing",
            format!("{API}/machines/?op=set_zone"),
            vec![],
        ),
    ];
    for (name, target, pairs) in &missing {
        add((*name).to_owned(), urlenc(a, "POST", target, pairs), None);
    }
    add(
        "get_config, nothing".into(),
        signed(a, "GET", &format!("{API}/maas/?op=get_config"), None, b""),
        None,
    );
    add(
        "is_registered without mac".into(),
        signed(
            a,
            "GET",
            &format!("{API}/machines/?op=is_registered"),
            None,
            b"",
        ),
        Some(400),
    );

    // --- huge bodies: over the limit → 413, however they are framed
    let big = vec![b'a'; LIMIT + 1];
    for (ctype, target) in [
        ("application/x-www-form-urlencoded", format!("{API}/zones/")),
        ("multipart/form-data; boundary=xyz", format!("{API}/zones/")),
        (
            "application/octet-stream",
            format!("{API}/machines/{r}/?op=deploy"),
        ),
        ("application/json", format!("{API}/machines/")),
    ] {
        add(
            format!("huge {ctype}"),
            signed(a, "POST", &target, Some(ctype), &big),
            Some(413),
        );
    }
    // Anonymous, and with a bad signature: the limit comes first.
    add(
        "huge anonymous".into(),
        build(
            "POST",
            &format!("{API}/machines/"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &big,
        ),
        Some(413),
    );
    // A Content-Length far beyond the limit with no body behind it: refused
    // from the header without waiting for the bytes.
    let mut lying = format!(
        "POST {API}/zones/ HTTP/1.1\r\nHost: maas.test\r\nConnection: close\r\nAuthorization: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000000\r\n\r\n",
        oauth_header(a)
    )
    .into_bytes();
    lying.extend_from_slice(b"name=x");
    add("content-length 10 GB".into(), lying, Some(413));
    // The same on the password login, outside the API router.
    let mut lying_login = b"POST /MAAS/accounts/authenticate/ HTTP/1.1\r\nHost: maas.test\r\n\
        Connection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n\
        Content-Length: 10000000000\r\n\r\n"
        .to_vec();
    lying_login.extend_from_slice(b"username=admin");
    add("login content-length 10 GB".into(), lying_login, Some(413));
    add(
        "login body over the limit".into(),
        build(
            "POST",
            "/MAAS/accounts/authenticate/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &big,
        ),
        Some(413),
    );
    // Chunked, no Content-Length: the limit still holds.
    let mut chunked = format!(
        "POST {API}/zones/ HTTP/1.1\r\nHost: maas.test\r\nConnection: close\r\nAuthorization: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
        oauth_header(a)
    )
    .into_bytes();
    for _ in 0..(LIMIT / 65536 + 2) {
        chunked.extend_from_slice(b"10000\r\n");
        chunked.extend(std::iter::repeat_n(b'b', 65536));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    add("chunked over the limit".into(), chunked, Some(413));
    // Under the limit but absurd values: ordinary validation errors.
    let half = "h".repeat(LIMIT / 2);
    add(
        "512 KiB hostname".into(),
        urlenc(
            a,
            "PUT",
            &format!("{API}/machines/{r}/"),
            &[("hostname", half.as_bytes())],
        ),
        Some(400),
    );
    add(
        "512 KiB zone name".into(),
        urlenc(
            a,
            "POST",
            &format!("{API}/zones/"),
            &[("name", half.as_bytes())],
        ),
        Some(400),
    );
    add(
        "32 KiB op".into(),
        signed(
            a,
            "POST",
            &format!("{API}/machines/?op={}", "x".repeat(32 * 1024)),
            None,
            b"",
        ),
        None,
    );

    // --- bad UTF-8 in query, body and multipart
    let junk_bytes: [&[u8]; 6] = [
        b"\xff\xfe",
        b"\xc3\x28",
        b"\xe2\x82",
        b"\xed\xa0\x80",
        b"abc\x80def",
        b"\xf8\x88\x80\x80\x80",
    ];
    for (i, j) in junk_bytes.iter().enumerate() {
        add(
            format!("bad utf-8 op #{i}"),
            signed(
                a,
                "GET",
                &format!("{API}/machines/?op={}", pct_bytes(j)),
                None,
                b"",
            ),
            Some(400),
        );
        add(
            format!("bad utf-8 hostname #{i}"),
            urlenc(
                a,
                "PUT",
                &format!("{API}/machines/{r}/"),
                &[("hostname", j)],
            ),
            Some(400),
        );
        add(
            format!("bad utf-8 zone name #{i}"),
            urlenc(a, "POST", &format!("{API}/zones/"), &[("name", j)]),
            Some(400),
        );
        add(
            format!("bad utf-8 status filter #{i}"),
            signed(
                a,
                "GET",
                &format!("{API}/machines/?status={}", pct_bytes(j)),
                None,
                b"",
            ),
            Some(400),
        );
        add(
            format!("bad utf-8 constraint #{i}"),
            urlenc(
                a,
                "POST",
                &format!("{API}/machines/?op=allocate"),
                &[("tags", j)],
            ),
            Some(400),
        );
        // Raw (not percent-encoded) invalid bytes in an urlencoded body.
        let mut body = b"name=".to_vec();
        body.extend_from_slice(j);
        add(
            format!("raw bad utf-8 body #{i}"),
            signed(
                a,
                "POST",
                &format!("{API}/zones/"),
                Some("application/x-www-form-urlencoded"),
                &body,
            ),
            Some(400),
        );
        let mut mp = b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n".to_vec();
        mp.extend_from_slice(j);
        mp.extend_from_slice(b"\r\n--B--\r\n");
        add(
            format!("bad utf-8 multipart value #{i}"),
            signed(
                a,
                "POST",
                &format!("{API}/zones/"),
                Some("multipart/form-data; boundary=B"),
                &mp,
            ),
            Some(400),
        );
        add(
            format!("bad utf-8 path #{i}"),
            signed(
                a,
                "GET",
                &format!("{API}/machines/{}/", pct_bytes(j)),
                None,
                b"",
            ),
            None,
        );
        add(
            format!("bad utf-8 user path #{i}"),
            signed(
                a,
                "DELETE",
                &format!("{API}/users/{}/", pct_bytes(j)),
                None,
                b"",
            ),
            None,
        );
    }

    // --- NUL characters in text (PostgreSQL cannot store them)
    for (method, target, field) in [
        ("PUT", format!("{API}/machines/{r}/"), "description"),
        ("PUT", format!("{API}/machines/{r}/"), "hostname"),
        ("POST", format!("{API}/zones/"), "name"),
        ("POST", format!("{API}/zones/"), "description"),
        ("POST", format!("{API}/tags/"), "comment"),
        ("POST", format!("{API}/users/"), "email"),
        ("POST", format!("{API}/account/prefs/sshkeys/"), "key"),
        ("POST", format!("{API}/machines/?op=allocate"), "name"),
        ("POST", format!("{API}/maas/?op=set_config"), "value"),
        ("GET", format!("{API}/machines/"), "hostname"),
    ] {
        let mut pairs: Vec<(&str, &[u8])> = vec![(field, b"a\0b")];
        if target.ends_with("/zones/") && field != "name" {
            pairs.push(("name", b"nul-zone"));
        }
        if target.ends_with("/tags/") {
            pairs.push(("name", b"nultag"));
        }
        if target.ends_with("/users/") {
            pairs.extend([
                ("username", &b"nuluser"[..]),
                ("password", b"pw"),
                ("is_superuser", b"0"),
            ]);
        }
        if target.contains("set_config") {
            pairs.push(("name", b"maas_name"));
        }
        let bytes = if method == "GET" {
            signed(a, "GET", &format!("{target}?{field}=a%00b"), None, b"")
        } else {
            urlenc(a, method, &target, &pairs)
        };
        add(
            format!("NUL in {method} {target} {field}"),
            bytes,
            Some(400),
        );
    }
    for p in [
        "users",
        "zones",
        "tags",
        "machines",
        "domains",
        "resourcepool",
        "boot-sources",
    ] {
        add(
            format!("NUL in path {p}"),
            signed(a, "GET", &format!("{API}/{p}/a%00b/"), None, b""),
            None,
        );
    }

    // --- bad op names on every resource and method
    let long_op = "op".repeat(2048);
    let bad_ops: Vec<&str> = vec![
        "nonexistent",
        "DEPLOY",
        "Deploy",
        "deploy\0",
        "../../etc/passwd",
        "%",
        " ",
        "op with spaces",
        &long_op,
        "read",
        "create",
        "update",
        "delete",
        "__init__",
        "<script>alert(1)</script>",
        "deploy;release",
        "\u{202e}yolped",
        "null",
        "None",
        "\u{1F4A5}",
    ];
    let paths = [
        format!("{API}/machines/"),
        format!("{API}/machines/{r}/"),
        format!("{API}/nodes/"),
        format!("{API}/nodes/{r}/"),
        format!("{API}/nodes/{r}/interfaces/"),
        format!("{API}/nodes/{r}/blockdevices/"),
        format!("{API}/users/"),
        format!("{API}/users/admin/"),
        format!("{API}/account/"),
        format!("{API}/account/prefs/sshkeys/"),
        format!("{API}/zones/"),
        format!("{API}/zones/default/"),
        format!("{API}/resourcepools/"),
        format!("{API}/tags/"),
        format!("{API}/domains/"),
        format!("{API}/fabrics/"),
        format!("{API}/subnets/"),
        format!("{API}/events/"),
        format!("{API}/maas/"),
        format!("{API}/boot-sources/"),
        format!("{API}/boot-resources/"),
        format!("{API}/version/"),
    ];
    for p in &paths {
        for op in &bad_ops {
            let method = *rng.pick(&["GET", "POST", "PUT", "DELETE"]);
            let in_body = method != "GET" && rng.below(2) == 0;
            let bytes = if in_body {
                urlenc(a, method, p, &[("op", op.as_bytes())])
            } else {
                signed(a, method, &format!("{p}?op={}", pct(op)), None, b"")
            };
            add(
                format!("{method} {p} op={:.40}", op.escape_debug()),
                bytes,
                None,
            );
        }
    }

    // --- bad and garbled OAuth headers (on an endpoint that needs a user)
    let target = format!("{API}/machines/");
    let ts = now_secs().to_string();
    let full = |ck: &str, tk: &str, sig: &str, ts: &str, nonce: &str, method: &str| {
        format!(
            "OAuth realm=\"OAuth\", oauth_nonce=\"{nonce}\", oauth_timestamp=\"{ts}\", \
             oauth_consumer_key=\"{ck}\", oauth_signature_method=\"{method}\", \
             oauth_version=\"1.0\", oauth_token=\"{tk}\", oauth_signature=\"{sig}\""
        )
    };
    let good_sig = format!("%26{}", a.secret);
    let mut headers: Vec<(String, String, u16)> = vec![
        ("empty".into(), String::new(), 401),
        ("just OAuth".into(), "OAuth".into(), 401),
        ("OAuth and space".into(), "OAuth ".into(), 401),
        ("Basic".into(), "Basic YWRtaW46cHctYWRtaW4=".into(), 401),
        ("Bearer".into(), format!("Bearer {}", a.token), 401),
        ("garbage".into(), "!!!!????".into(), 401),
        (
            "unbalanced quotes".into(),
            format!(
                "OAuth oauth_token=\"{}, oauth_signature=\"{good_sig}",
                a.token
            ),
            401,
        ),
        (
            "percent garbage".into(),
            full("%ZZ", "%ZZ", "%ZZ", &ts, &nonce(), "PLAINTEXT"),
            401,
        ),
        (
            "wrong signature".into(),
            full(&a.consumer, &a.token, "%26nope", &ts, &nonce(), "PLAINTEXT"),
            401,
        ),
        (
            "signature without &".into(),
            full(&a.consumer, &a.token, &a.secret, &ts, &nonce(), "PLAINTEXT"),
            401,
        ),
        (
            "unknown token".into(),
            full(
                &a.consumer,
                "nosuchtoken",
                &good_sig,
                &ts,
                &nonce(),
                "PLAINTEXT",
            ),
            401,
        ),
        (
            "wrong consumer".into(),
            full(
                "someoneelse",
                &a.token,
                &good_sig,
                &ts,
                &nonce(),
                "PLAINTEXT",
            ),
            401,
        ),
        (
            "alice's secret on admin's token".into(),
            full(
                &a.consumer,
                &a.token,
                &format!("%26{}", c.alice.secret),
                &ts,
                &nonce(),
                "PLAINTEXT",
            ),
            401,
        ),
        (
            "stale timestamp".into(),
            full(
                &a.consumer,
                &a.token,
                &good_sig,
                "1000000000",
                &nonce(),
                "PLAINTEXT",
            ),
            401,
        ),
        (
            "timestamp not a number".into(),
            full(
                &a.consumer,
                &a.token,
                &good_sig,
                "yesterday",
                &nonce(),
                "PLAINTEXT",
            ),
            400,
        ),
        (
            "HMAC-SHA1".into(),
            full(&a.consumer, &a.token, &good_sig, &ts, &nonce(), "HMAC-SHA1"),
            401,
        ),
        (
            "no method".into(),
            full(&a.consumer, &a.token, &good_sig, &ts, &nonce(), ""),
            401,
        ),
        (
            "64 KiB of OAuth".into(),
            format!("OAuth {}", "oauth_x=\"y\", ".repeat(4096)),
            401,
        ),
    ];
    for (i, drop) in [
        "oauth_consumer_key",
        "oauth_token",
        "oauth_signature",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_nonce",
    ]
    .iter()
    .enumerate()
    {
        let h = full(&a.consumer, &a.token, &good_sig, &ts, &nonce(), "PLAINTEXT");
        let kept: Vec<&str> = h
            .trim_start_matches("OAuth ")
            .split(", ")
            .filter(|p| !p.starts_with(drop))
            .collect();
        headers.push((
            format!("missing {drop} #{i}"),
            format!("OAuth {}", kept.join(", ")),
            401,
        ));
    }
    // Random single-character damage to the credentials themselves.
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for i in 0..300 {
        let which = rng.below(3);
        let mut parts = [
            a.consumer.clone().into_bytes(),
            a.token.clone().into_bytes(),
            a.secret.clone().into_bytes(),
        ];
        let p = &mut parts[which];
        let pos = rng.below(p.len());
        let old = p[pos];
        let mut new = *rng.pick(ALNUM);
        while new == old {
            new = *rng.pick(ALNUM);
        }
        p[pos] = new;
        let [ck, tk, ts_] = parts.map(|v| String::from_utf8(v).unwrap_or_default());
        let h = full(&ck, &tk, &format!("%26{ts_}"), &ts, &nonce(), "PLAINTEXT");
        headers.push((format!("garbled credential #{i} (part {which})"), h, 401));
    }
    // Random truncation before the signature's value ends.
    for i in 0..100 {
        let h = full(&a.consumer, &a.token, &good_sig, &ts, &nonce(), "PLAINTEXT");
        let cut = h.len() - 2 - rng.below(h.len() - 10);
        headers.push((
            format!("truncated header #{i} at {cut}"),
            h[..cut].to_owned(),
            401,
        ));
    }
    for (name, h, want) in headers {
        add(
            format!("oauth: {name}"),
            build("GET", &target, &[("Authorization", &h)], b""),
            Some(want),
        );
    }
    // Non-ASCII bytes in the header: credentials that cannot be read are
    // refused, not treated as anonymous.
    let mut nonascii = b"GET /MAAS/api/2.0/users/?op=whoami HTTP/1.1\r\nHost: maas.test\r\nConnection: close\r\nAuthorization: OAuth oauth_token=\"\xff\xfe\"\r\nContent-Length: 0\r\n\r\n".to_vec();
    add(
        "oauth: non-ASCII header".into(),
        std::mem::take(&mut nonascii),
        Some(401),
    );

    // --- bad multipart bodies (zone creation: nothing valid can come out)
    let mp_target = format!("{API}/zones/");
    let multiparts: Vec<(&str, &str, Vec<u8>)> = vec![
        ("no boundary", "multipart/form-data", b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nz1\r\n--B--\r\n".to_vec()),
        ("empty boundary", "multipart/form-data; boundary=", b"--\r\n\r\n".to_vec()),
        ("other boundary", "multipart/form-data; boundary=A", b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nz2\r\n--B--\r\n".to_vec()),
        ("truncated", "multipart/form-data; boundary=B", b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nz3".to_vec()),
        ("no closing", "multipart/form-data; boundary=B", b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nz4\r\n".to_vec()),
        ("no part headers end", "multipart/form-data; boundary=B", b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\nz5\r\n--B--\r\n".to_vec()),
        ("nameless part", "multipart/form-data; boundary=B", b"--B\r\nContent-Disposition: form-data\r\n\r\nz6\r\n--B--\r\n".to_vec()),
        ("bad base64 part", "multipart/form-data; boundary=B", b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n--B--\r\n".to_vec()),
        ("garbage", "multipart/form-data; boundary=B", b"\x00\x01\x02garbage\xff".to_vec()),
        ("only dashes", "multipart/form-data; boundary=B", b"------------".to_vec()),
        ("header junk", "multipart/form-data; boundary=B", b"--B\r\n\xff\xfe: \xff\r\n\r\nz7\r\n--B--\r\n".to_vec()),
        ("bad boundary chars", "multipart/form-data; boundary=\"\"\"", b"--\"\r\n\r\n".to_vec()),
    ];
    for (name, ctype, body) in &multiparts {
        add(
            format!("multipart: {name}"),
            signed(a, "POST", &mp_target, Some(ctype), body),
            Some(400),
        );
    }
    let long_b = "b".repeat(5000);
    add(
        "multipart: 5000-char boundary".into(),
        signed(
            a,
            "POST",
            &mp_target,
            Some(&format!("multipart/form-data; boundary={long_b}")),
            format!("--{long_b}\r\n\r\n").as_bytes(),
        ),
        Some(400),
    );
    // Random corruption of a valid multipart body, sent with an op that
    // does not exist so no parse of it can make the request valid.
    let valid_mp = b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nzone-x\r\n--BOUNDARY--\r\n".to_vec();
    let mp_corrupt_target = format!("{API}/zones/?op=no_such_op");
    for i in 0..60 {
        let mut b = valid_mp.clone();
        for _ in 0..1 + rng.below(4) {
            let pos = rng.below(b.len());
            b[pos] = (rng.next() & 0xff) as u8;
        }
        add(
            format!("multipart: corrupted #{i}"),
            signed(
                a,
                "POST",
                &mp_corrupt_target,
                Some("multipart/form-data; boundary=BOUNDARY"),
                &b,
            ),
            Some(400),
        );
    }

    // --- path junk
    let junk_paths = [
        "/MAAS/api/2.0/machines/../../../../etc/passwd".to_owned(),
        "/MAAS/api/2.0/machines/%2e%2e/%2e%2e/etc/passwd".into(),
        "/MAAS/api/2.0//machines//".into(),
        "/MAAS/api/2.0/machines/zzzzzz/".into(),
        "/MAAS/api/2.0/machines/ab/".into(),
        format!("/MAAS/api/2.0/machines/{}/", "x".repeat(3000)),
        format!("/MAAS/api/2.0/machines/{r}/extra/segments/"),
        format!("/MAAS/api/2.0/nodes/{r}/blockdevices/abc/"),
        format!("/MAAS/api/2.0/nodes/{r}/blockdevices/99999999999999999999999/"),
        format!("/MAAS/api/2.0/nodes/{r}/blockdevices/-1/partitions/"),
        format!("/MAAS/api/2.0/nodes/{r}/interfaces/18446744073709551616/"),
        "/MAAS/api/2.0/users/%00/".into(),
        "/MAAS/api/2.0/zones/%FF%FE/".into(),
        "/MAAS/api/2.0/resourcepool/abc/".into(),
        "/MAAS/api/2.0/resourcepool/-5/".into(),
        "/MAAS/api/2.0/boot-sources/abc/".into(),
        "/MAAS/api/2.0/fabrics/abc/vlans/".into(),
        "/MAAS/api/2.0/account/prefs/sshkeys/abc/".into(),
        "/MAAS/api/2.0/nonexistent/".into(),
        "/MAAS/api/2.0/".into(),
        "/MAAS/api/2.0".into(),
        "/MAAS/api/3.0/machines/".into(),
        "/MAAS/api/".into(),
        "/MAAS/".into(),
        "/".into(),
        "/etc/passwd".into(),
        "/MAAS/api/2.0/machines/%E2%80%AE/".into(),
        "/MAAS/api/2.0/machines/%F0%9F%92%A5/".into(),
        "/MAAS/api/2.0/machines/;DROP%20TABLE%20machine;/".into(),
        "/MAAS/api/2.0/machines/'%20OR%20'1'='1/".into(),
    ];
    for p in &junk_paths {
        for method in ["GET", "POST", "PUT", "DELETE"] {
            add(
                format!("path {method} {:.60}", p),
                signed(a, method, p, None, b""),
                None,
            );
        }
    }
    // Disallowed methods on the few non-API routes.
    for (m, p) in [
        ("POST", "/MAAS/api/version/"),
        ("DELETE", "/MAAS/api/2.0/describe/"),
        ("GET", "/MAAS/accounts/authenticate/"),
        ("PUT", "/metrics"),
    ] {
        add(format!("method {m} {p}"), build(m, p, &[], b""), Some(405));
    }
    // Password login with junk.
    for (name, body) in [
        ("no fields", b"".to_vec()),
        ("wrong password", b"username=admin&password=wrong".to_vec()),
        ("unknown user", b"username=nobody&password=x".to_vec()),
        ("bad utf-8", b"username=\xff&password=\xfe".to_vec()),
        ("node user", b"username=maas-init-node&password=".to_vec()),
    ] {
        add(
            format!("login: {name}"),
            build(
                "POST",
                "/MAAS/accounts/authenticate/",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                &body,
            ),
            Some(403),
        );
    }
    out
}

fn healthy(m: &mut Maasd, c: &Ctx) {
    assert!(m.is_alive(), "maasd died");
    let (status, _, body) = m.get("/MAAS/api/2.0/version/").unwrap();
    assert_eq!(status, 200, "{body}");
    let admin = Client::new(&m.addr, Some(c.admin.clone()));
    let r = admin.get("/MAAS/api/2.0/machines/").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().unwrap().as_array().map(Vec::len), Some(2));
    let r = Client::new(&m.addr, Some(c.alice.clone()))
        .get("/MAAS/api/2.0/users/?op=whoami")
        .unwrap();
    assert_eq!(r.json().unwrap()["username"], "alice");
    // The fixtures are untouched by the whole corpus.
    let r = admin
        .get(&format!("/MAAS/api/2.0/machines/{}/", c.ready))
        .unwrap();
    let j = r.json().unwrap();
    assert_eq!(
        (j["status_name"].as_str(), j["hostname"].as_str()),
        (Some("Ready"), Some("ready-1"))
    );
    assert_eq!(j["cpu_count"], 2);
    let r = admin
        .get(&format!("/MAAS/api/2.0/machines/{}/", c.deployed))
        .unwrap();
    assert_eq!(r.json().unwrap()["status_name"], "Deployed");
    // A normal write still works.
    let r = admin
        .post("/MAAS/api/2.0/zones/", &[("name", "after-the-storm")])
        .unwrap();
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
}

fn run(m: &mut Maasd) {
    let admin = ApiKey::parse(&m.admin_key("admin", "pw-admin").unwrap()).unwrap();
    let alice = m.create_user(&admin, "alice", "pw-alice", false).unwrap();
    let mut ready = machine_spec(1, "ready-1");
    ready["power_type"] = json!("manual");
    let mut deployed = machine_spec(2, "deployed-1");
    deployed["status"] = json!("DEPLOYED");
    deployed["owner"] = json!("alice");
    let ids = m.load_machines(&json!([ready, deployed])).unwrap();
    let c = Ctx {
        admin,
        alice,
        ready: ids[0].clone(),
        deployed: ids[1].clone(),
    };
    let corpus = corpus(&c);
    assert!(corpus.len() >= 1000, "only {} requests", corpus.len());
    let addr = m.addr.clone();
    let answers = par_map(corpus.iter().collect(), 16, |b| raw(&addr, &b.bytes));
    let mut failures = Vec::new();
    let mut by_code = std::collections::BTreeMap::new();
    for (b, a) in corpus.iter().zip(&answers) {
        match a {
            Err(e) => failures.push(format!("{}: no answer: {e:#}", b.name)),
            Ok(r) => {
                *by_code.entry(r.status).or_insert(0) += 1;
                let msg = r.text();
                if !(400..500).contains(&r.status) {
                    failures.push(format!("{}: HTTP {} {msg:.200}", b.name, r.status));
                } else if msg.trim().is_empty() {
                    failures.push(format!("{}: HTTP {} without a message", b.name, r.status));
                } else if let Some(w) = b.want
                    && r.status != w
                {
                    failures.push(format!(
                        "{}: HTTP {} (want {w}) {msg:.200}",
                        b.name, r.status
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} malformed requests misanswered:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} malformed requests, answers by code: {by_code:?}",
        corpus.len()
    );
    // A nonce used twice: the replay is refused (in order, after the rest).
    let replay = oauth_header(&c.admin);
    let first = raw(
        &m.addr,
        &build(
            "GET",
            "/MAAS/api/2.0/users/?op=whoami",
            &[("Authorization", &replay)],
            b"",
        ),
    )
    .unwrap();
    assert_eq!(first.status, 200, "{}", first.text());
    let again = raw(
        &m.addr,
        &build(
            "GET",
            "/MAAS/api/2.0/users/?op=whoami",
            &[("Authorization", &replay)],
            b"",
        ),
    )
    .unwrap();
    assert_eq!(again.status, 401, "{}", again.text());
    healthy(m, &c);
}

fn opts(db: Option<String>) -> StartOpts {
    StartOpts {
        database_url: db,
        args: vec!["--max-body-bytes".into(), LIMIT.to_string()],
        ..Default::default()
    }
}

#[test]
fn malformed_requests_on_sqlite() {
    let mut m = Maasd::start_opts(&maasd_binary().unwrap(), &opts(None)).unwrap();
    run(&mut m);
}

#[test]
fn malformed_requests_on_postgres() {
    let pg = Postgres::start().unwrap();
    let mut m = Maasd::start_opts(&maasd_binary().unwrap(), &opts(Some(pg.url()))).unwrap();
    run(&mut m);
}

#[test]
fn body_limit_is_configurable_and_defaults_to_something_sane() {
    // Default limit: a 1 MiB body is fine (400 for its content), a body
    // over the default is 413.
    let m = Maasd::start_opts(&maasd_binary().unwrap(), &StartOpts::default()).unwrap();
    let admin = ApiKey::parse(&m.admin_key("admin", "pw").unwrap()).unwrap();
    let mid = vec![b'a'; 1 << 20];
    let r = raw(
        &m.addr,
        &signed(
            &admin,
            "POST",
            "/MAAS/api/2.0/zones/",
            Some("application/x-www-form-urlencoded"),
            &mid,
        ),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let huge = vec![b'a'; (64 << 20) + 1];
    let r = raw(
        &m.addr,
        &signed(
            &admin,
            "POST",
            "/MAAS/api/2.0/zones/",
            Some("application/x-www-form-urlencoded"),
            &huge,
        ),
    )
    .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(!r.text().trim().is_empty());
    // A small configured limit applies.
    let small = StartOpts {
        args: vec!["--max-body-bytes".into(), "100".into()],
        ..Default::default()
    };
    let m2 = Maasd::start_opts(&maasd_binary().unwrap(), &small).unwrap();
    let admin2 = ApiKey::parse(&m2.admin_key("admin", "pw").unwrap()).unwrap();
    let r = Client::new(&m2.addr, Some(admin2.clone()))
        .post("/MAAS/api/2.0/zones/", &[("name", &"z".repeat(200))])
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    let r = Client::new(&m2.addr, Some(admin2))
        .post("/MAAS/api/2.0/zones/", &[("name", "small")])
        .unwrap();
    assert!((200..300).contains(&r.status), "{} {}", r.status, r.text());
}
