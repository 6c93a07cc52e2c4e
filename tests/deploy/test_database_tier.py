"""The database tier (shared/tools/deploy/database.py): RDS, its secrets and the RDS Proxy on the emulator,
made once and then left alone; each app's user limited to its own schema on the real MariaDB."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from shared.platform.aws import client
from shared.platform.db import engine_options, ping_after_idle
from shared.tools.deploy import database
from shared.tools.deploy.stages import MissingVariable
from shared.tools.provision import Result


@pytest.fixture
def vpc(own_emulator) -> dict[str, str]:
    """Two private subnets and a security group, as a user's account already has them. Its own emulator: RDS
    resources break the shared one's /moto-api/data.json, which the local mailbox reads."""
    ec2 = client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{i}.0/24",
                                 AvailabilityZone=f"ap-northeast-2{zone}")["Subnet"]["SubnetId"]
               for i, zone in ((1, "a"), (2, "c"))]
    group = ec2.create_security_group(GroupName=f"db-{uuid.uuid4().hex[:6]}", Description="db",
                                      VpcId=vpc_id)["GroupId"]
    return {"VPC_SUBNET_IDS": ",".join(subnets), "VPC_SECURITY_GROUP_IDS": group}


def test_the_database_its_secrets_and_the_proxy_are_made_once(vpc):
    stage = "d" + uuid.uuid4().hex[:6]
    result = Result()
    urls = database.ensure_database_tier(stage, vpc, result)
    n = database.names(stage)
    assert result.changes[:3] == [f"created secret daycare/{stage}/db/{who}" for who in ("admin", "reqsys", "childsys")]
    assert f"created RDS instance {n['instance']} (mariadb 10.11)" in result.changes
    assert f"created RDS Proxy {n['proxy']}" in result.changes
    assert f"registered {n['instance']} behind {n['proxy']}" in result.changes

    # run again: nothing changes, the same URLs (the passwords are kept in Secrets Manager)
    again = Result()
    assert database.ensure_database_tier(stage, vpc, again) == urls
    assert again.changes == []

    rds, sm = client("rds"), client("secretsmanager")
    instance = rds.describe_db_instances(DBInstanceIdentifier=n["instance"])["DBInstances"][0]
    assert instance["Engine"] == "mariadb" and not instance["PubliclyAccessible"] and instance["StorageEncrypted"]
    assert {s["SubnetIdentifier"] for s in instance["DBSubnetGroup"]["Subnets"]} == set(
        vpc["VPC_SUBNET_IDS"].split(","))
    tls = {p["ParameterName"]: p["ParameterValue"] for p in rds.describe_db_parameters(
        DBParameterGroupName=n["parameters"], Source="user")["Parameters"]}
    assert tls["require_secure_transport"] == "ON"
    proxy = rds.describe_db_proxies(DBProxyName=n["proxy"])["DBProxies"][0]
    assert proxy["RequireTLS"] is True and proxy["EngineFamily"] == "MYSQL"
    assert len(proxy["Auth"]) == 3  # the admin and one login per app
    # the proxy's role reads those three secrets and nothing else
    role = n["role"]
    policy = client("iam").get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"]
    assert policy["Statement"][0]["Resource"] == sorted(a["SecretArn"] for a in proxy["Auth"])
    # each app: through the proxy, its own user and schema, TLS
    login = json.loads(sm.get_secret_value(SecretId=f"daycare/{stage}/db/reqsys")["SecretString"])
    assert urls["reqsys"] == (f"mysql+pymysql://reqsys:{login['password']}@{proxy['Endpoint']}:3306/reqsys"
                              f"?ssl_ca=/etc/pki/tls/certs/ca-bundle.crt")
    assert result.outputs["DB_PROXY_ENDPOINT"] == proxy["Endpoint"]


