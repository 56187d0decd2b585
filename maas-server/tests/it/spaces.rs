//! Spaces and static routes through the app: a VLAN's space in the VLAN,
//! subnet and space JSON, and the route in a deployed machine's curtin
//! configuration, as v2 on Ubuntu.

use serde_json::{Value, json};

use crate::Fixture;

const API: &str = "/MAAS/api/2.0";

async fn ok(f: &Fixture, method: &str, path: &str, form: &str) -> Value {
    let uri = format!("{API}/{path}");
    let (s, b) = match method {
        "GET" => f.get(&uri).await,
        "POST" => f.post(&uri, form).await,
        "PUT" => f.put(&uri, form).await,
        _ => unreachable!(),
    };
    assert_eq!(s, 200, "{method} {path} {form}: {b}");
    serde_json::from_str(&b).unwrap_or(Value::String(b))
}

#[tokio::test]
async fn a_spaced_vlan_and_a_routed_deployed_machine() {
    let f = Fixture::new();
    let src = ok(
        &f,
        "POST",
        "subnets/",
        "cidr=10.30.0.0%2F24&gateway_ip=10.30.0.1",
    )
    .await;
    let dst = ok(&f, "POST", "subnets/", "cidr=172.30.0.0%2F16").await;
    let fabrics = ok(&f, "GET", "fabrics/", "").await;
    let fid = fabrics[0]["id"].as_i64().unwrap();
    let space = ok(&f, "POST", "spaces/", "name=storage").await;
    let v = ok(
        &f,
        "PUT",
        &format!("fabrics/{fid}/vlans/0/"),
        &format!("space={}", space["id"]),
    )
    .await;
    assert_eq!(v["space"], "storage");
    let tagged = ok(
        &f,
        "POST",
        &format!("fabrics/{fid}/vlans/"),
        "vid=42&space=storage",
    )
    .await;
    assert_eq!(tagged["space"], "storage");
    let (s, b) = f
        .post(
            &format!("{API}/fabrics/{fid}/vlans/"),
            "vid=43&space=nosuch",
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("\"space\""), "{b}");
    let sub = ok(&f, "GET", &format!("subnets/{}/", src["id"]), "").await;
    assert_eq!(sub["space"], "storage");
    assert_eq!(sub["vlan"]["space"], "storage");
    assert_eq!(sub["vlan"]["fabric"], fabrics[0]["name"]);
    let sp = ok(&f, "GET", "spaces/storage/", "").await;
    let vids: Vec<i64> = sp["vlans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vid"].as_i64().unwrap())
        .collect();
    assert_eq!(vids, [0, 42]);
    let cidrs: Vec<&str> = sp["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cidr"].as_str().unwrap())
        .collect();
    assert_eq!(cidrs, ["10.30.0.0/24", "172.30.0.0/16"]);

    let route = ok(
        &f,
        "POST",
        "static-routes/",
        &format!(
            "source={}&destination=172.30.0.0%2F16&gateway_ip=10.30.0.9",
            src["id"]
        ),
    )
    .await;
    assert_eq!(route["metric"], 0);
    assert_eq!(route["destination"]["id"], dst["id"]);

    let specs: Vec<maas_server::seed::MachineSpec> = serde_json::from_value(json!([{
        "hostname": "routed", "status": "deployed", "owner": "admin",
        "disks": [{"name": "sda", "size": 20_000_000_000u64}],
        "nics": [{"name": "eth0", "mac": "52:54:00:77:00:01",
                  "links": [{"mode": "static", "subnet": "10.30.0.0/24", "ip": "10.30.0.20"}]}],
    }]))
    .unwrap();
    let ids = {
        let mut conn = f.state.pool.get().unwrap();
        maas_server::seed::load(&mut conn, &specs, 0).unwrap()
    };
    let m = ok(&f, "GET", &format!("machines/{}/", ids[0]), "").await;
    assert_eq!(m["interface_set"][0]["vlan"]["space"], "storage", "{m}");
    let cfg = ok(
        &f,
        "GET",
        &format!("machines/{}/?op=get_curtin_config", ids[0]),
        "",
    )
    .await;
    let cfg = cfg.as_str().unwrap();
    assert!(
        cfg.contains(concat!(
            "      routes:\n",
            "      - to: default\n",
            "        via: \"10.30.0.1\"\n",
            "      - metric: 0\n",
            "        to: \"172.30.0.0/16\"\n",
            "        via: \"10.30.0.9\"\n",
        )),
        "{cfg}"
    );

    // A link on a subnet the route does not leave from gets nothing.
    let (s, _) = f
        .put(
            &format!("{API}/static-routes/{}/", route["id"]),
            &format!(
                "source={}&destination=10.30.0.0%2F24&gateway_ip=172.30.0.1",
                dst["id"]
            ),
        )
        .await;
    assert_eq!(s, 200);
    let cfg = ok(
        &f,
        "GET",
        &format!("machines/{}/?op=get_curtin_config", ids[0]),
        "",
    )
    .await;
    assert!(!cfg.as_str().unwrap().contains("metric:"), "{cfg}");
}
