"""The stage's database tier: RDS MariaDB in the VPC's private subnets, its secrets, an RDS Proxy in front.

`ensure_database_tier(stage, env, result)` runs with provisioning (release.py step 1), idempotently:
  - Secrets Manager secrets `daycare/<stage>/db/admin` and `daycare/<stage>/db/<app>` (reqsys, childsys):
    user names and generated passwords, made once and kept;
  - a DB subnet group on VPC_SUBNET_IDS, a parameter group that requires TLS (`require_secure_transport`),
    and the instance `daycare-<stage>-db` (MariaDB, encrypted, private, 7 days of backups), or, with
    DB_INSTANCE_IDENTIFIER, an existing instance adopted as it is;
  - the proxy `daycare-<stage>-db` (TLS required, each secret an allowed login, its own role that may read only
    those secrets), the instance its target, at most 90 % of the database's connections;
  - the outputs DB_INSTANCE, DB_PROXY_ENDPOINT, and each app's DATABASE_URL (through the proxy, as the app's own
    user, with TLS), which release.py stores in the app's SSM path.
`bootstrap` (`make db-bootstrap STAGE=…`, from a machine that reaches the proxy: the VPC, a bastion, CloudShell
in the VPC) creates each app's schema and user with privileges on that schema only, REQUIRE SSL.

DATABASE_TIER=external leaves all this out: the apps' URLs then come from the CI secrets, as before.
"""

from __future__ import annotations

import argparse
import json
import secrets
import string
from collections.abc import Mapping
from urllib.parse import quote

from shared.platform.aws import client, region
from shared.tools.deploy.stages import VPC_APPS, MissingVariable

ENGINE, ENGINE_VERSION, PARAMETER_FAMILY = "mariadb", "10.11", "mariadb10.11"
INSTANCE_CLASS = "db.t4g.micro"
STORAGE_GB = 20
BACKUP_DAYS = 7
IDLE_CLIENT_SECONDS = 1800  # the proxy closes a client's idle connection; the apps recycle theirs before
MAX_CONNECTIONS_PERCENT = 90
CA_BUNDLE = "/etc/pki/tls/certs/ca-bundle.crt"  # Lambda's image: Amazon's CAs, RDS's among them


def names(stage: str) -> dict[str, str]:
    prefix = f"daycare-{stage}"
    return {"instance": f"{prefix}-db", "subnets": f"{prefix}-db", "parameters": f"{prefix}-mariadb-tls",
            "proxy": f"{prefix}-db", "role": f"{prefix}-db-proxy", "admin_secret": f"daycare/{stage}/db/admin"}


def secret_name(stage: str, app: str) -> str:
    return f"daycare/{stage}/db/{app}"


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _password() -> str:
    alphabet = string.ascii_letters + string.digits  # nothing a URL or a shell must escape
    return "".join(secrets.choice(alphabet) for _ in range(32))


def ensure_secret(name: str, username: str, result) -> dict:
    """The secret `name` ({"username", "password"}); generated once, then kept (rotation changes it there)."""
    sm = client("secretsmanager")
    try:
        value = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
        arn = sm.describe_secret(SecretId=name)["ARN"]
    except sm.exceptions.ResourceNotFoundException:
        value = {"username": username, "password": _password()}
        arn = sm.create_secret(Name=name, SecretString=json.dumps(value),
                               Description="daycare database login (shared/tools/deploy/database.py)")["ARN"]
        result.changes.append(f"created secret {name}")
    return {**value, "arn": arn}


def _ensure_subnet_group(name: str, subnets: list[str], result) -> None:
    rds = client("rds")
    try:
        current = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0]
    except rds.exceptions.DBSubnetGroupNotFoundFault:
        rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription="daycare database, private",
                                   SubnetIds=subnets)
        result.changes.append(f"created DB subnet group {name}")
        return
    if sorted(s["SubnetIdentifier"] for s in current["Subnets"]) != sorted(subnets):
        rds.modify_db_subnet_group(DBSubnetGroupName=name, SubnetIds=subnets)
        result.changes.append(f"updated DB subnet group {name}")


def _ensure_parameter_group(name: str, result) -> None:
    rds = client("rds")
    try:
        found = rds.describe_db_parameter_groups(DBParameterGroupName=name)["DBParameterGroups"]
    except rds.exceptions.DBParameterGroupNotFoundFault:
        found = []
    if not found:
        rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=PARAMETER_FAMILY,
                                      Description="daycare: TLS required")
        result.changes.append(f"created DB parameter group {name}")
    current = {p["ParameterName"]: p.get("ParameterValue") for p in rds.describe_db_parameters(
        DBParameterGroupName=name, Source="user").get("Parameters", [])}
    if current.get("require_secure_transport") != "ON":
        rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=[{
            "ParameterName": "require_secure_transport", "ParameterValue": "ON", "ApplyMethod": "immediate"}])
        result.changes.append(f"set require_secure_transport=ON in {name}")


