"""Lambda entry point of the custom resource that applies the SQL store's migrations on deploy.

Wiring only: the ``rds-data`` client is built once per container; each request's properties name the
cluster, the secret and the database (:mod:`pipeline.stores.sql.migrations_resource` answers it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.settings import Settings, aws_client
from pipeline.stores.sql.data_api import DataApiBackend
from pipeline.stores.sql.migrations_resource import MigrationsResource

logger = Logger()
rds_data = aws_client("rds-data", Settings.from_env())


def _backend(props: Mapping[str, Any]) -> DataApiBackend:
    return DataApiBackend(
        rds_data, resource_arn=props["ClusterArn"], secret_arn=props["SecretArn"], database=props["Database"]
    )


resource = MigrationsResource(_backend)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resource.handle(event, context)
