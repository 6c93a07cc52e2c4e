"""portal waitlist: criteria, rank, classes, offers

Revision ID: be4a94e5abce
Revises: 2247bb6485d9
Create Date: 2026-11-23 09:43:23.058476

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = 'be4a94e5abce'
down_revision = '2247bb6485d9'
branch_labels = None
depends_on = None


PRECISE = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql')


def start_and_class(created_at, birthday):
    """What existing rows get: the month after they were made, and the child's class then."""
    from datetime import UTC

    from shared.waitlist.calendar import class_for, default_start

    desired_start = default_start(created_at.replace(tzinfo=UTC))
    return desired_start, class_for(birthday, desired_start)


def upgrade():
    op.create_table('application_criteria',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('proof_key', sa.String(length=300), nullable=True),
    sa.Column('proof_name', sa.String(length=120), nullable=True),
    sa.Column('proof_uploaded_at', PRECISE, nullable=True),
    sa.Column('decided_by', sa.String(length=254), nullable=True),
    sa.Column('decided_at', PRECISE, nullable=True),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('application_id', 'code', name='uq_application_criteria_code')
    )
    with op.batch_alter_table('application_criteria', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_criteria_application_id'), ['application_id'], unique=False)

    with op.batch_alter_table('application_history', schema=None) as batch_op:
        batch_op.add_column(sa.Column('criterion', sa.String(length=30), nullable=True))

    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminded_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('desired_start', sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column('age_class', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('applied_at', PRECISE, nullable=True))
        batch_op.add_column(sa.Column('priority_tier', sa.Integer(), nullable=False, server_default='2'))
        batch_op.add_column(sa.Column('score', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('offered_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('offer_expires_at', sa.DateTime(), nullable=True))

    # existing rows: the application time is when they were made; an ACCEPTED application was
    # accepted under the old flow, where that meant enrolled (offers did not exist): ENROLLED (3)
    applications = sa.table('applications', sa.column('id', sa.Integer), sa.column('created_at', sa.DateTime),
                            sa.column('child_birthday', sa.String), sa.column('status', sa.Integer),
                            sa.column('desired_start', sa.String), sa.column('age_class', sa.Integer),
                            sa.column('applied_at', sa.DateTime))
    bind = op.get_bind()
    for row in bind.execute(sa.select(applications.c.id, applications.c.created_at, applications.c.child_birthday,
                                      applications.c.status)).all():
        desired_start, age_class = start_and_class(row.created_at, row.child_birthday)
        bind.execute(applications.update().where(applications.c.id == row.id).values(
            desired_start=desired_start, age_class=age_class, applied_at=row.created_at,
            status=3 if row.status == 2 else row.status))

    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.alter_column('desired_start', existing_type=sa.String(length=7), nullable=False)
        batch_op.alter_column('applied_at', existing_type=PRECISE, nullable=False)
        batch_op.create_index('ix_applications_child_status', ['child_id', 'status'], unique=False)
        batch_op.create_index('ix_applications_offers', ['status', 'offer_expires_at'], unique=False)
    # the rank order exactly (score descending): pages of the queue and counts ahead read the index in order
    rank_order = ['priority_tier', sa.text('score DESC'), 'applied_at', 'request_id']
    op.create_index('ix_applications_queue', 'applications', ['nursery_id', 'status', *rank_order])
    op.create_index('ix_applications_class_queue', 'applications', ['nursery_id', 'status', 'age_class', *rank_order])


def downgrade():
    op.drop_index('ix_applications_class_queue', table_name='applications')
    op.drop_index('ix_applications_queue', table_name='applications')
    op.execute("UPDATE applications SET status = 2 WHERE status = 3")  # enrolled was "accepted" before
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_index('ix_applications_offers')
        batch_op.drop_index('ix_applications_child_status')
        batch_op.drop_column('offer_expires_at')
        batch_op.drop_column('offered_at')
        batch_op.drop_column('score')
        batch_op.drop_column('priority_tier')
        batch_op.drop_column('applied_at')
        batch_op.drop_column('age_class')
        batch_op.drop_column('desired_start')
        batch_op.drop_column('reminded_at')

    with op.batch_alter_table('application_history', schema=None) as batch_op:
        batch_op.drop_column('criterion')

    with op.batch_alter_table('application_criteria', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_criteria_application_id'))

    op.drop_table('application_criteria')
