"""A template over CloudFormation's inline limit goes through S3, as ``sam deploy`` sends it."""

from __future__ import annotations

import hashlib
from typing import Any

from tools.local.cloudformation import TEMPLATE_BODY_LIMIT, upload_if_large


class _S3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, **kwargs: Any) -> None:
        self.objects[kwargs["Bucket"], kwargs["Key"]] = kwargs["Body"]


def test_a_template_at_the_limit_stays_inline_and_one_byte_over_is_uploaded_by_content() -> None:
    s3 = _S3()
    assert upload_if_large(s3, "artifacts", "x" * TEMPLATE_BODY_LIMIT, "eu-west-1") is None
    assert s3.objects == {}
    body = "é" * (TEMPLATE_BODY_LIMIT // 2) + "x"  # the limit is in bytes, not characters
    url = upload_if_large(s3, "artifacts", body, "eu-west-1")
    key = f"templates/{hashlib.sha256(body.encode()).hexdigest()}.yaml"
    assert url == f"https://s3.eu-west-1.amazonaws.com/artifacts/{key}"
    assert s3.objects == {("artifacts", key): body.encode()}
