"""Survey catalogs: providers (synthetic and live), the common schema, normalization."""

from .normalize import normalize
from .schema import COMMON_COLUMNS, COMMON_UNITS, NATIVE_COLUMNS

__all__ = ["COMMON_COLUMNS", "COMMON_UNITS", "NATIVE_COLUMNS", "normalize"]
