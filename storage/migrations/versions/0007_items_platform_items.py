"""data pool: platform item and SKU ids per product (platform_items)

Revision ID: 0007_items
Revises: 0006_inbox
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.types


revision = '0007_items'
down_revision = '0006_inbox'
branch_labels = None
depends_on = None


def _s(n: int):
    return sqlmodel.sql.sqltypes.AutoString(length=n)


def upgrade() -> None:
    op.create_table('platform_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku', _s(64), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('item_id', _s(64), nullable=False),
    sa.Column('sku_id', _s(64), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sku', 'platform', name='uq_platform_item'),
    )
    op.create_index('ix_platform_items_sku', 'platform_items', ['sku'])


def downgrade() -> None:
    op.drop_index('ix_platform_items_sku', table_name='platform_items')
    op.drop_table('platform_items')
