"""The sync's own error types: what went wrong, said so an operator can fix it."""


class SyncError(Exception):
    """A failure the run reports and exits 1 on; the message names what to fix."""


class ConfigError(SyncError):
    """A missing or bad setting (profile, manifest, environment, flag); nothing was sent."""


class LockTimeout(SyncError):
    """Another sync run (or a dbt build) held the warehouse for longer than the lock timeout."""


class WarehouseError(SyncError):
    """A query failed in the warehouse (a broken view, a wrong column type...)."""
