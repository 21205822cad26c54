"""PromoPilot: promotion declarations (促销申报) run from group chats."""

__version__ = "0.1.0"
