//! Secrets: BMC passwords, API token secrets and user passwords never
//! appear in `maasd`'s log (run at trace level, debug and all, through a full session:
//! machine creation with IPMI/Redfish credentials, updates, logins, token
//! creation, the node token, allocation, deploy, release, failed logins and
//! bad signatures), in the event log, or in any API output to a
//! non-administrator; as in MAAS, only an admin reads power parameters
//! (`op=power_parameters`) and the machine JSON never carries them.

use maas_e2e::harden::{ApiKey, Client, Resp, StartOpts, build, nonce, now_secs, raw};
use maas_e2e::{Maasd, maasd_binary};

fn ok(r: &Resp, what: &str) {
    assert!(
        (200..300).contains(&r.status),
        "{what}: HTTP {} {}",
        r.status,
        r.text()
    );
}

#[test]
fn secrets_stay_out_of_logs_events_and_non_admin_output() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("maasd.log");
    let opts = StartOpts {
        log_filter: Some("trace".into()),
        log_file: Some(log.clone()),
        ..Default::default()
    };
    let mut m = Maasd::start_opts(&maasd_binary().unwrap(), &opts).unwrap();
    let tag = nonce().replace('-', "");
    let admin_pw = format!("AdminPw{tag}");
    let alice_pw = format!("AlicePw{tag}");
    let bmc1 = format!("BmcIpmiPass{tag}");
    let bmc2 = format!("BmcRedfishPass{tag}");
    let bmc3 = format!("BmcRotatedPass{tag}");
    let wrong_pw = format!("WrongPw{tag}");

    let admin = ApiKey::parse(&m.admin_key("admin", &admin_pw).unwrap()).unwrap();
    let alice = m.create_user(&admin, "alice", &alice_pw, false).unwrap();
    let adm = Client::new(&m.addr, Some(admin.clone()));
    let ali = Client::new(&m.addr, Some(alice.clone()));
    // Everything alice is sent, to search afterwards.
    let mut to_alice: Vec<Resp> = Vec::new();
    let mut secrets = vec![
        admin_pw.clone(),
        alice_pw.clone(),
        bmc1.clone(),
        bmc2.clone(),
        bmc3.clone(),
        wrong_pw.clone(),
        admin.secret.clone(),
        alice.secret.clone(),
    ];

    // Machines with BMC credentials, flattened and as JSON.
    let r = adm
        .post(
            "/MAAS/api/2.0/machines/",
            &[
                ("architecture", "amd64"),
                ("mac_addresses", "52:54:00:5e:c0:01"),
                ("hostname", "ipmi-1"),
                ("commission", "false"),
                ("power_type", "ipmi"),
                ("power_parameters_power_address", "127.0.0.1"),
                ("power_parameters_power_user", "root"),
                ("power_parameters_power_pass", &bmc1),
            ],
        )
        .unwrap();
    ok(&r, "create ipmi machine");
    let ipmi = r.json().unwrap()["system_id"].as_str().unwrap().to_owned();
    let redfish_params = format!(
        "{{\"power_address\": \"127.0.0.1:8000\", \"power_user\": \"admin\", \"power_pass\": \"{bmc2}\"}}"
    );
    let r = adm
        .post(
            "/MAAS/api/2.0/machines/",
            &[
                ("architecture", "amd64"),
                ("mac_addresses", "52:54:00:5e:c0:02"),
                ("hostname", "redfish-1"),
                ("commission", "false"),
                ("power_type", "redfish"),
                ("power_parameters", &redfish_params),
            ],
        )
        .unwrap();
    ok(&r, "create redfish machine");
    let redfish = r.json().unwrap()["system_id"].as_str().unwrap().to_owned();
    // Rotate a password, and a refused update that carries one.
    ok(
        &adm.put(
            &format!("/MAAS/api/2.0/machines/{ipmi}/"),
            &[("power_parameters_power_pass", &bmc3)],
        )
        .unwrap(),
        "rotate",
    );
    let r = adm
        .put(
            &format!("/MAAS/api/2.0/machines/{redfish}/"),
            &[
                ("power_type", "ipmi"),
                (
                    "power_parameters",
                    &format!("{{\"power_pass\": \"{bmc3}\"}}"),
                ),
            ],
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(!r.text().contains(&bmc3), "the refusal echoes the password");

    // The admin sees power parameters where MAAS shows them: the proof
    // that the secrets are stored, so their absence elsewhere means
    // something.
    let r = adm
        .get(&format!(
            "/MAAS/api/2.0/machines/{ipmi}/?op=power_parameters"
        ))
        .unwrap();
    ok(&r, "admin power_parameters");
    assert_eq!(r.json().unwrap()["power_pass"], bmc3.as_str());
    let r = adm
        .get(&format!(
            "/MAAS/api/2.0/machines/?op=power_parameters&id={redfish}"
        ))
        .unwrap();
    assert!(r.text().contains(&bmc2), "{}", r.text());

    // Tokens: a login, new tokens, the node token.
    let r = raw(
        &m.addr,
        &build(
            "POST",
            "/MAAS/accounts/authenticate/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            format!("username=alice&password={alice_pw}&consumer=cli").as_bytes(),
        ),
    )
    .unwrap();
    ok(&r, "login");
    let login_secret = r.json().unwrap()["token_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(login_secret.clone());
    let r = raw(
        &m.addr,
        &build(
            "POST",
            "/MAAS/accounts/authenticate/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            format!("username=alice&password={wrong_pw}").as_bytes(),
        ),
    )
    .unwrap();
    assert_eq!(r.status, 403);
    to_alice.push(r);
    let r = ali
        .post(
            "/MAAS/api/2.0/account/?op=create_authorisation_token",
            &[("name", "second")],
        )
        .unwrap();
    ok(&r, "create token");
    let second = r.json().unwrap()["token_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(second.clone());
    to_alice.push(r);
    let r = adm
        .post(
            "/MAAS/api/2.0/account/?op=create_authorisation_token",
            &[("name", "admin-2")],
        )
        .unwrap();
    ok(&r, "admin token");
    let admin_second = r.json().unwrap()["token_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(admin_second.clone());
    let r = adm
        .get(&format!("/MAAS/api/2.0/machines/{ipmi}/?op=get_token"))
        .unwrap();
    ok(&r, "node token");
    let node_secret = r.json().unwrap()["token_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(node_secret);

    // A bad signature and a garbled header that carry real secrets.
    for auth in [
        format!(
            "OAuth oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}x\", \
             oauth_signature_method=\"PLAINTEXT\", oauth_timestamp=\"{}\", oauth_nonce=\"{}\"",
            alice.consumer,
            alice.token,
            alice.secret,
            now_secs(),
            nonce()
        ),
        format!("OAuth {} {}", alice.secret, bmc1),
    ] {
        let r = raw(
            &m.addr,
            &build(
                "GET",
                "/MAAS/api/2.0/machines/",
                &[("Authorization", &auth)],
                b"",
            ),
        )
        .unwrap();
        assert_eq!(r.status, 401);
        to_alice.push(r);
    }

    // Alice's ordinary session: list, read, the ops she may and may not use.
    for target in [
        "/MAAS/api/2.0/machines/".to_owned(),
        format!("/MAAS/api/2.0/machines/{ipmi}/"),
        format!("/MAAS/api/2.0/machines/{redfish}/"),
        format!("/MAAS/api/2.0/machines/{ipmi}/?op=power_parameters"),
        format!("/MAAS/api/2.0/machines/?op=power_parameters&id={ipmi}"),
        format!("/MAAS/api/2.0/machines/{ipmi}/?op=get_token"),
        format!("/MAAS/api/2.0/machines/{ipmi}/?op=details"),
        format!("/MAAS/api/2.0/machines/{ipmi}/?op=query_power_state"),
        "/MAAS/api/2.0/nodes/".to_owned(),
        "/MAAS/api/2.0/account/?op=list_authorisation_tokens".to_owned(),
        "/MAAS/api/2.0/users/".to_owned(),
        "/MAAS/api/2.0/users/admin/".to_owned(),
        "/MAAS/api/2.0/events/?op=query".to_owned(),
        "/MAAS/api/2.0/maas/?op=get_config&name=maas_name".to_owned(),
    ] {
        to_alice.push(ali.get(&target).unwrap());
    }
    for op in ["power_parameters", "get_token"] {
        let r = ali
            .get(&format!("/MAAS/api/2.0/machines/{ipmi}/?op={op}"))
            .unwrap();
        assert_eq!(r.status, 403, "alice {op}: {}", r.text());
    }
    // Alice's token list holds her tokens only.
    let r = ali
        .get("/MAAS/api/2.0/account/?op=list_authorisation_tokens")
        .unwrap();
    assert!(r.text().contains(&second), "{}", r.text());
    assert!(!r.text().contains(&admin_second) && !r.text().contains(&admin.secret));
    // Alice allocates, deploys and releases a Ready machine that has BMC
    // credentials: the answers and events carry none of them.
    let mut spec = maas_e2e::harden::machine_spec(7, "ready-ipmi");
    spec["power_type"] = serde_json::json!("ipmi");
    spec["power_parameters"] =
        serde_json::json!({"power_address": "127.0.0.1", "power_user": "root", "power_pass": bmc1});
    let ready = m
        .load_machines(&serde_json::json!([spec]))
        .unwrap()
        .remove(0);
    let r = ali
        .post(
            "/MAAS/api/2.0/machines/?op=allocate",
            &[("system_id", &ready)],
        )
        .unwrap();
    ok(&r, "allocate");
    to_alice.push(r);
    for op in ["deploy", "power_off", "release"] {
        let r = ali
            .post(&format!("/MAAS/api/2.0/machines/{ready}/?op={op}"), &[])
            .unwrap();
        ok(&r, op);
        to_alice.push(r);
    }
    to_alice.push(
        ali.get(&format!("/MAAS/api/2.0/machines/{ready}/"))
            .unwrap(),
    );
    to_alice.push(ali.get("/MAAS/api/2.0/machines/").unwrap());
    // Her own credentials may be shown to her (her token list); nobody
    // else's, no password, no BMC secret.
    let hers = [alice.secret.clone(), second.clone(), login_secret.clone()];
    for r in &to_alice {
        let text = r.text();
        for s in secrets.iter().filter(|s| !hers.contains(s)) {
            assert!(
                !text.contains(s.as_str()),
                "alice was sent a secret (HTTP {}): {text:.300}",
                r.status
            );
        }
    }
    // The machine JSON carries no power parameters, even for the admin.
    for id in [&ipmi, &redfish] {
        let t = adm
            .get(&format!("/MAAS/api/2.0/machines/{id}/"))
            .unwrap()
            .text();
        for s in [&bmc1, &bmc2, &bmc3] {
            assert!(!t.contains(s.as_str()), "machine JSON shows a BMC password");
        }
    }

    // Events.
    let ev = adm
        .get("/MAAS/api/2.0/events/?op=query&limit=1000")
        .unwrap()
        .text();
    for s in &secrets {
        assert!(!ev.contains(s.as_str()), "an event holds a secret");
    }

    // The debug log of the whole session.
    let _ = adm.get("/MAAS/api/2.0/version/");
    drop(ali);
    assert!(m.is_alive());
    drop(m);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("DEBUG") && text.contains("/MAAS/api/2.0/machines/"),
        "the debug log does not trace requests, so this test proves nothing:\n{text:.2000}"
    );
    for s in &secrets {
        assert!(
            !text.contains(s.as_str()),
            "the log holds a secret: {}",
            text.lines()
                .find(|l| l.contains(s.as_str()))
                .unwrap_or_default()
        );
    }
    eprintln!(
        "{} log lines, {} secrets checked",
        text.lines().count(),
        secrets.len()
    );
}
