"""Loopback stand-in for Microsoft Advertising's Bulk v13 service (Customer Match).

Run it with ``sync-standin`` (see ``--help``) or in-process::

    from sync.standin import StandIn

    with StandIn() as bing:
        env["BING_BULK_SERVICE_URL"] = bing.url
        ...
"""

from .faults import FAULT_KINDS, Fault
from .server import OPERATIONS, SERVICE_PATH, StandIn

__all__ = ["FAULT_KINDS", "OPERATIONS", "SERVICE_PATH", "Fault", "StandIn"]
