//! The OpenAPI 3.0 document of the API (beyond MAAS), generated from the
//! same route table that serves requests and generates `describe`, so it
//! cannot drift from what the server answers.
//!
//! MAAS multiplexes operations on one path and method through the `op`
//! parameter (`POST machines/?op=allocate`). OpenAPI allows one operation
//! per path and method, so each (path, method) pair becomes one operation
//! whose `op` query parameter enumerates the ops; it is optional when the
//! plain CRUD action exists on that method too.

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::{ActionSpec, ResourceSpec};

/// One (path, method) operation being assembled.
#[derive(Default)]
struct Operation<'a> {
    /// The CRUD action without `op`, when there is one.
    restful: Option<&'a ActionSpec>,
    /// `op` actions, by op name.
    ops: BTreeMap<&'static str, &'a ActionSpec>,
    /// Whether an anonymous handler serves some of it.
    anonymous: bool,
    /// Whether an authenticated handler serves some of it.
    authenticated: bool,
}

fn method_key(m: &Method) -> Option<&'static str> {
    Some(match *m {
        Method::GET => "get",
        Method::POST => "post",
        Method::PUT => "put",
        Method::DELETE => "delete",
        _ => return None,
    })
}

fn first_line(doc: &str) -> &str {
    doc.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

fn operation_json(resource: &ResourceSpec, method: &str, op: &Operation<'_>) -> Value {
    let mut description = String::new();
    if let Some(a) = op.restful {
        description.push_str(&format!("Without `op` ({}): {}\n\n", a.name, a.doc.trim()));
    }
    for (name, a) in &op.ops {
        description.push_str(&format!("`op={name}`: {}\n\n", a.doc.trim()));
    }
    let summary = match (op.restful, op.ops.values().next()) {
        (Some(a), _) => first_line(a.doc).to_owned(),
        (None, Some(a)) if op.ops.len() == 1 => first_line(a.doc).to_owned(),
        _ => format!(
            "{} operations: {}",
            resource.name,
            op.ops.keys().copied().collect::<Vec<_>>().join(", ")
        ),
    };
    let mut parameters = Vec::new();
    if !op.ops.is_empty() {
        parameters.push(json!({
            "name": "op",
            "in": "query",
            "required": op.restful.is_none(),
            "description": "The operation (MAAS's `op`); also accepted in a form body.",
            "schema": {"type": "string", "enum": op.ops.keys().collect::<Vec<_>>()},
        }));
    }
    let mut o = json!({
        "operationId": format!("{}_{method}", resource.name),
        "summary": summary,
        "description": description.trim_end(),
        "tags": [resource.name],
        "responses": {
            "200": {"description": "The object or list as JSON (MAAS's shapes)."},
            "204": {"description": "Deleted."},
            "400": {"description": "Bad input: a field→messages object, or text."},
            "401": {"description": "Not authenticated."},
            "403": {"description": "Not allowed."},
            "404": {"description": "No such object."},
            "409": {"description": "The object's state does not allow the operation."},
        },
    });
    if let Some(map) = o.as_object_mut() {
        if !parameters.is_empty() {
            map.insert("parameters".into(), Value::Array(parameters));
        }
        // MAAS reads form bodies on POST and PUT; GET and DELETE carry
        // their parameters in the query string.
        if matches!(method, "post" | "put") {
            map.insert(
                "requestBody".into(),
                json!({
                    "required": false,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": true}},
                        "multipart/form-data": {"schema": {"type": "object", "additionalProperties": true}},
                    },
                }),
            );
        }
        let security = match (op.anonymous, op.authenticated) {
            (true, true) => json!([{}, {"oauth": []}]),
            (true, false) => json!([{}]),
            _ => json!([{"oauth": []}]),
        };
        map.insert("security".into(), security);
    }
    o
}

