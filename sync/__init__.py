"""Push mutually exclusive Customer.io retention audiences to Microsoft Advertising Customer Match."""

__version__ = "0.1.0"
