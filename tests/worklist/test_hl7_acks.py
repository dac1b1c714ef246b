"""The ACK builder and the connection gate without a network: an ACK for any text that starts
with MSH (read by the `hl7` package, with the sender's separators and control ID), never an
exception; connection counts per host, allowed networks, and refusal logs that a flood cannot
fill."""

from __future__ import annotations

import logging
import random

import hl7

from appliance.worklist.hl7_acks import acknowledgement
from appliance.worklist.hl7_gate import ConnectionGate


def test_ack_keeps_the_senders_separators_and_control_id():
    text = "MSH#$%\\*#RIS#HOSP#EDGEBOX#HOSP#2026##ORM$O01#CTRL7#P#2.4"
    ack = acknowledgement(text, "AR", "bad # value $ here")
    msh, msa, err = ack.split("\r")
    assert msh.startswith("MSH#$%\\*#EDGEBOX##RIS#HOSP#") and msh.endswith("#P#2.4")
    assert msa.split("#")[:3] == ["MSA", "AR", "CTRL7"]
    assert err.startswith("ERR###") and "bad \\F\\ value \\S\\ here" in err


def test_ack_for_random_text_after_msh_never_raises_and_parses():
    rng = random.Random(5)
    for _ in range(2000):
        text = "MSH" + "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000)]))
                               for _ in range(rng.randrange(0, 40)))
        ack = acknowledgement(text, "AR", "reason \\ with | delimiters")
        parsed = hl7.parse(ack)
        assert str(parsed.segment("MSA")[1]) == "AR"


def test_gate_counts_per_host_and_in_total():
    gate = ConnectionGate([], max_connections=3, max_per_host=2)
    assert gate.admit("10.0.0.1") is None and gate.admit("10.0.0.1") is None
    assert "max_connections_per_host 2" in gate.admit("10.0.0.1")
    assert gate.admit("10.0.0.2") is None
    assert "max_connections 3" in gate.admit("10.0.0.3")
    gate.release("10.0.0.1")
    assert gate.admit("10.0.0.3") is None and gate.total == 3 and gate.refused == 2


def test_gate_allows_listed_addresses_and_networks_only():
    gate = ConnectionGate(["10.1.2.40", "192.168.7.0/24"], 10, 10)
    assert gate.admit("10.1.2.40") is None and gate.admit("192.168.7.9") is None
    assert gate.admit("::ffff:192.168.7.10") is None  # IPv4-mapped IPv6
    assert "allowed_hosts" in gate.admit("10.1.2.41")
    assert "allowed_hosts" in gate.admit("not an address")


def test_a_flood_of_refusals_is_a_few_log_lines(caplog):
    now = [0.0]
    gate = ConnectionGate(["10.0.0.1"], 10, 10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="appliance.worklist.hl7_gate"):
        for _ in range(1000):
            gate.admit("10.9.9.9")
        now[0] = 11.0
        gate.admit("10.9.9.9")
    assert len(caplog.records) == 2
    assert "999 more refused" in caplog.records[1].getMessage()
