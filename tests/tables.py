"""Provision the consumer's stores on the emulator for one test (see :mod:`tools.local.provision`).

Names are unique per call, so tests never share state and need no cleanup order.
"""

from __future__ import annotations

from tools.local.provision import create_resources, delete_resources, provisioned

__all__ = ["create_resources", "delete_resources", "provisioned"]
