"""PostgreSQL Flexible Server for MLflow: VNet-integrated, TLS-only, backed up, optionally HA.

Three databases, one per MLflow store: tracking (`mlflow`), model registry (`mlflow_registry`)
and basic-auth users (`mlflow_auth`), so the registry and tracking services can be migrated,
scaled and restored independently.

A restore stack (`PostgresRestore`) creates its server from another server's backups, at a point in
time or from the geo-redundant copy: the new server already holds the three databases, so they are
not declared (a create would conflict with them); the source server belongs to another stack and is
never touched. The restore inputs only matter at creation and are ignored afterwards, so the stack
can later drop them without a diff on its server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import pulumi
import pulumi_azure_native.dbforpostgresql as postgresql

from components.azure.passwords import generated_password

MLFLOW_DATABASES: tuple[str, ...] = ("mlflow", "mlflow_registry", "mlflow_auth")

# Server parameters the platform sets: TLS only, and the logs an operator needs to diagnose
# connection storms and checkpoint pressure.
SERVER_PARAMETERS: tuple[tuple[str, str], ...] = (
    ("require_secure_transport", "ON"),
    ("ssl_min_protocol_version", "TLSv1.2"),
    ("log_connections", "ON"),
    ("log_disconnections", "ON"),
    ("log_checkpoints", "ON"),
    ("log_min_duration_statement", "1000"),
)


@dataclass(frozen=True)
class PgBouncerArgs:
    """The server's built-in PgBouncer (not on Burstable): transaction pooling."""

    default_pool_size: int
    max_client_conn: int
    pool_mode: str = "TRANSACTION"


def pgbouncer_parameters(pgbouncer: PgBouncerArgs | None) -> tuple[tuple[str, str], ...]:
    """Server parameters that switch PgBouncer on and size it (none without it)."""
    if pgbouncer is None:
        return ()
    return (
        ("pgbouncer.enabled", "true"),
        ("pgbouncer.pool_mode", pgbouncer.pool_mode),
        ("pgbouncer.default_pool_size", str(pgbouncer.default_pool_size)),
        ("pgbouncer.max_client_conn", str(pgbouncer.max_client_conn)),
    )


def sqlalchemy_uri(login: str, password: str, host: str, database: str) -> str:
    """A psycopg2 URI with TLS required (SQLAlchemy 2.1 would otherwise choose psycopg 3)."""
    credentials = f"{quote(login, safe='')}:{quote(password, safe='')}"
    return f"postgresql+psycopg2://{credentials}@{host}:5432/{database}?sslmode=require"


@dataclass(frozen=True)
class EntraAdministrator:
    """The Entra ID group that administers the server through Entra sign-in."""

    object_id: str
    principal_name: str
    tenant_id: pulumi.Input[str]


@dataclass(frozen=True)
class PostgresRestore:
    """Create the server from `source_server_id`'s backups (`createMode`)."""

    create_mode: str
    """`PointInTimeRestore` or `GeoRestore`."""
    source_server_id: str
    point_in_time_utc: str


RESTORE_INPUTS: tuple[str, ...] = ("createMode", "sourceServerResourceId", "pointInTimeUTC")
"""Read by Azure when the server is created only."""


@dataclass(frozen=True)
class PostgresArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    server_name: str
    version: str
    sku_name: str
    sku_tier: str
    storage_gb: int
    backup_retention_days: int
    geo_redundant_backup: bool
    high_availability: str
    admin_login: str
    delegated_subnet_id: pulumi.Input[str]
    private_dns_zone_id: pulumi.Input[str]
    dns_zone_link: pulumi.Resource
    """The private DNS zone's VNet link: the server is created after it (its name resolves in the VNet)."""
    zones: Sequence[str] = ()
    pgbouncer: PgBouncerArgs | None = None
    """The built-in PgBouncer on port 6432; None: clients connect to 5432 only."""
    databases: Sequence[str] = MLFLOW_DATABASES
    password_keepers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Rotation keepers of the admin password: a new value regenerates it and updates the server."""
    entra_admin: EntraAdministrator | None = None
    """Entra authentication on (password authentication stays on for MLflow) with this admin group."""
    restore: PostgresRestore | None = None
    """Create the server from another server's backups; its databases come with it."""
    tags: dict[str, str] = field(default_factory=dict)
    protect: bool = False