def _ensure_instance(n: Mapping[str, str], admin: dict, groups: list[str], env: Mapping[str, str], result) -> dict:
    rds = client("rds")
    adopted = env.get("DB_INSTANCE_IDENTIFIER")
    identifier = adopted or n["instance"]
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        if adopted:
            raise MissingVariable(f"DB_INSTANCE_IDENTIFIER={adopted}: no such RDS instance in {region()}") from None
    instance = rds.create_db_instance(
        DBInstanceIdentifier=identifier, Engine=ENGINE, EngineVersion=ENGINE_VERSION,
        DBInstanceClass=env.get("DB_INSTANCE_CLASS") or INSTANCE_CLASS, AllocatedStorage=STORAGE_GB,
        StorageType="gp3", MasterUsername=admin["username"], MasterUserPassword=admin["password"],
        DBSubnetGroupName=n["subnets"], VpcSecurityGroupIds=groups, DBParameterGroupName=n["parameters"],
        PubliclyAccessible=False, StorageEncrypted=True, BackupRetentionPeriod=BACKUP_DAYS,
        MultiAZ=env.get("DB_MULTI_AZ") == "true", DeletionProtection=True, CopyTagsToSnapshot=True,
        Tags=[{"Key": "project", "Value": "daycare"}])["DBInstance"]
    result.changes.append(f"created RDS instance {identifier} ({ENGINE} {ENGINE_VERSION})")
    return instance


def proxy_policy(secret_arns: list[str]) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Logins", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
         "Resource": sorted(secret_arns)}]}


def _ensure_proxy_role(name: str, secret_arns: list[str], result) -> str:
    from shared.tools.deploy.canary import _ensure_role

    return _ensure_role(name, "rds.amazonaws.com", proxy_policy(secret_arns), result)


def _ensure_proxy(n: Mapping[str, str], role_arn: str, secret_arns: list[str], subnets: list[str],
                  groups: list[str], instance_id: str, result) -> dict:
    rds = client("rds")
    auth = [{"AuthScheme": "SECRETS", "SecretArn": arn, "IAMAuth": "DISABLED"} for arn in sorted(secret_arns)]
    try:
        proxy = rds.describe_db_proxies(DBProxyName=n["proxy"])["DBProxies"][0]
    except rds.exceptions.DBProxyNotFoundFault:
        proxy = rds.create_db_proxy(DBProxyName=n["proxy"], EngineFamily="MYSQL", Auth=auth, RoleArn=role_arn,
                                    VpcSubnetIds=subnets, VpcSecurityGroupIds=groups, RequireTLS=True,
                                    IdleClientTimeout=IDLE_CLIENT_SECONDS,
                                    Tags=[{"Key": "project", "Value": "daycare"}])["DBProxy"]
        result.changes.append(f"created RDS Proxy {n['proxy']}")
    else:
        current = sorted(a.get("SecretArn", "") for a in proxy.get("Auth", []))
        if current != sorted(secret_arns) or not proxy.get("RequireTLS"):
            rds.modify_db_proxy(DBProxyName=n["proxy"], Auth=auth, RequireTLS=True, RoleArn=role_arn)
            result.changes.append(f"updated RDS Proxy {n['proxy']}")
    group = rds.describe_db_proxy_target_groups(DBProxyName=n["proxy"])["TargetGroups"][0]
    pool = group.get("ConnectionPoolConfig") or {}
    if pool.get("MaxConnectionsPercent") != MAX_CONNECTIONS_PERCENT:
        rds.modify_db_proxy_target_group(DBProxyName=n["proxy"], TargetGroupName=group["TargetGroupName"],
                                         ConnectionPoolConfig={"MaxConnectionsPercent": MAX_CONNECTIONS_PERCENT})
        result.changes.append(f"set the proxy's pool to {MAX_CONNECTIONS_PERCENT} % of the database's connections")
    targets = rds.describe_db_proxy_targets(DBProxyName=n["proxy"])["Targets"]
    if not any(t.get("RdsResourceId") == instance_id for t in targets):
        rds.register_db_proxy_targets(DBProxyName=n["proxy"], DBInstanceIdentifiers=[instance_id])
        result.changes.append(f"registered {instance_id} behind {n['proxy']}")
    return proxy


