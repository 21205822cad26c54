"""What people say and click. Importing this package registers every command."""

from commands import (  # noqa: F401
    admin,
    deadline,  # noqa: F401  (#7: set an unclear deadline)
    decisions,  # noqa: F401  (scenarios, margin after fees, accept a risk)
    declarations,  # noqa: F401  (#9: edit, excel, check, override, rules)
    drafting,  # noqa: F401  (draft says what changed, attach, hints)
    insight,  # noqa: F401  (explain a recommendation; the alert card's mute)
    submissions,  # noqa: F401  (#8: approval card, retry, take over, uploaded)
    tasks,
)
from commands.router import Inbound, Reply, router

__all__ = ["Inbound", "Reply", "router"]
