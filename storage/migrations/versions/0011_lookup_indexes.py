"""lookup indexes: the newest outbox row of a card, a chat message by its platform reference

A Feishu click finds the card it shows by the newest outbox row of its ``card_key`` and a
DingTalk or Feishu callback finds the message by its reference; both scanned their table.

Revision ID: 0011_lookups
Revises: 0010_results
"""
from alembic import op

revision = '0011_lookups'
down_revision = '0010_results'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_card", "outbox", ["card_key", "id"])
    op.create_index("ix_chat_messages_ref", "chat_messages", ["chat", "message_ref"])


def downgrade() -> None:
    op.drop_index("ix_chat_messages_ref", table_name="chat_messages")
    op.drop_index("ix_outbox_card", table_name="outbox")
