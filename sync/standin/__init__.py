"""Loopback stand-in for Microsoft Advertising's Bulk v13 service (Customer Match).

Run it with ``sync-standin`` (see ``--help``) or in-process::

    from sync.standin import StandIn

    with StandIn() as bing:
        env["BING_BULK_SERVICE_URL"] = bing.url
        ...
"""

from .server import FAULT_KINDS, OPERATIONS, SERVICE_PATH, Fault, StandIn

__all__ = ["FAULT_KINDS", "OPERATIONS", "SERVICE_PATH", "Fault", "StandIn"]
