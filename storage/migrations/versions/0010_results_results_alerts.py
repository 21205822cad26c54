"""decisions part 2: campaign_results, competitor_prices, alert_log, recommendation_log

Revision ID: 0010_results
Revises: 0009_connectors
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.types


revision = '0010_results'
down_revision = '0009_connectors'
branch_labels = None
depends_on = None


def _s(n: int):
    return sqlmodel.sql.sqltypes.AutoString(length=n)


def _t():
    return storage.types.UTCDateTime(timezone=True)


def _m():
    return storage.types.Money(precision=14, scale=2)


def upgrade() -> None:
    op.create_table('campaign_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('sku', _s(64), nullable=False),
    sa.Column('slot', _s(128), nullable=False),
    sa.Column('day', _s(10), nullable=False),
    sa.Column('exposure', sa.Integer(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('gmv', _m(), nullable=False),
    sa.Column('fees', _m(), nullable=False),
    sa.Column('source', _s(128), nullable=False),
    sa.Column('imported_at', _t(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id']),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'sku', 'slot', 'day', name='uq_campaign_result'),
    )
    op.create_index('ix_campaign_results_campaign_id', 'campaign_results', ['campaign_id'])
    op.create_index('ix_campaign_results_sku', 'campaign_results', ['platform', 'sku', 'day'])
    op.create_table('competitor_prices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('sku', _s(64), nullable=False),
    sa.Column('competitor', _s(128), nullable=False),
    sa.Column('price', _m(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('seen_at', _t(), nullable=False),
    sa.Column('source', _s(128), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'sku', 'competitor', name='uq_competitor_price'),
    )
    op.create_index('ix_competitor_prices_sku', 'competitor_prices', ['sku'])
    op.create_table('alert_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', _s(256), nullable=False),
    sa.Column('kind', _s(32), nullable=False),
    sa.Column('subject', _s(200), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('sku', _s(64), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', _t(), nullable=False),
    sa.Column('muted_by', _s(128), nullable=True),
    sa.Column('muted_at', _t(), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key'),
    )
    op.create_index('ix_alert_log_subject', 'alert_log', ['subject'])
    op.create_table('recommendation_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('verdict', _s(16), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('weights_version', _s(64), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('decided', _s(32), nullable=False),
    sa.Column('created_at', _t(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_id'),
    )


def downgrade() -> None:
    op.drop_table('recommendation_log')
    op.drop_index('ix_alert_log_subject', table_name='alert_log')
    op.drop_table('alert_log')
    op.drop_index('ix_competitor_prices_sku', table_name='competitor_prices')
    op.drop_table('competitor_prices')
    op.drop_index('ix_campaign_results_sku', table_name='campaign_results')
    op.drop_index('ix_campaign_results_campaign_id', table_name='campaign_results')
    op.drop_table('campaign_results')
