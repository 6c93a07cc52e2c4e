"""children are each account's own; one enrolment per child; verified addresses for notices

Applications become unique per (account, child id, daycare), and new ones get a request_id carrying a
tag of the account (longer: 64); existing rows keep theirs (they were unique already). A child's row
records the one application it is enrolled by (filled from the ENROLLED applications; a child the old
race enrolled twice keeps the latest). `notify_email` is where the emails go: existing applications keep
sending to their parent_email as before. Addresses given for notices wait in contact_emails until confirmed.

Revision ID: 5c1e7a90d3b2
Revises: 5c1a0b7e2f31
Create Date: 2026-12-02 17:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '5c1e7a90d3b2'
down_revision = '5c1a0b7e2f31'
branch_labels = None
depends_on = None

ENROLLED = 3


def upgrade():
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.alter_column('request_id', existing_type=sa.String(length=30), type_=sa.String(length=64),
                              existing_nullable=False)
        batch_op.add_column(sa.Column('notify_email', sa.String(length=254), nullable=True))
        batch_op.create_unique_constraint('uq_applications_account_child_nursery',
                                          ['parent_sub', 'child_id', 'nursery_id'])
    with op.batch_alter_table('children', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enrolled_request_id', sa.String(length=64), nullable=True))
    op.create_table('contact_emails',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('parent_sub', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash'),
    sa.UniqueConstraint('parent_sub', 'email', name='uq_contact_emails_parent_email')
    )
    with op.batch_alter_table('contact_emails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_emails_parent_sub'), ['parent_sub'], unique=False)

    bind = op.get_bind()
    applications = sa.table('applications', sa.column('request_id', sa.String), sa.column('parent_sub', sa.String),
                            sa.column('child_id', sa.String), sa.column('status', sa.Integer),
                            sa.column('updated_at', sa.DateTime), sa.column('parent_email', sa.String),
                            sa.column('notify_email', sa.String))
    children = sa.table('children', sa.column('parent_sub', sa.String), sa.column('child_id', sa.String),
                        sa.column('enrolled_request_id', sa.String))
    bind.execute(applications.update().where(applications.c.notify_email.is_(None))
                 .values(notify_email=applications.c.parent_email))
    for row in bind.execute(sa.select(applications.c.request_id, applications.c.parent_sub, applications.c.child_id)
                            .where(applications.c.status == ENROLLED).order_by(applications.c.updated_at)):
        bind.execute(children.update().where(children.c.parent_sub == row.parent_sub,
                                             children.c.child_id == row.child_id)
                     .values(enrolled_request_id=row.request_id))


def downgrade():
    with op.batch_alter_table('contact_emails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_emails_parent_sub'))
    op.drop_table('contact_emails')
    with op.batch_alter_table('children', schema=None) as batch_op:
        batch_op.drop_column('enrolled_request_id')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_constraint('uq_applications_account_child_nursery', type_='unique')
        batch_op.drop_column('notify_email')
        batch_op.alter_column('request_id', existing_type=sa.String(length=64), type_=sa.String(length=30),
                              existing_nullable=False)