def database_url(app: str, host: str, login: Mapping[str, str], port: int = 3306) -> str:
    """The app's DATABASE_URL: its own user and schema, TLS checked against Amazon's CAs."""
    return (f"mysql+pymysql://{quote(login['username'], safe='')}:{quote(login['password'], safe='')}@{host}:{port}/"
            f"{app}?ssl_ca={CA_BUNDLE}")


def ensure_database_tier(stage: str, env: Mapping[str, str], result) -> dict[str, str]:
    """Provision (or adopt) the database and its proxy; app -> DATABASE_URL. {} when DATABASE_TIER=external."""
    if env.get("DATABASE_TIER", "managed") == "external":
        return {}
    subnets = _split(env.get("VPC_SUBNET_IDS"))
    groups = _split(env.get("DB_SECURITY_GROUP_IDS") or env.get("VPC_SECURITY_GROUP_IDS"))
    if not subnets or not groups:
        raise MissingVariable("the database tier goes in the VPC: set VPC_SUBNET_IDS and VPC_SECURITY_GROUP_IDS "
                              "(or DATABASE_TIER=external with DATABASE_URL_REQSYS/DATABASE_URL_CHILDSYS)")
    n = names(stage)
    admin = ensure_secret(n["admin_secret"], "daycare_admin", result)
    logins = {app: ensure_secret(secret_name(stage, app), app, result) for app in VPC_APPS}
    _ensure_subnet_group(n["subnets"], subnets, result)
    _ensure_parameter_group(n["parameters"], result)
    instance = _ensure_instance(n, admin, groups, env, result)
    arns = [admin["arn"], *(login["arn"] for login in logins.values())]
    role_arn = _ensure_proxy_role(n["role"], arns, result)
    proxy = _ensure_proxy(n, role_arn, arns, subnets, groups, instance["DBInstanceIdentifier"], result)
    result.outputs.update({"DB_INSTANCE": instance["DBInstanceIdentifier"], "DB_PROXY_ENDPOINT": proxy["Endpoint"],
                           "DB_ADMIN_SECRET_ARN": admin["arn"]})
    return {app: database_url(app, proxy["Endpoint"], login) for app, login in logins.items()}


# --- bootstrap: schemas and users ----------------------------------------------------------------


def grants(app: str, login: Mapping[str, str], require_ssl: bool = True) -> list[str]:
    """The statements that give `app` its schema and a user with privileges on that schema only (idempotent)."""
    user = f"'{login['username']}'@'%'"
    password = login["password"].replace("\\", "\\\\").replace("'", "\\'")
    tls = " REQUIRE SSL" if require_ssl else ""
    return [
        f"CREATE DATABASE IF NOT EXISTS `{app}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY '{password}'{tls}",
        f"ALTER USER {user} IDENTIFIED BY '{password}'{tls}",  # a rotated secret wins
        f"GRANT ALL PRIVILEGES ON `{app}`.* TO {user}",
    ]


def bootstrap(admin_url: str, logins: Mapping[str, Mapping[str, str]], require_ssl: bool = True) -> list[str]:
    """Run every app's grants as the admin; returns what ran (passwords left out)."""
    import pymysql
    import sqlalchemy as sa

    url = sa.engine.make_url(admin_url)
    ssl = {"ca": url.query["ssl_ca"]} if "ssl_ca" in url.query else None
    ran = []
    with pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
                         ssl=ssl, connect_timeout=10, autocommit=True) as conn, conn.cursor() as cursor:
        for app, login in logins.items():
            for statement in grants(app, login, require_ssl):
                cursor.execute(statement)  # no arguments: pymysql sends the text as it is
                ran.append(statement.split(" IDENTIFIED BY ")[0])
    return ran


def bootstrap_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.tools.deploy db-bootstrap",
                                     description="Each app's schema and user, through the proxy, as the admin.")
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    sm, rds = client("secretsmanager"), client("rds")
    n = names(args.stage)

    def login(name: str) -> dict:
        return json.loads(sm.get_secret_value(SecretId=name)["SecretString"])

    endpoint = rds.describe_db_proxies(DBProxyName=n["proxy"])["DBProxies"][0]["Endpoint"]
    admin = login(n["admin_secret"])
    admin_url = database_url("mysql", endpoint, admin)
    for statement in bootstrap(admin_url, {app: login(secret_name(args.stage, app)) for app in VPC_APPS}):
        print(f"  {statement}")
    return 0
