"""The refusals of the DICOMweb services, each answered with its HTTP status by the router."""

from __future__ import annotations

from appliance.core.errors import ApplianceError


class DicomWebError(ApplianceError):
    """A DICOMweb request that cannot be answered; `status` is the HTTP status."""

    status = 400


class BadRequest(DicomWebError, ValueError):
    """A query parameter or path the service cannot use (400)."""

    status = 400


class NotFound(DicomWebError, LookupError):
    """No such study, series, instance or frame held (404)."""

    status = 404


class NotAcceptable(DicomWebError, ValueError):
    """None of the media types the client accepts can be produced (406)."""

    status = 406


class StoreUnavailable(DicomWebError, RuntimeError):
    """The instance store is not open (storage stopped): 503."""

    status = 503
