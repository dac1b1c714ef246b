"""/metrics in the Prometheus text format (prometheus-client), read at scrape time from the
supervisor's health, the event counters and the providers. No login: it holds no patient data.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from appliance.core.component import ComponentState
from appliance.web.context import WebContext

log = logging.getLogger(__name__)

router = APIRouter()


class ApplianceCollector:
    """A prometheus-client collector over the web context."""

    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def collect(self):
        ctx, activity = self.ctx, self.ctx.activity
        up = GaugeMetricFamily("appliance_component_up", "1 when the component is running",
                               labels=["component"])
        failures = GaugeMetricFamily("appliance_component_failures",
                                     "consecutive failures of the component",
                                     labels=["component"])
        for health in ctx.runtime.health():
            up.add_metric([health.name], 1.0 if health.state == ComponentState.RUNNING else 0.0)
            failures.add_metric([health.name], float(health.failures))
        yield up
        yield failures
        yield GaugeMetricFamily("appliance_associations_open", "DICOM associations open now",
                                value=ctx.open_associations())
        assoc = CounterMetricFamily("appliance_associations", "DICOM associations ended, by "
                                    "outcome", labels=["outcome"])
        for outcome, count in sorted(activity.associations.items()):
            assoc.add_metric([outcome], count)
        yield assoc
        instances = CounterMetricFamily("appliance_instances", "instances received, "
                                        "forwarded and failed", labels=["event"])
        for event in ("received", "forwarded", "failed"):
            instances.add_metric([event], activity.instances.get(event, 0))
        yield instances
        stats = ctx.stats
        if stats is not None:
            last = stats.last_minute()
            yield GaugeMetricFamily("appliance_received_per_minute", "images stored in the "
                                    "last complete minute", value=last["received"])
            yield _gauges("appliance_forwarded_per_minute", "images delivered in the last "
                          "complete minute, by destination", "destination", last["forwarded"])
        disk = ctx.status_disk()
        if disk is not None:
            yield GaugeMetricFamily("appliance_disk_used_percent", "data disk use in percent",
                                    value=round(disk.used_percent, 1))
            yield GaugeMetricFamily("appliance_disk_free_bytes", "free bytes on the data disk",
                                    value=disk.free_bytes)
        if ctx.providers.queue is not None:
            depth = GaugeMetricFamily("appliance_queue_depth", "instances waiting, by "
                                      "destination", labels=["destination"])
            age = GaugeMetricFamily("appliance_queue_oldest_age_seconds", "age of the oldest "
                                    "waiting instance, by destination", labels=["destination"])
            for dest in ctx.providers.queue.destinations():
                depth.add_metric([dest.name], dest.pending)
                age.add_metric([dest.name], dest.oldest_age_seconds)
            yield depth
            yield age
        if ctx.providers.commitment is not None:
            yield _gauges("appliance_storage_commitment_transactions", "Storage Commitment "
                          "transactions kept, by state (pending, committed, failed; "
                          "unreported: decided, report not sent yet)", "state",
                          dict(sorted(ctx.providers.commitment.counts().items())))
        jobs = CounterMetricFamily("appliance_print_jobs", "print jobs by final state",
                                   labels=["state"])
        for state, count in sorted(activity.print_jobs.items()):
            jobs.add_metric([state], count)
        yield jobs
        yield CounterMetricFamily("appliance_worklist_queries", "worklist C-FIND queries "
                                  "answered", value=activity.worklist_queries)
        if ctx.providers.mpps is not None:
            mpps = ctx.providers.mpps
            yield _gauges("appliance_mpps_steps", "MPPS procedure steps kept, by status",
                          "status", mpps.counts())
            yield _gauges("appliance_mpps_forward_pending", "MPPS N-CREATE/N-SET requests "
                          "waiting to be forwarded, by RIS peer", "peer", mpps.forward_pending())
        certificate = ctx.providers.tls_certificate
        info = certificate.current().info if certificate is not None else None
        if info is not None:  # only when a certificate is configured (and readable)
            yield GaugeMetricFamily("appliance_dicom_tls_certificate_expiry_seconds",
                                    "seconds until the DICOM TLS certificate's notAfter "
                                    "(negative once expired)", value=info.seconds_left())
        yield GaugeMetricFamily("appliance_process_uptime_seconds", "seconds since the web "
                                "component started", value=time.time() - ctx.started)


def _gauges(name: str, documentation: str, label: str,
            counts: dict[str, int]) -> GaugeMetricFamily:
    """One gauge per `label` value, from {value: count}."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def registry_for(ctx: WebContext) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ApplianceCollector(ctx))
    return registry


@router.get("/metrics", tags=["monitoring"], response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics (no login)."""
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = request.app.state.metrics_registry = registry_for(request.app.state.context)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