def test_an_existing_instance_is_adopted_and_a_missing_one_named(vpc):
    stage = "d" + uuid.uuid4().hex[:6]
    rds = client("rds")
    rds.create_db_subnet_group(DBSubnetGroupName=f"{stage}-theirs", DBSubnetGroupDescription="theirs",
                               SubnetIds=vpc["VPC_SUBNET_IDS"].split(","))
    rds.create_db_instance(DBInstanceIdentifier=f"{stage}-theirs", Engine="mariadb", EngineVersion="10.11",
                           DBInstanceClass="db.t4g.micro",
                           AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="x" * 16,
                           DBSubnetGroupName=f"{stage}-theirs")
    result = Result()
    database.ensure_database_tier(stage, {**vpc, "DB_INSTANCE_IDENTIFIER": f"{stage}-theirs"}, result)
    assert not [c for c in result.changes if c.startswith("created RDS instance")]
    assert result.outputs["DB_INSTANCE"] == f"{stage}-theirs"
    with pytest.raises(MissingVariable, match="no-such-db"):
        database.ensure_database_tier(stage, {**vpc, "DB_INSTANCE_IDENTIFIER": "no-such-db"}, Result())
    with pytest.raises(MissingVariable, match="VPC_SUBNET_IDS"):
        database.ensure_database_tier(stage, {}, Result())
    assert database.ensure_database_tier(stage, {"DATABASE_TIER": "external"}, Result()) == {}


def test_the_grants_give_each_app_its_own_schema_only(mysql_database):
    """On the real MariaDB: the bootstrap's statements, twice (idempotent); each user reaches only its schema."""
    import pymysql
    import sqlalchemy as sa

    admin = sa.engine.make_url(os.environ["TEST_MYSQL_URL"])
    suffix = uuid.uuid4().hex[:6]
    logins = {f"req_{suffix}": {"username": f"u_req_{suffix}", "password": "p-" + uuid.uuid4().hex},
              f"cs_{suffix}": {"username": f"u_cs_{suffix}", "password": "p-" + uuid.uuid4().hex}}
    admin_url = admin.set(database=None).render_as_string(hide_password=False)
    assert all("REQUIRE SSL" in s for s in database.grants("reqsys", logins[f"req_{suffix}"])[1:3])
    try:
        database.bootstrap(admin_url, logins, require_ssl=False)  # the test server has no TLS
        database.bootstrap(admin_url, logins, require_ssl=False)

        def connect(app: str):
            login = logins[app]
            return pymysql.connect(host=admin.host, port=admin.port or 3306, user=login["username"],
                                   password=login["password"], connect_timeout=5, autocommit=True)

        with connect(f"req_{suffix}") as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE TABLE `req_{suffix}`.t (id INT)")
            cursor.execute(f"INSERT INTO `req_{suffix}`.t VALUES (1)")  # noqa: S608 - a name made here
            with pytest.raises(pymysql.err.OperationalError, match="denied"):
                cursor.execute(f"CREATE TABLE `cs_{suffix}`.t (id INT)")
            with pytest.raises(pymysql.err.OperationalError, match="denied"):
                cursor.execute("SELECT * FROM mysql.user")
        with connect(f"cs_{suffix}") as conn, conn.cursor() as cursor:
            with pytest.raises(pymysql.err.OperationalError, match="denied"):
                cursor.execute(f"SELECT * FROM `req_{suffix}`.t")  # noqa: S608 - a name made here
    finally:
        with pymysql.connect(host=admin.host, port=admin.port or 3306, user=admin.username,
                             password=admin.password or "", autocommit=True) as conn, conn.cursor() as cursor:
            for app, login in logins.items():
                cursor.execute(f"DROP DATABASE IF EXISTS `{app}`")
                cursor.execute(f"DROP USER IF EXISTS '{login['username']}'@'%'")


def test_the_pool_behind_the_proxy_is_one_connection_per_instance(monkeypatch):
    proxy = "mysql+pymysql://reqsys:pw@daycare-dev-db.proxy-abc.ap-northeast-2.rds.amazonaws.com:3306/reqsys"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "daycare-reqsys-dev")
    options = engine_options(proxy)
    assert (options["pool_size"], options["max_overflow"]) == (1, 0)
    # the proxy keeps the database's connections; the app's own is recycled before the proxy drops it idle
    assert not options.get("pool_pre_ping") and options["pool_recycle"] < database.IDLE_CLIENT_SECONDS
    assert ping_after_idle(proxy) is None
    # straight to RDS: a connection idle long enough for the database to close it is pinged, not every one
    direct_url = "mysql+pymysql://reqsys:pw@db.internal:3306/reqsys"
    direct = engine_options(direct_url)
    assert ping_after_idle(direct_url) is not None and direct["max_overflow"] == 0
    assert not direct.get("pool_pre_ping") and direct["pool_reset_on_return"] is None