/// The OpenAPI document of `resources`, served at `base` (`http://host:port`).
pub fn document(resources: &[ResourceSpec], base: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut sorted: Vec<&ResourceSpec> = resources.iter().collect();
    sorted.sort_by_key(|r| r.path);
    for r in sorted {
        let mut ops: BTreeMap<&'static str, Operation<'_>> = BTreeMap::new();
        let handlers = [(r.anon.as_ref(), true), (r.auth.as_ref(), false)];
        for (h, anonymous) in handlers {
            let Some(h) = h else { continue };
            for a in &h.actions {
                let Some(m) = method_key(&a.method) else {
                    continue;
                };
                let op = ops.entry(m).or_default();
                if anonymous {
                    op.anonymous = true;
                } else {
                    op.authenticated = true;
                }
                match a.op {
                    None => {
                        op.restful.get_or_insert(a);
                    }
                    Some(name) => {
                        op.ops.entry(name).or_insert(a);
                    }
                }
            }
        }
        let mut item = Map::new();
        if !r.params.is_empty() {
            item.insert(
                "parameters".into(),
                Value::Array(
                    r.params
                        .iter()
                        .map(|p| {
                            json!({
                                "name": p,
                                "in": "path",
                                "required": true,
                                "schema": {"type": "string"},
                            })
                        })
                        .collect(),
                ),
            );
        }
        for (m, op) in &ops {
            item.insert((*m).to_owned(), operation_json(r, m, op));
        }
        paths.insert(r.path.to_owned(), Value::Object(item));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "MAAS API",
            "version": version,
            "description": "MAAS REST API 2.0 as served by maasd, generated from its route table (the same table that serves `describe`).",
        },
        "servers": [{"url": if base.is_empty() { "/".to_owned() } else { base.to_owned() }}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "oauth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "OAuth 1.0 PLAINTEXT: `OAuth oauth_consumer_key=…, oauth_token=…, oauth_signature=&<token_secret>, oauth_nonce=…, oauth_timestamp=…` (the API key is consumer_key:token_key:token_secret).",
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_describe_action_is_an_openapi_operation() {
        let api = super::super::Api::new();
        let doc = document(&api.resources, "http://maas.example:5240", "3.6.0");
        assert_eq!(doc["openapi"], "3.0.3");
        let mut n = 0;
        for r in &api.resources {
            let item = &doc["paths"][r.path];
            assert!(item.is_object(), "{} missing", r.path);
            for h in r.anon.iter().chain(r.auth.iter()) {
                for a in &h.actions {
                    let m = method_key(&a.method).expect("only CRUD methods in the table");
                    let o = &item[m];
                    assert!(o.is_object(), "{} {m} missing", r.path);
                    if let Some(op) = a.op {
                        let ops = o["parameters"][0]["schema"]["enum"]
                            .as_array()
                            .expect("op enum");
                        assert!(ops.iter().any(|x| x == op), "{} {m} op={op}", r.path);
                    }
                    n += 1;
                }
            }
        }
        assert!(n > 50, "only {n} actions");
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .flat_map(|i| i.as_object().expect("item").values())
            .filter_map(|o| o["operationId"].as_str())
            .collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "operationIds are unique");
    }

    #[test]
    fn machines_collection_has_allocate_and_plain_read() {
        let api = super::super::Api::new();
        let doc = document(&api.resources, "", "3.6.0");
        let get = &doc["paths"]["/MAAS/api/2.0/machines/"]["get"];
        assert_eq!(get["parameters"][0]["required"], false, "plain GET exists");
        let post = &doc["paths"]["/MAAS/api/2.0/machines/"]["post"];
        let ops = post["parameters"][0]["schema"]["enum"].to_string();
        assert!(ops.contains("\"allocate\""), "{ops}");
        let one = &doc["paths"]["/MAAS/api/2.0/machines/{system_id}/"];
        assert_eq!(one["parameters"][0]["name"], "system_id");
        assert_eq!(one["parameters"][0]["in"], "path");
    }
}
