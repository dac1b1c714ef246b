"""The queue page lists commitment transactions (state, failures with reasons, the report's
fate) and /metrics counts them by state, read from a running commitment component."""

from __future__ import annotations

from pydicom.uid import generate_uid

from appliance.commitment.web_provider import CommitmentWebProvider
from appliance.core.providers import Providers
from appliance.web.forward_provider import ForwardQueueProvider
from tests.commitment.conftest import action_information, ct_image, wait_until


def test_queue_page_and_metrics_show_transactions(appliance_factory, modality, web):
    app = appliance_factory()
    stored = ct_image()
    missing = ct_image(2)
    assoc = modality.associate(app.port)
    modality.store(assoc, [stored])
    ok, bad = generate_uid(), generate_uid()
    modality.request(assoc, action_information([stored], ok))
    modality.wait_report()
    modality.request(assoc, action_information([stored, missing], bad))
    modality.wait_report()
    wait_until(lambda: all(t["reported_at"] for t in app.transactions()), what="reported")
    setup = web(providers=Providers(queue=ForwardQueueProvider(app.config),
                                    commitment=CommitmentWebProvider(app.commitment)))
    setup.setup_password()
    page = setup.client.get("/queue").text
    assert "Storage Commitment" in page
    assert ok in page and bad in page and "committed" in page
    assert f"failed: {missing.SOPInstanceUID}: 0x0112 no such object instance" in page
    assert "sent on its association" in page
    metrics = setup.client.get("/metrics").text
    assert 'appliance_storage_commitment_transactions{state="committed"} 1.0' in metrics
    assert 'appliance_storage_commitment_transactions{state="failed"} 1.0' in metrics
    assert 'appliance_storage_commitment_transactions{state="pending"} 0.0' in metrics
