"""SOAP 1.1 envelopes of the Bulk v13 service, written by hand (server side only)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_BULK = "https://bingads.microsoft.com/CampaignManagement/v13"
NS_ADAPI = "https://adapi.microsoft.com"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"

OPERATIONS = (
    "GetBulkUploadUrl",
    "GetBulkUploadStatus",
    "DownloadCampaignsByAccountIds",
    "GetBulkDownloadStatus",
    "UploadEntityRecords",
)


class SoapRequestError(ValueError):
    """The request is not a SOAP envelope the stand-in understands."""


@dataclass
class SoapRequest:
    operation: str
    headers: dict[str, str]
    body: ET.Element
    values: dict[str, list[str]] = field(default_factory=dict)

    def value(self, name: str, default: str | None = None) -> str | None:
        found = self.values.get(name)
        return found[0] if found else default


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_request(data: bytes, soap_action: str | None) -> SoapRequest:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SoapRequestError("request body is not XML") from exc
    if _local(root.tag) != "Envelope":
        raise SoapRequestError("request body is not a SOAP envelope")
    headers: dict[str, str] = {}
    body = None
    for child in root:
        if _local(child.tag) == "Header":
            for h in child:
                headers[_local(h.tag)] = (h.text or "").strip()
        elif _local(child.tag) == "Body":
            body = child
    if body is None or len(body) == 0:
        raise SoapRequestError("SOAP envelope has no body")
    request_el = body[0]
    name = _local(request_el.tag)
    operation = name[: -len("Request")] if name.endswith("Request") else name
    if soap_action is not None:
        action = soap_action.strip().strip('"')
        if action and action != operation:
            raise SoapRequestError("SOAPAction does not match the body")
    values: dict[str, list[str]] = {}
    for el in request_el.iter():
        if el is request_el:
            continue
        if len(el) == 0:
            values.setdefault(_local(el.tag), []).append((el.text or "").strip())
    return SoapRequest(operation=operation, headers=headers, body=request_el, values=values)


def _envelope(body: str, tracking_id: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<s:Header><h:TrackingId xmlns:h="{NS_BULK}">{escape(tracking_id)}</h:TrackingId>'
        "</s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


Value = str | int | None


def _wrap(operation: str, inner: str) -> str:
    return (
        f'<{operation}Response xmlns="{NS_BULK}" xmlns:i="{NS_XSI}">{inner}</{operation}Response>'
    )


def _element(name: str, value: Value) -> str:
    if value is None:
        return f'<{name} i:nil="true"/>'
    return f"<{name}>{escape(str(value))}</{name}>"


def response(operation: str, tracking_id: str, fields: list[tuple[str, Value]]) -> bytes:
    """A ``<Operation>Response`` with simple child elements in the given (WSDL) order."""
    inner = "".join(_element(name, value) for name, value in fields)
    return _envelope(_wrap(operation, inner), tracking_id)


@dataclass(frozen=True)
class OperationError:
    code: int
    error_code: str
    message: str
    details: str | None = None


def _operation_errors_xml(errors: list[OperationError] | None) -> str:
    if not errors:
        return '<Errors i:nil="true"/>'
    items = "".join(
        "<OperationError>"
        f"<Code>{e.code}</Code>"
        f"{_element('Details', e.details)}"
        f"<ErrorCode>{escape(e.error_code)}</ErrorCode>"
        f"<Message>{escape(e.message)}</Message>"
        "</OperationError>"
        for e in errors
    )
    return f"<Errors>{items}</Errors>"


def status_response(
    operation: str,
    tracking_id: str,
    status: str,
    percent: int,
    result_url: str | None,
    errors: list[OperationError] | None = None,
) -> bytes:
    """GetBulkUploadStatus / GetBulkDownloadStatus (``Errors`` is always present)."""
    inner = (
        _operation_errors_xml(errors)
        + '<ForwardCompatibilityMap i:nil="true"/>'
        + f"<PercentComplete>{int(percent)}</PercentComplete>"
        + _element("RequestStatus", status)
        + _element("ResultFileUrl", result_url)
    )
    return _envelope(_wrap(operation, inner), tracking_id)


def upload_entity_records_response(
    tracking_id: str, records: list[str], request_id: str, status: str
) -> bytes:
    strings = "".join(f"<a:string>{escape(r)}</a:string>" for r in records)
    inner = (
        f'<EntityRecords xmlns:a="{NS_ARRAYS}">{strings}</EntityRecords>'
        '<Errors i:nil="true"/>'
        + _element("RequestId", request_id)
        + _element("RequestStatus", status)
    )
    body = (
        f'<UploadEntityRecordsResponse xmlns="{NS_BULK}" xmlns:i="{NS_XSI}">'
        f"{inner}</UploadEntityRecordsResponse>"
    )
    return _envelope(body, tracking_id)


def _fault(detail: str, tracking_id: str, faultstring: str | None = None) -> bytes:
    text = faultstring or (
        "Invalid client data. Check the SOAP fault details for more information. "
        f"TrackingId: {tracking_id}."
    )
    body = (
        "<s:Fault>"
        "<faultcode>s:Server</faultcode>"
        f'<faultstring xml:lang="en-US">{escape(text)}</faultstring>'
        f"<detail>{detail}</detail>"
        "</s:Fault>"
    )
    return _envelope(body, tracking_id)


def adapi_fault(code: int, error_code: str, message: str, tracking_id: str) -> bytes:
    """Generic errors (authentication, call rate): ``AdApiFaultDetail`` with ``AdApiError``."""
    detail = (
        f'<AdApiFaultDetail xmlns="{NS_ADAPI}" xmlns:i="{NS_XSI}">'
        f"<TrackingId>{escape(tracking_id)}</TrackingId>"
        "<Errors><AdApiError>"
        f"<Code>{code}</Code>"
        '<Detail i:nil="true"/>'
        f"<ErrorCode>{escape(error_code)}</ErrorCode>"
        f"<Message>{escape(message)}</Message>"
        "</AdApiError></Errors>"
        "</AdApiFaultDetail>"
    )
    return _fault(detail, tracking_id)


def api_fault(code: int, error_code: str, message: str, tracking_id: str) -> bytes:
    """Bulk-service errors (e.g. 4204): ``ApiFaultDetail`` with ``OperationErrors``."""
    detail = (
        f'<ApiFaultDetail xmlns="{NS_BULK}" xmlns:i="{NS_XSI}">'
        f'<TrackingId xmlns="{NS_ADAPI}">{escape(tracking_id)}</TrackingId>'
        '<BatchErrors i:nil="true"/>'
        "<OperationErrors><OperationError>"
        f"<Code>{code}</Code>"
        '<Details i:nil="true"/>'
        f"<ErrorCode>{escape(error_code)}</ErrorCode>"
        f"<Message>{escape(message)}</Message>"
        "</OperationError></OperationErrors>"
        "</ApiFaultDetail>"
    )
    return _fault(detail, tracking_id)


MESSAGES = {
    105: "Authentication failed. Either supplied credentials are invalid or the account is "
    "inactive",
    117: "You have exceeded the number of calls that you are allowed to make in a minute. "
    "Please reduce the number of calls that you make per minute.",
    4204: "No more bulk upload or download calls will be permitted for this account for the "
    "current time period. If you have reached your bulk upload limit, the bulk download "
    "operations may still be available, or vice versa.",
    0: "An internal error has occurred.",
}
