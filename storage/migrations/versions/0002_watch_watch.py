"""watchers: source health and notice bodies (#7)

Revision ID: 0002_watch
Revises: 0001_foundation
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0002_watch'
down_revision = '0001_foundation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'source_states',
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('platform', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('consecutive_failures', sa.Integer(), nullable=False),
        sa.Column('last_attempt', storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_success', storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('next_attempt_at', storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_counts', sa.JSON(), nullable=False),
        sa.Column('validators', sa.JSON(), nullable=False),
        sa.Column('alerting', sa.Boolean(), nullable=False),
        sa.Column('incidents', sa.Integer(), nullable=False),
        sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'notice_bodies',
        sa.Column('campaign_id', sa.Integer(), sa.ForeignKey('campaigns.id'), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('dates_from', sa.String(length=16), nullable=False),
        sa.Column('unclear', sa.Boolean(), nullable=False),
        sa.Column('deadline_rev', sa.Integer(), nullable=False),
        sa.Column('deadline_since', storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('campaign_id'),
    )


def downgrade() -> None:
    op.drop_table('notice_bodies')
    op.drop_table('source_states')
