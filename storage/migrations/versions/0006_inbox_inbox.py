"""crash safety: inbox (durable inbound events), outbox leases and attempt markers,
chat_messages post keys

Revision ID: 0006_inbox
Revises: 0005_auth
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.types


revision = '0006_inbox'
down_revision = '0005_auth'
branch_labels = None
depends_on = None


def _s(n: int):
    return sqlmodel.sql.sqltypes.AutoString(length=n)


def _t():
    return storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', _s(256), nullable=False),
    sa.Column('source', _s(16), nullable=False),
    sa.Column('kind', _s(32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', _s(16), nullable=False),
    sa.Column('lease_owner', _s(128), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', _t(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', _t(), nullable=False),
    sa.Column('done_at', _t(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key'),
    )
    op.create_index('ix_inbox_due', 'inbox', ['status', 'next_attempt_at'])
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('lease_owner', _s(128), nullable=False, server_default=''))
        batch.add_column(sa.Column('attempt_started_at', _t(), nullable=True))
    with op.batch_alter_table('chat_messages') as batch:
        batch.add_column(sa.Column('post_key', _s(64), nullable=False, server_default=''))
        batch.add_column(sa.Column('post_started_at', _t(), nullable=True))
        batch.create_index('ix_chat_messages_post_key', ['post_key'])


def downgrade() -> None:
    with op.batch_alter_table('chat_messages') as batch:
        batch.drop_index('ix_chat_messages_post_key')
        batch.drop_column('post_started_at')
        batch.drop_column('post_key')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('attempt_started_at')
        batch.drop_column('lease_owner')
    op.drop_index('ix_inbox_due', table_name='inbox')
    op.drop_table('inbox')
