"""Pure scoring primitives shared by tasks: parsers that say which rule fired, metrics, grouping."""

from evalkit.scoring.types import Scored

__all__ = ["Scored"]
