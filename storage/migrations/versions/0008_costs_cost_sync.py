"""decisions part 1: in-transit stock and sync stamps on products, cost_source_states

Revision ID: 0008_costs
Revises: 0007_items
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.types


revision = '0008_costs'
down_revision = '0007_items'
branch_labels = None
depends_on = None


def _s(n: int):
    return sqlmodel.sql.sqltypes.AutoString(length=n)


def _t():
    return storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.add_column(sa.Column('in_transit', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('stock_source', _s(128), nullable=False, server_default=''))
        batch.add_column(sa.Column('stock_synced_at', _t(), nullable=True))
    op.create_table('cost_source_states',
    sa.Column('name', _s(128), nullable=False),
    sa.Column('kind', _s(32), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('last_attempt', _t(), nullable=True),
    sa.Column('last_success', _t(), nullable=True),
    sa.Column('next_attempt_at', _t(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_counts', sa.JSON(), nullable=False),
    sa.Column('rejections', sa.JSON(), nullable=False),
    sa.Column('rejection_seq', sa.Integer(), nullable=False),
    sa.Column('validators', sa.JSON(), nullable=False),
    sa.Column('alerting', sa.Boolean(), nullable=False),
    sa.Column('incidents', sa.Integer(), nullable=False),
    sa.Column('updated_at', _t(), nullable=False),
    sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('cost_source_states')
    with op.batch_alter_table('products') as batch:
        batch.drop_column('stock_synced_at')
        batch.drop_column('stock_source')
        batch.drop_column('in_transit')
