import maas_rs


def test_statuses_are_maas_integers_and_labels():
    statuses = maas_rs.node_statuses()
    assert [s[0] for s in statuses] == list(range(23))
    assert statuses[13] == (13, "FAILED_RELEASING", "Releasing failed")
