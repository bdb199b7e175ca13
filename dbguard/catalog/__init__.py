"""What a database's catalog says about its tables (sizes, columns, constraints, indexes), as a snapshot
that `check` judges scripts against: read live (`read_catalog`) or from a stats file (`load_stats`)."""

from dbguard.catalog.snapshot import Catalog, ColumnInfo, ConstraintInfo, IndexInfo, TableInfo, from_json

__all__ = ["Catalog", "ColumnInfo", "ConstraintInfo", "IndexInfo", "TableInfo", "from_json"]