class PostgresServer(pulumi.ComponentResource):
    server_id: pulumi.Output[str]
    fqdn: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    """Secret: goes to Key Vault, never to stack outputs."""
    connection_uris: dict[str, pulumi.Output[str]]
    """Secret SQLAlchemy URI per database."""
    databases: list[pulumi.Resource]
    """The database resources (none on a restored server: they came with its backup)."""
    ready: list[pulumi.Resource]
    """What a client of the databases waits for: the databases, or on a restore the server and its
    last parameter change (the restored databases exist once the server does)."""
    network_path: list[pulumi.Resource]
    """The server and its DNS link: what a client needs to reach it."""

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:PostgresServer", name, None, opts)
        password = generated_password(f"{name}-admin-password", self, args.password_keepers)
        admin_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        primary_zone = args.zones[0] if args.zones else None
        standby_zone = args.zones[1] if args.high_availability == "ZoneRedundant" and len(args.zones) > 1 else None
        restore = args.restore
        server = postgresql.Server(
            f"{name}-server",
            server_name=args.server_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            version=args.version,
            sku=postgresql.SkuArgs(name=args.sku_name, tier=args.sku_tier),
            storage=postgresql.StorageArgs(storage_size_gb=args.storage_gb, auto_grow="Enabled"),
            backup=postgresql.BackupArgs(
                backup_retention_days=args.backup_retention_days,
                geo_redundant_backup="Enabled" if args.geo_redundant_backup else "Disabled",
            ),
            high_availability=postgresql.HighAvailabilityArgs(
                mode=args.high_availability, standby_availability_zone=standby_zone
            ),
            availability_zone=primary_zone,
            network=postgresql.NetworkArgs(
                delegated_subnet_resource_id=args.delegated_subnet_id,
                private_dns_zone_arm_resource_id=args.private_dns_zone_id,
                public_network_access="Disabled",
            ),
            auth_config=postgresql.AuthConfigArgs(
                password_auth="Enabled",
                active_directory_auth="Enabled" if args.entra_admin else "Disabled",
                tenant_id=args.entra_admin.tenant_id if args.entra_admin else None,
            ),
            administrator_login=args.admin_login,
            administrator_login_password=admin_password,
            create_mode=restore.create_mode if restore else None,
            source_server_resource_id=restore.source_server_id if restore else None,
            point_in_time_utc=restore.point_in_time_utc if restore else None,
            maintenance_window=postgresql.MaintenanceWindowArgs(
                custom_window="Enabled", day_of_week=0, start_hour=3, start_minute=0
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                depends_on=[args.dns_zone_link],
                additional_secret_outputs=["administratorLoginPassword"],
                # Failover swaps the zones; the next `pulumi up` must not swap them back.
                # A restore's inputs matter at creation only.
                ignore_changes=["availabilityZone", "highAvailability.standbyAvailabilityZone", *RESTORE_INPUTS],
            ),
        )

        # Flexible Server applies one parameter change at a time ("ServerIsBusy" otherwise).
        previous: pulumi.Resource = server
        for parameter, value in SERVER_PARAMETERS + pgbouncer_parameters(args.pgbouncer):
            previous = postgresql.Configuration(
                f"{name}-{parameter.replace('_', '-').replace('.', '-')}",
                configuration_name=parameter,
                server_name=server.name,
                resource_group_name=args.resource_group_name,
                value=value,
                source="user-override",
                opts=pulumi.ResourceOptions(parent=server, depends_on=[previous]),
            )

        if args.entra_admin is not None:
            # Like a server parameter, an administrator change waits for the server to be idle.
            previous = postgresql.Administrator(
                f"{name}-entra-admin",
                object_id=args.entra_admin.object_id,
                principal_name=args.entra_admin.principal_name,
                principal_type="Group",
                tenant_id=args.entra_admin.tenant_id,
                server_name=server.name,
                resource_group_name=args.resource_group_name,
                opts=pulumi.ResourceOptions(parent=server, depends_on=[previous]),
            )

        self.databases = []
        self.network_path = [server, args.dns_zone_link]
        for database in () if restore else args.databases:
            database_resource = postgresql.Database(
                f"{name}-db-{database.replace('_', '-')}",
                database_name=database,
                server_name=server.name,
                resource_group_name=args.resource_group_name,
                charset="UTF8",
                collation="en_US.utf8",
                opts=pulumi.ResourceOptions(parent=server, protect=args.protect, depends_on=[previous]),
            )
            self.databases.append(database_resource)
        self.ready = list(self.databases) if self.databases else [server, previous]

        self.server_id = server.id
        self.fqdn = server.fully_qualified_domain_name.apply(lambda fqdn: fqdn or "")
        self.admin_password = admin_password
        fqdn = self.fqdn

        def connection_uri(database: str) -> pulumi.Output[str]:
            return pulumi.Output.all(fqdn, admin_password).apply(
                lambda values: sqlalchemy_uri(args.admin_login, values[1], values[0], database)
            )

        self.connection_uris = {database: connection_uri(database) for database in args.databases}
        self.register_outputs({"serverId": self.server_id, "fqdn": self.fqdn})
