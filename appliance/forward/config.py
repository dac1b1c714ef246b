"""[[destinations]] and [[routes]]: where the forwarder sends stored images and which go where;
a route's coercion keys are checked in `coercion_config.py`."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from appliance.config.base import (
    HOURS,
    SECONDS,
    AETitle,
    Name,
    Section,
    check_between,
    check_modality,
    check_uid,
    positive_seconds,
)
from appliance.forward import coercion_config as coercion


class DestinationConfig(Section):
    """[[destinations]]: a peer (from [[peers]]) that receives every stored image routed to it."""

    peer: Name = Field(title="Peer", description="Name of one of the [[peers]]")
    batch_size: Annotated[int, AfterValidator(check_between(1, 1000))] = Field(
        50, title="Batch size", description="Instances sent over one association")
    retry_initial: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        5.0, title="First retry after", json_schema_extra=SECONDS,
        description="Seconds before the first retry after a failure")
    retry_max: Annotated[float, AfterValidator(positive_seconds(86400))] = Field(
        300.0, title="Longest retry wait", json_schema_extra=SECONDS,
        description="Longest wait between retries, seconds (the wait doubles up to it)")
    max_age_hours: Annotated[float, AfterValidator(positive_seconds(8760))] = Field(
        168.0, title="Give up after", json_schema_extra=HOURS,
        description="An instance not delivered after this many hours is marked failed "
        "(kept; `appliance queue retry` sends it again)")
    timeout: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        30.0, title="Timeout", json_schema_extra=SECONDS,
        description="Seconds to wait for the peer's answers (and for a peer that stops taking "
        "data in the middle of a C-STORE)")
    associations: Annotated[int, AfterValidator(check_between(1, 8))] = Field(
        2, title="Associations",
        description="Associations the batch lane keeps open to the destination at once, each "
        "sending its own batches (a DICOM peer; a DICOMweb destination sends one request at a "
        "time). A peer that refuses the extra ones still gets everything over the first")

    @field_validator("retry_max")
    @classmethod
    def _max_not_below_initial(cls, value: float, info) -> float:
        initial = info.data.get("retry_initial")
        if initial is not None and value < initial:
            raise ValueError(f"retry_max ({value:g}) must not be less than retry_initial "
                             f"({initial:g})")
        return value


class RouteConfig(Section):
    """[[routes]]: which stored images go to which destinations. With no routes, every image
    goes to every destination. Each non-empty list must match (a list matches any of its values);
    an image goes to the destinations of every route it matches. set/remove/prefix/deidentify
    change the copy sent (appliance/forward/coercion.py)."""

    destinations: list[Name] = Field(title="Destinations",
                                     description="Peer names of [[destinations]]",
                                     min_length=1)
    calling_aets: list[AETitle] = Field(default_factory=list, title="Calling AE titles",
                                        description="Calling AE titles that match")
    modalities: list[Annotated[str, AfterValidator(check_modality)]] = Field(
        default_factory=list, title="Modalities",
        description="Modalities (0008,0060) that match")
    sop_classes: list[Annotated[str, AfterValidator(check_uid)]] = Field(
        default_factory=list, title="SOP classes", description="SOP Class UIDs that match")
    set: coercion.CoercionSet = Field(default_factory=dict, title="Set attributes",
                                      description=coercion.SET_HELP)
    remove: coercion.CoercionRemove = Field(default_factory=list, title="Remove attributes",
                                            description=coercion.REMOVE_HELP)
    prefix: coercion.CoercionPrefix = Field(default_factory=dict, title="Prefix attributes",
                                            description=coercion.PREFIX_HELP)
    deidentify: bool = Field(False, title="De-identify",
                             description=coercion.DEIDENTIFY_HELP)
    one_rule_per_keyword = model_validator(mode="after")(coercion.check_route_rules)
