"""The one error type for setup and start-up problems, owned by the runtime
(`avatar_core.errors`), which raises it when something setup provides is missing."""

from avatar_core.errors import StackError

__all__ = ["StackError"]
