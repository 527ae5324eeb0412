"""A benchmark's goals: one figure against one limit, passed or not. Shared by every benchmark."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Target"]


@dataclass(frozen=True, slots=True)
class Target:
    """A speed, cost or capacity goal; ``at_most`` says which side of ``limit`` passes."""

    label: str
    measured: float
    limit: float
    at_most: bool

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit
