//! The transition table equals MAAS's, cell for cell, and every export
//! format says the same thing.

use std::collections::{BTreeMap, BTreeSet};

use maas_core::NodeStatus;
use maas_core::lifecycle::{self, CREATION_TARGETS, ExportFormat};

const FIXTURE: &str = include_str!("../data/maas_transitions.txt");

fn fixture() -> BTreeMap<String, BTreeSet<String>> {
    FIXTURE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (from, to) = l.split_once(':').expect("FROM: targets");
            let targets = to
                .split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect();
            (from.trim().to_owned(), targets)
        })
        .collect()
}

#[test]
fn every_pair_matches_maas() {
    let fx = fixture();
    assert_eq!(fx.len(), 24, "23 statuses plus (creation)");
    let mut checked = 0;
    for from in NodeStatus::ALL {
        let allowed = &fx[from.name()];
        for to in NodeStatus::ALL {
            let want = from == to || allowed.contains(to.name());
            assert_eq!(
                lifecycle::can_transition(from, to),
                want,
                "{} -> {}",
                from.name(),
                to.name()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 23 * 23);
    let creation: BTreeSet<String> = CREATION_TARGETS
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    assert_eq!(creation, fx["(creation)"]);
}

#[test]
fn refusal_text_is_maas_wording() {
    let e = lifecycle::check_transition(NodeStatus::Ready, NodeStatus::Deployed).unwrap_err();
    assert_eq!(e.to_string(), "Invalid transition: Ready -> Deployed.");
}

#[test]
fn json_export_matches_the_table() {
    let v: serde_json::Value =
        serde_json::from_str(&lifecycle::export(ExportFormat::Json)).unwrap();
    let fx = fixture();
    for from in NodeStatus::ALL {
        let got: BTreeSet<String> = v["transitions"][from.name()]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        let mut want = fx[from.name()].clone();
        want.remove(from.name()); // self-loops are implicit in the export
        let mut got_no_self = got.clone();
        got_no_self.remove(from.name());
        assert_eq!(got_no_self, want, "{}", from.name());
    }
    assert_eq!(v["statuses"][13]["label"], "Releasing failed");
    assert_eq!(v["failure"]["TESTING"], "FAILED_TESTING");
    assert_eq!(v["allocated_like"].as_array().unwrap().len(), 15);
}

#[test]
fn markdown_export_round_trips_to_the_fixture() {
    let md = lifecycle::export(ExportFormat::Markdown);
    let fx = fixture();
    let rows: Vec<&str> = md.lines().skip(2).collect();
    assert_eq!(rows.len(), 24);
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let from = cells[0].split_whitespace().next().unwrap();
        let targets: BTreeSet<String> = cells[1].split(", ").map(str::to_owned).collect();
        assert_eq!(targets, fx[from], "{from}");
    }
}

#[test]
fn graph_exports_have_one_edge_per_allowed_pair() {
    let edges: usize = NodeStatus::ALL
        .iter()
        .map(|s| lifecycle::allowed_targets(*s).len())
        .sum();
    let mermaid = lifecycle::export(ExportFormat::Mermaid);
    assert!(mermaid.starts_with("stateDiagram-v2\n"));
    assert_eq!(
        mermaid.matches(" --> ").count(),
        edges + CREATION_TARGETS.len()
    );
    assert!(mermaid.contains("    RELEASING --> FAILED_RELEASING\n"));
    let dot = lifecycle::export(ExportFormat::Dot);
    assert_eq!(dot.matches(" -> ").count(), edges);
    assert!(dot.contains("FAILED_RELEASING [label=\"Releasing failed\\n13\"];"));
    insta::assert_snapshot!("lifecycle_table", lifecycle::export(ExportFormat::Table));
}
