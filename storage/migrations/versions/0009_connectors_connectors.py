"""marketplace connectors: platform_credentials (encrypted), connector_states,
connector_enrolments (idempotency ledger), platform_candidates (eligibility answers)

Revision ID: 0009_connectors
Revises: 0008_costs
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.types


revision = '0009_connectors'
down_revision = '0008_costs'
branch_labels = None
depends_on = None


def _s(n: int):
    return sqlmodel.sql.sqltypes.AutoString(length=n)


def _t():
    return storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('platform_credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('shop', _s(64), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('created_at', _t(), nullable=False),
    sa.Column('updated_at', _t(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'shop', name='uq_platform_credential'),
    )
    op.create_table('connector_states',
    sa.Column('name', _s(128), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('shop', _s(64), nullable=False),
    sa.Column('last_call', _s(64), nullable=False),
    sa.Column('last_call_at', _t(), nullable=True),
    sa.Column('last_ok_at', _t(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_key', _s(64), nullable=False),
    sa.Column('last_error_params', sa.JSON(), nullable=False),
    sa.Column('last_error_at', _t(), nullable=True),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('name'),
    )
    op.create_table('connector_enrolments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector', _s(128), nullable=False),
    sa.Column('idempotency_key', _s(128), nullable=False),
    sa.Column('campaign_id', _s(128), nullable=False),
    sa.Column('reference', _s(256), nullable=False),
    sa.Column('status', _s(16), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('raw', sa.JSON(), nullable=False),
    sa.Column('created_at', _t(), nullable=False),
    sa.Column('updated_at', _t(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('connector', 'idempotency_key', name='uq_connector_enrolment'),
    )
    op.create_table('platform_candidates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('campaign_id', _s(128), nullable=False),
    sa.Column('sku', _s(64), nullable=False),
    sa.Column('connector', _s(128), nullable=False),
    sa.Column('eligible', sa.Boolean(), nullable=False),
    sa.Column('reason_code', _s(64), nullable=True),
    sa.Column('reason_text', sa.Text(), nullable=True),
    sa.Column('max_price', storage.types.Money(precision=14, scale=2), nullable=True),
    sa.Column('min_stock', sa.Integer(), nullable=True),
    sa.Column('checked_at', _t(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'campaign_id', 'sku', name='uq_platform_candidate'),
    )


def downgrade() -> None:
    op.drop_table('platform_candidates')
    op.drop_table('connector_enrolments')
    op.drop_table('connector_states')
    op.drop_table('platform_credentials')
