"""warming plans

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 14:29:53.759996
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('warming_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('states', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('allow_overflow', sa.Boolean(), nullable=False),
    sa.Column('closed_day', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_warming_plans_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_warming_plans_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_warming_plans')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_warming_plans_provider_id'))
    )
    op.create_index(op.f('ix_warming_plans_account_id'), 'warming_plans', ['account_id'], unique=False)
    op.create_table('warming_adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Integer(), nullable=False),
    sa.Column('grp', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('from_level', sa.Integer(), nullable=False),
    sa.Column('to_level', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['warming_plans.id'], name=op.f('fk_warming_adjustments_plan_id_warming_plans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_warming_adjustments'))
    )
    op.create_index(op.f('ix_warming_adjustments_plan_id'), 'warming_adjustments', ['plan_id'], unique=False)
    op.create_table('warming_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Integer(), nullable=False),
    sa.Column('grp', sa.String(length=20), nullable=False),
    sa.Column('cap', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('bounced', sa.Integer(), nullable=False),
    sa.Column('complained', sa.Integer(), nullable=False),
    sa.Column('deferred', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['warming_plans.id'], name=op.f('fk_warming_days_plan_id_warming_plans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_warming_days')),
    sa.UniqueConstraint('plan_id', 'day', 'grp', name=op.f('uq_warming_days_plan_id_day_grp'))
    )
    op.create_index(op.f('ix_warming_days_plan_id'), 'warming_days', ['plan_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_warming_days_plan_id'), table_name='warming_days')
    op.drop_table('warming_days')
    op.drop_index(op.f('ix_warming_adjustments_plan_id'), table_name='warming_adjustments')
    op.drop_table('warming_adjustments')
    op.drop_index(op.f('ix_warming_plans_account_id'), table_name='warming_plans')
    op.drop_table('warming_plans')
