"""What people say and click. Importing this package registers every command."""

from commands import admin, tasks  # noqa: F401
from commands import declarations  # noqa: F401  (#9: edit, excel, check, override, rules)
from commands import deadline  # noqa: F401  (#7: set an unclear deadline)
from commands import submissions  # noqa: F401  (#8: approval card, retry, take over, uploaded)
from commands.router import Inbound, Reply, router

__all__ = ["Inbound", "Reply", "router"]
